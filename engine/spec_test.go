package engine

import (
	"slices"
	"testing"
)

func TestValidateSpec(t *testing.T) {
	t.Parallel()
	cfg := PlatformConfig{Versions: []string{"8.17.0", "8.18.0"}}
	es := func(size, zones int) DeploymentSpec {
		return DeploymentSpec{Version: "8.17.0", Elasticsearch: Topology{SizeMB: size, Zones: zones}}
	}
	withKibana := func(s DeploymentSpec, size, zones int) DeploymentSpec {
		s.Kibana = Topology{SizeMB: size, Zones: zones}
		return s
	}
	for _, tc := range []struct {
		name   string
		zones  int
		spec   DeploymentSpec
		fields []string
	}{
		{"ok", 3, es(1024, 2), nil},
		{"unknown version", 3, DeploymentSpec{Version: "7.0.0", Elasticsearch: Topology{SizeMB: 1024, Zones: 2}}, []string{"spec.version"}},
		{"no version", 3, DeploymentSpec{Elasticsearch: Topology{SizeMB: 1024, Zones: 2}}, []string{"spec.version"}},
		{"no size", 3, es(0, 2), []string{"spec.elasticsearch.size_mb"}},
		{"too small", 3, es(1, 1), []string{"spec.elasticsearch.size_mb"}},
		{"too large", 3, es(MaxSizeMB+1, 1), []string{"spec.elasticsearch.size_mb"}},
		{"four zones", 3, es(1024, 4), []string{"spec.elasticsearch.zones"}},
		{"more zones than the platform", 2, es(1024, 3), []string{"spec.elasticsearch.zones"}},
		{"zones unknown: MaxZones bounds", 0, es(1024, 3), nil},
		{"zones unknown: four", 0, es(1024, 4), []string{"spec.elasticsearch.zones"}},
		{"kibana without zones", 3, withKibana(es(1024, 1), 512, 0), []string{"spec.kibana.zones"}},
		{"kibana too large", 3, withKibana(es(1024, 1), MaxKibanaSizeMB+1, 1), []string{"spec.kibana.size_mb"}},
		{"no kibana with zones", 3, withKibana(es(1024, 1), 0, 1), []string{"spec.kibana.zones"}},
		{"filter key empty", 3, DeploymentSpec{Version: "8.17.0", Elasticsearch: Topology{SizeMB: 1024, Zones: 1, Filter: map[string]string{"": "x"}}},
			[]string{"spec.elasticsearch.allocator_filter"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, f := range ValidateSpec(cfg, tc.zones, tc.spec) {
				got = append(got, f.Field)
			}
			if !slices.Equal(got, tc.fields) {
				t.Errorf("fields = %v, want %v", got, tc.fields)
			}
			if err := SpecError(ValidateSpec(cfg, tc.zones, tc.spec)); (err == nil) != (len(tc.fields) == 0) {
				t.Errorf("SpecError = %v, want an error iff fields %v", err, tc.fields)
			}
		})
	}
}
