package service

import (
	"errors"
	"reflect"
	"testing"

	"paddock/engine"
)

func TestNormalizeAndValidateSpec(t *testing.T) {
	cfg := engine.DefaultPlatformConfig()
	cases := []struct {
		name   string
		zones  int
		spec   engine.DeploymentSpec
		want   engine.DeploymentSpec
		fields []string
	}{
		{"defaults", 3, engine.DeploymentSpec{Elasticsearch: engine.Topology{SizeMB: 1024}},
			engine.DeploymentSpec{Version: "8.18.0", Elasticsearch: engine.Topology{SizeMB: 1024, Zones: 1}}, nil},
		{"kibana gets a zone", 3, engine.DeploymentSpec{Version: "8.17.0", Elasticsearch: engine.Topology{SizeMB: 1024, Zones: 3}, Kibana: engine.Topology{SizeMB: 512}},
			engine.DeploymentSpec{Version: "8.17.0", Elasticsearch: engine.Topology{SizeMB: 1024, Zones: 3}, Kibana: engine.Topology{SizeMB: 512, Zones: 1}}, nil},
		{"no kibana clears zones", 3, engine.DeploymentSpec{Elasticsearch: engine.Topology{SizeMB: 1024}, Kibana: engine.Topology{Zones: 2}},
			engine.DeploymentSpec{Version: "8.18.0", Elasticsearch: engine.Topology{SizeMB: 1024, Zones: 1}}, nil},
		{"more zones than the platform", 2, engine.DeploymentSpec{Elasticsearch: engine.Topology{SizeMB: 1024, Zones: 3}},
			engine.DeploymentSpec{Version: "8.18.0", Elasticsearch: engine.Topology{SizeMB: 1024, Zones: 3}}, []string{"spec.elasticsearch.zones"}},
		{"too big", 3, engine.DeploymentSpec{Elasticsearch: engine.Topology{SizeMB: MaxSizeMB + 1}},
			engine.DeploymentSpec{Version: "8.18.0", Elasticsearch: engine.Topology{SizeMB: MaxSizeMB + 1, Zones: 1}}, []string{"spec.elasticsearch.size_mb"}},
		{"kibana too big", 3, engine.DeploymentSpec{Elasticsearch: engine.Topology{SizeMB: 1024}, Kibana: engine.Topology{SizeMB: MaxKibanaSizeMB + 1}},
			engine.DeploymentSpec{Version: "8.18.0", Elasticsearch: engine.Topology{SizeMB: 1024, Zones: 1}, Kibana: engine.Topology{SizeMB: MaxKibanaSizeMB + 1, Zones: 1}}, []string{"spec.kibana.size_mb"}},
		{"bad filter", 3, engine.DeploymentSpec{Elasticsearch: engine.Topology{SizeMB: 1024, Filter: map[string]string{"": "x"}}},
			engine.DeploymentSpec{Version: "8.18.0", Elasticsearch: engine.Topology{SizeMB: 1024, Zones: 1, Filter: map[string]string{"": "x"}}}, []string{"spec.elasticsearch.allocator_filter"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := NormalizeSpec(cfg, tc.spec)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("NormalizeSpec = %+v, want %+v", got, tc.want)
			}
			var names []string
			for _, f := range ValidateSpec(cfg, tc.zones, got) {
				names = append(names, f.Field)
			}
			if !reflect.DeepEqual(names, tc.fields) {
				t.Fatalf("ValidateSpec fields = %v, want %v", names, tc.fields)
			}
		})
	}
}

func TestPlacementRequests(t *testing.T) {
	es := func(size, zones int) engine.DeploymentSpec {
		return engine.DeploymentSpec{Version: "8.18.0", Elasticsearch: engine.Topology{SizeMB: size, Zones: zones}}
	}
	cur := []engine.PlacedInstance{
		{Kind: engine.KindElasticsearch, Zone: "zone-1", SizeMB: 1024, Version: "8.18.0"},
		{Kind: engine.KindElasticsearch, Zone: "zone-2", SizeMB: 1024, Version: "8.18.0"},
	}
	type want struct {
		size, zones  int
		replaces     bool
		excludeZones []string
	}
	cases := []struct {
		name string
		pc   PlaceCheck
		want []want
	}{
		{"new deployment", PlaceCheck{Spec: es(1024, 2)}, []want{{1024, 2, false, nil}}},
		{"new with kibana", PlaceCheck{Spec: engine.DeploymentSpec{Version: "8.18.0", Elasticsearch: engine.Topology{SizeMB: 1024, Zones: 1}, Kibana: engine.Topology{SizeMB: 512, Zones: 1}}},
			[]want{{1024, 1, false, nil}, {512, 1, false, nil}}},
		{"resize replaces", PlaceCheck{Spec: es(2048, 2), Current: cur}, []want{{2048, 2, true, nil}}},
		{"upgrade replaces", PlaceCheck{Spec: engine.DeploymentSpec{Version: "8.17.0", Elasticsearch: engine.Topology{SizeMB: 1024, Zones: 2}}, Current: cur}, []want{{1024, 2, true, nil}}},
		{"scale out adds the new zones only", PlaceCheck{Spec: es(1024, 3), Current: cur}, []want{{1024, 1, false, []string{"zone-1", "zone-2"}}}},
		{"scale in needs nothing", PlaceCheck{Spec: es(1024, 1), Current: cur}, nil},
		{"same needs nothing", PlaceCheck{Spec: es(1024, 2), Current: cur}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reqs := placementRequests(tc.pc)
			if len(reqs) != len(tc.want) {
				t.Fatalf("requests %+v, want %d", reqs, len(tc.want))
			}
			for i, w := range tc.want {
				r := reqs[i]
				if r.SizeMB != w.size || r.Zones != w.zones || r.Replaces != w.replaces || !reflect.DeepEqual(r.ExcludeZones, w.excludeZones) {
					t.Fatalf("request %d = %+v, want %+v", i, r, w)
				}
			}
		})
	}
}

func TestErrorKinds(t *testing.T) {
	cases := []struct {
		err  error
		kind *Error
	}{
		{storeErr(&engine.StoreError{Op: "get", Path: "/x", Kind: engine.ErrNotFound}, "deployment", "x"), ErrNotFound},
		{storeErr(&engine.StoreError{Op: "get", Path: "/x", Kind: engine.ErrUnavailable}, "deployment", "x"), ErrUnavailable},
		{storeErr(&engine.StoreError{Op: "set", Path: "/x", Kind: engine.ErrConflict}, "deployment", "x"), ErrConflict},
		{storeErr(errors.New("boom"), "deployment", "x"), &Error{Kind: KindInternal}},
		{invalid(field("a", "b")), ErrInvalid},
		{conflict("plan.pending", "x"), ErrConflict},
	}
	for i, tc := range cases {
		if !errors.Is(tc.err, tc.kind) {
			t.Errorf("case %d: %v is not kind %v", i, tc.err, tc.kind.Kind)
		}
	}
	if errors.Is(ErrNotFound, &Error{Kind: KindNotFound, Code: "x"}) {
		t.Error("a coded error is not a sentinel")
	}
	if got := invalid(field("name", "required")).Error(); got != "invalid request (name: required)" {
		t.Errorf("message %q", got)
	}
}
