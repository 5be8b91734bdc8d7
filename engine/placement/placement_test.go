package placement

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"paddock/engine"
)

func al(id, zone string, capMB, used int) Allocator {
	return Allocator{ID: id, Zone: zone, CapacityMB: capMB, UsedMB: used, Alive: true}
}

func threeZones() []Allocator {
	return []Allocator{
		al("a1", "zone-1", 4096, 1024), al("a2", "zone-1", 4096, 3072),
		al("b1", "zone-2", 4096, 0), al("b2", "zone-2", 4096, 2048),
		al("c1", "zone-3", 4096, 512),
	}
}

func allocOf(res Result) []string {
	var out []string
	for _, p := range res.Placements {
		out = append(out, p.Allocator)
	}
	return out
}

func TestStrategies(t *testing.T) {
	t.Parallel()
	req := []Request{{DeploymentID: "d1", Kind: engine.KindElasticsearch, SizeMB: 1024, Zones: 1, PreferZones: []string{"zone-1"}}}
	tests := []struct {
		strategy string
		want     []string
	}{
		{engine.StrategyFill, []string{"a2"}}, // fullest that fits: 3072+1024 = 4096
		{engine.StrategyFillAntiAffinity, []string{"a2"}},
		{engine.StrategyDistribute, []string{"a1"}}, // least used
		{engine.StrategyDistributeAntiAffinity, []string{"a1"}},
		{"", []string{"a2"}}, // default is fill-anti-affinity
	}
	for _, tt := range tests {
		t.Run("strategy="+tt.strategy, func(t *testing.T) {
			res, err := Place(threeZones(), req, Options{Strategy: tt.strategy, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if got := allocOf(res); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("placed on %v, want %v", got, tt.want)
			}
		})
	}
}

func TestZoneSpreading(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		allocs    []Allocator
		req       Request
		strategy  string
		wantZones []string
		wantErr   string
	}{
		{
			name:      "three zones distinct",
			allocs:    threeZones(),
			req:       Request{DeploymentID: "d", Kind: engine.KindElasticsearch, SizeMB: 1024, Zones: 3},
			wantZones: []string{"zone-1", "zone-2", "zone-3"},
		},
		{
			name:      "preferred zone first",
			allocs:    threeZones(),
			req:       Request{DeploymentID: "d", Kind: engine.KindElasticsearch, SizeMB: 512, Zones: 1, PreferZones: []string{"zone-3"}},
			wantZones: []string{"zone-3"},
		},
		{
			name:      "excluded zones are skipped",
			allocs:    threeZones(),
			req:       Request{DeploymentID: "d", Kind: engine.KindElasticsearch, SizeMB: 512, Zones: 1, ExcludeZones: []string{"zone-1", "zone-2"}},
			wantZones: []string{"zone-3"},
		},
		{
			name:    "not enough zones",
			allocs:  []Allocator{al("a1", "zone-1", 4096, 0), al("a2", "zone-1", 4096, 0)},
			req:     Request{DeploymentID: "d", Kind: engine.KindElasticsearch, SizeMB: 512, Zones: 2},
			wantErr: "only 1 zone(s) can take it",
		},
		{
			name:    "zone short of memory names the zone",
			allocs:  []Allocator{al("a1", "zone-1", 4096, 0), al("b1", "zone-2", 1024, 512)},
			req:     Request{DeploymentID: "d", Kind: engine.KindElasticsearch, SizeMB: 1024, Zones: 2},
			wantErr: "zone-2: largest free 512 MB, needs 1024 MB",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Place(tt.allocs, []Request{tt.req}, Options{Strategy: tt.strategy, Seed: 7})
			if tt.wantErr != "" {
				var ue *UnplaceableError
				if !errors.As(err, &ue) {
					t.Fatalf("want UnplaceableError containing %q, got %v", tt.wantErr, err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				if len(ue.Explain) != len(tt.allocs) {
					t.Fatalf("explain has %d verdicts, want one per allocator (%d)", len(ue.Explain), len(tt.allocs))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var zones []string
			for _, p := range res.Placements {
				zones = append(zones, p.Zone)
			}
			if tt.req.Zones > 1 {
				sortStrings(zones)
			}
			if !reflect.DeepEqual(zones, tt.wantZones) {
				t.Fatalf("zones %v, want %v", zones, tt.wantZones)
			}
		})
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestFeasibility(t *testing.T) {
	t.Parallel()
	base := func() []Allocator {
		return []Allocator{
			{ID: "dead", Zone: "zone-1", CapacityMB: 8192, Alive: false},
			{ID: "maint", Zone: "zone-1", CapacityMB: 8192, Alive: true, Maintenance: true},
			{ID: "hot", Zone: "zone-1", CapacityMB: 8192, Alive: true, Tags: map[string]string{"type": "hot"}},
			{ID: "warm", Zone: "zone-1", CapacityMB: 8192, Alive: true, UsedMB: 1024, Tags: map[string]string{"type": "warm"},
				Instances: []Assigned{{DeploymentID: "d", Kind: engine.KindElasticsearch, SizeMB: 1024}}},
			{ID: "small", Zone: "zone-1", CapacityMB: 256, Alive: true},
		}
	}
	tests := []struct {
		name    string
		req     Request
		want    string
		wantErr string
	}{
		{name: "dead and maintenance never chosen", req: Request{DeploymentID: "x", Kind: "elasticsearch", SizeMB: 1024, Zones: 1, Filter: map[string]string{"type": "hot"}}, want: "hot"},
		{name: "filter selects tags", req: Request{DeploymentID: "x", Kind: "elasticsearch", SizeMB: 1024, Zones: 1, Filter: map[string]string{"type": "warm"}}, want: "warm"},
		{name: "anti-affinity: same deployment and kind never twice on one allocator", req: Request{DeploymentID: "d", Kind: "elasticsearch", SizeMB: 1024, Zones: 1, Filter: map[string]string{"type": "warm"}},
			wantErr: "no usable allocator"},
		{name: "replacement may share the allocator of the instance it replaces", req: Request{DeploymentID: "d", Kind: "elasticsearch", SizeMB: 1024, Zones: 1, Filter: map[string]string{"type": "warm"}, Replaces: true}, want: "warm"},
		{name: "other kind of the same deployment may share", req: Request{DeploymentID: "d", Kind: "kibana", SizeMB: 512, Zones: 1, Filter: map[string]string{"type": "warm"}}, want: "warm"},
		{name: "excluded allocator", req: Request{DeploymentID: "x", Kind: "elasticsearch", SizeMB: 1024, Zones: 1, Exclude: []string{"hot"}, Filter: map[string]string{"type": "hot"}}, wantErr: "1 excluded"},
		{name: "targets restrict", req: Request{DeploymentID: "x", Kind: "elasticsearch", SizeMB: 128, Zones: 1, Targets: []string{"small"}}, want: "small"},
		{name: "filter error lists whom it excluded", req: Request{DeploymentID: "x", Kind: "elasticsearch", SizeMB: 128, Zones: 1, Filter: map[string]string{"type": "cold"}},
			wantErr: "filter {type: cold}: excluded hot, small, warm"},
		{name: "memory", req: Request{DeploymentID: "x", Kind: "elasticsearch", SizeMB: 9000, Zones: 1}, wantErr: "zone-1: largest free 8192 MB, needs 9000 MB"},
		{name: "invalid zones", req: Request{DeploymentID: "x", Kind: "elasticsearch", SizeMB: 1, Zones: 4}, wantErr: "zone count must be 1 to 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Place(base(), []Request{tt.req}, Options{Seed: 3})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want error containing %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := allocOf(res); len(got) != 1 || got[0] != tt.want {
				t.Fatalf("placed on %v, want %s", got, tt.want)
			}
			// Every allocator has a verdict, and the rejected ones say why.
			if len(res.Explain) != len(base()) {
				t.Fatalf("%d verdicts, want %d", len(res.Explain), len(base()))
			}
			for _, v := range res.Explain {
				if v.Allocator == "dead" && (v.Feasible || v.Reason != "not alive") {
					t.Fatalf("dead allocator verdict %+v", v)
				}
				if v.Allocator == "maint" && (v.Feasible || v.Reason != "in maintenance") {
					t.Fatalf("maintenance verdict %+v", v)
				}
			}
		})
	}
}

func TestAntiAffinityStrategiesSpreadKinds(t *testing.T) {
	t.Parallel()
	allocs := []Allocator{al("a1", "zone-1", 8192, 0), al("a2", "zone-1", 8192, 0)}
	reqs := []Request{
		{DeploymentID: "d", Kind: engine.KindElasticsearch, SizeMB: 1024, Zones: 1},
		{DeploymentID: "d", Kind: engine.KindKibana, SizeMB: 512, Zones: 1},
	}
	tests := []struct {
		strategy string
		apart    bool
	}{
		{engine.StrategyFillAntiAffinity, true},
		{engine.StrategyFill, false}, // packs both on the fuller one
		{engine.StrategyDistributeAntiAffinity, true},
	}
	for _, tt := range tests {
		t.Run(tt.strategy, func(t *testing.T) {
			res, err := Place(allocs, reqs, Options{Strategy: tt.strategy, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			got := allocOf(res)
			if apart := got[0] != got[1]; apart != tt.apart {
				t.Fatalf("placements %v: apart=%v, want %v", got, apart, tt.apart)
			}
		})
	}
}

func TestAllOrNothingAndDeterminism(t *testing.T) {
	t.Parallel()
	allocs := []Allocator{al("a1", "zone-1", 2048, 0), al("a2", "zone-1", 2048, 0), al("b1", "zone-2", 2048, 0), al("b2", "zone-2", 2048, 0)}
	st := NewState(allocs, 42)
	_, err := st.Place([]Request{
		{DeploymentID: "ok", Kind: "elasticsearch", SizeMB: 1024, Zones: 2},
		{DeploymentID: "too-big", Kind: "elasticsearch", SizeMB: 4096, Zones: 1},
	}, Options{})
	if err == nil {
		t.Fatal("want failure")
	}
	for _, a := range st.Allocators() {
		if a.UsedMB != 0 || len(a.Instances) != 0 {
			t.Fatalf("failed Place changed state: %+v", a)
		}
	}
	// Ties (all empty) are broken by the seed, identically each run.
	first, _ := Place(allocs, []Request{{DeploymentID: "d", Kind: "elasticsearch", SizeMB: 512, Zones: 2}}, Options{Seed: 9, Strategy: engine.StrategyDistribute})
	for range 20 {
		again, _ := Place(allocs, []Request{{DeploymentID: "d", Kind: "elasticsearch", SizeMB: 512, Zones: 2}}, Options{Seed: 9, Strategy: engine.StrategyDistribute})
		if !reflect.DeepEqual(allocOf(first), allocOf(again)) {
			t.Fatalf("same seed, different placement: %v vs %v", allocOf(first), allocOf(again))
		}
	}
	// Input order does not matter either.
	rev := []Allocator{allocs[3], allocs[2], allocs[1], allocs[0]}
	again, _ := Place(rev, []Request{{DeploymentID: "d", Kind: "elasticsearch", SizeMB: 512, Zones: 2}}, Options{Seed: 9, Strategy: engine.StrategyDistribute})
	if !reflect.DeepEqual(allocOf(first), allocOf(again)) {
		t.Fatalf("input order changed placement: %v vs %v", allocOf(first), allocOf(again))
	}
}

func TestUnknownStrategy(t *testing.T) {
	t.Parallel()
	_, err := Place(threeZones(), []Request{{DeploymentID: "d", Kind: "elasticsearch", SizeMB: 1, Zones: 1}}, Options{Strategy: "random"})
	if err == nil || !strings.Contains(err.Error(), "unknown placement strategy") {
		t.Fatalf("got %v", err)
	}
}

func TestFromInventory(t *testing.T) {
	t.Parallel()
	inv := []engine.InventoryAllocator{{
		Allocator:   engine.Allocator{ID: "a", Zone: "zone-1", CapacityMB: 1000, Tags: map[string]string{"type": "hot", "disk": "ssd"}},
		Alive:       &engine.AllocatorAlive{CapacityMB: 2000},
		Maintenance: true,
		Settings:    engine.AllocatorSettings{CapacityMB: 3000, Tags: map[string]string{"type": "warm"}},
		Instances:   []engine.Instance{{ID: "i1", DeploymentID: "d", Kind: "elasticsearch", SizeMB: 512}, {ID: "i2", DeploymentID: "d", Kind: "kibana", SizeMB: 256}},
	}, {
		Allocator: engine.Allocator{ID: "b", Zone: "zone-2", CapacityMB: 1000},
	}}
	got := FromInventory(inv)
	want := []Allocator{
		{ID: "a", Zone: "zone-1", CapacityMB: 3000, UsedMB: 768, Alive: true, Maintenance: true,
			Tags:      map[string]string{"type": "warm", "disk": "ssd"},
			Instances: []Assigned{{"d", "elasticsearch", 512}, {"d", "kibana", 256}}},
		{ID: "b", Zone: "zone-2", CapacityMB: 1000, Alive: false},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}
