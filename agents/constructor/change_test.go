package constructor

import (
	"strconv"
	"strings"
	"testing"

	"paddock/engine"
)

func pi(id, kind, alloc, zone string, size int, version string) engine.PlacedInstance {
	return engine.PlacedInstance{ID: id, Kind: kind, Allocator: alloc, Zone: zone, SizeMB: size, Version: version}
}

func TestComputeChange(t *testing.T) {
	es := engine.KindElasticsearch
	spec := func(v string, size, zones, kb int) engine.DeploymentSpec {
		s := engine.DeploymentSpec{Version: v, Elasticsearch: engine.Topology{SizeMB: size, Zones: zones}}
		if kb > 0 {
			s.Kibana = engine.Topology{SizeMB: kb, Zones: 1}
		}
		return s
	}
	two := []engine.PlacedInstance{pi("e1", es, "a1", "zone-1", 1024, "8.17.0"), pi("e2", es, "b1", "zone-2", 1024, "8.17.0")}
	tests := []struct {
		name                  string
		dep                   engine.Deployment
		plan                  engine.Plan
		keep, retire, restart int
		reqs                  []string // kind/size/zones/replaces
		migrate               bool
	}{
		{name: "create", dep: engine.Deployment{ID: "d"}, plan: engine.Plan{Action: engine.ActionCreate, Spec: spec("8.17.0", 1024, 2, 512)},
			reqs: []string{"elasticsearch/1024/2/false", "kibana/512/1/false"}},
		{name: "resize replaces every ES instance", dep: engine.Deployment{ID: "d", Spec: spec("8.17.0", 1024, 2, 0), Instances: two},
			plan: engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 2048, 2, 0)}, retire: 2, reqs: []string{"elasticsearch/2048/2/true"}, migrate: true},
		{name: "upgrade replaces", dep: engine.Deployment{ID: "d", Spec: spec("8.17.0", 1024, 2, 0), Instances: two},
			plan: engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.18.0", 1024, 2, 0)}, retire: 2, reqs: []string{"elasticsearch/1024/2/true"}, migrate: true},
		{name: "scale out adds zones", dep: engine.Deployment{ID: "d", Spec: spec("8.17.0", 1024, 2, 0), Instances: two},
			plan: engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 1024, 3, 0)}, keep: 2, reqs: []string{"elasticsearch/1024/1/false"}, migrate: true},
		{name: "scale in retires the surplus", dep: engine.Deployment{ID: "d", Spec: spec("8.17.0", 1024, 2, 0), Instances: two},
			plan: engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 1024, 1, 0)}, keep: 1, retire: 1},
		{name: "add kibana only", dep: engine.Deployment{ID: "d", Spec: spec("8.17.0", 1024, 2, 0), Instances: two},
			plan: engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 1024, 2, 512)}, keep: 2, reqs: []string{"kibana/512/1/false"}},
		{name: "delete", dep: engine.Deployment{ID: "d", Spec: spec("8.17.0", 1024, 2, 0), Instances: two},
			plan: engine.Plan{Action: engine.ActionDelete}, retire: 2},
		{name: "restart", dep: engine.Deployment{ID: "d", Spec: spec("8.17.0", 1024, 2, 0), Instances: two},
			plan: engine.Plan{Action: engine.ActionRestart}, keep: 2, restart: 2},
		{name: "move one allocator", dep: engine.Deployment{ID: "d", Spec: spec("8.17.0", 1024, 2, 0), Instances: two},
			plan: engine.Plan{Action: engine.ActionMove, Spec: spec("8.17.0", 1024, 2, 0), MoveFrom: []string{"a1"}}, keep: 1, retire: 1,
			reqs: []string{"elasticsearch/1024/1/false"}, migrate: true},
		{name: "no change", dep: engine.Deployment{ID: "d", Spec: spec("8.17.0", 1024, 2, 0), Instances: two},
			plan: engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 1024, 2, 0)}, keep: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ComputeChange(tt.dep, tt.plan)
			if len(c.Keep) != tt.keep || len(c.Retire) != tt.retire || len(c.Restart) != tt.restart {
				t.Fatalf("keep %d retire %d restart %d, want %d %d %d (%s)", len(c.Keep), len(c.Retire), len(c.Restart), tt.keep, tt.retire, tt.restart, c.Describe)
			}
			var reqs []string
			for _, r := range c.Requests {
				reqs = append(reqs, strings.Join([]string{r.Kind, itoa(r.SizeMB), itoa(r.Zones), boolS(r.Replaces)}, "/"))
			}
			if strings.Join(reqs, ",") != strings.Join(tt.reqs, ",") {
				t.Fatalf("requests %v, want %v", reqs, tt.reqs)
			}
			if c.NeedsMigration() != tt.migrate {
				t.Fatalf("migration %v, want %v", c.NeedsMigration(), tt.migrate)
			}
		})
	}
}

func TestMoveStaysInZoneAndAvoidsOtherZones(t *testing.T) {
	dep := engine.Deployment{ID: "d", Spec: engine.DeploymentSpec{Version: "8.17.0", Elasticsearch: engine.Topology{SizeMB: 1024, Zones: 2}},
		Instances: []engine.PlacedInstance{pi("e1", "elasticsearch", "a1", "zone-1", 1024, ""), pi("e2", "elasticsearch", "b1", "zone-2", 1024, "")}}
	c := ComputeChange(dep, engine.Plan{Action: engine.ActionMove, Spec: dep.Spec, MoveFrom: []string{"a1"}, Targets: []string{"a2"}})
	r := c.Requests[0]
	if r.PreferZones[0] != "zone-1" || r.ExcludeZones[0] != "zone-2" || r.Exclude[0] != "a1" || r.Targets[0] != "a2" {
		t.Fatalf("move request %+v", r)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func boolS(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
