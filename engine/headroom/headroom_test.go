package headroom

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"paddock/engine"
	"paddock/engine/placement"
)

// fleet builds allocators "a-<zone>-<n>" of capacity mb, and places the
// deployments' instances on them (UsedMB, Instances).
func fleet(zones, perZone, mb int, deps []engine.Deployment) []placement.Allocator {
	var out []placement.Allocator
	for z := 1; z <= zones; z++ {
		for n := 1; n <= perZone; n++ {
			out = append(out, placement.Allocator{ID: fmt.Sprintf("a-%d-%d", z, n), Zone: fmt.Sprintf("zone-%d", z), CapacityMB: mb, Alive: true})
		}
	}
	for _, d := range deps {
		for _, in := range d.Instances {
			for i := range out {
				if out[i].ID == in.Allocator {
					out[i].UsedMB += in.SizeMB
					out[i].Instances = append(out[i].Instances, placement.Assigned{DeploymentID: d.ID, Kind: in.Kind, SizeMB: in.SizeMB})
				}
			}
		}
	}
	return out
}

// dep makes a deployment with one Elasticsearch instance of mb on each
// allocator named.
func dep(id string, mb int, allocs ...string) engine.Deployment {
	d := engine.Deployment{ID: id, Status: engine.DeploymentRunning,
		Spec: engine.DeploymentSpec{Version: "8.15.0", Elasticsearch: engine.Topology{SizeMB: mb, Zones: len(allocs)}}}
	for i, a := range allocs {
		var z, n int
		fmt.Sscanf(a, "a-%d-%d", &z, &n)
		d.Instances = append(d.Instances, engine.PlacedInstance{ID: fmt.Sprintf("%s-%d", id, i), Kind: engine.KindElasticsearch,
			Allocator: a, Zone: fmt.Sprintf("zone-%d", z), SizeMB: mb, Version: "8.15.0"})
	}
	return d
}

func zoneByName(r Report, z string) Zone {
	for _, x := range r.Zones {
		if x.Zone == z {
			return x
		}
	}
	return Zone{Zone: "missing"}
}

func TestZoneLoss(t *testing.T) {
	type want struct {
		survivable          bool
		unplaceable, lostHA []string
		shortfall           int
	}
	cases := []struct {
		name          string
		zones, per    int
		capacity      int
		deps          []engine.Deployment
		zone          string
		want          want
		frozenNonZero bool
	}{
		{name: "enough room elsewhere", zones: 2, per: 1, capacity: 4096,
			deps: []engine.Deployment{dep("d1", 1024, "a-1-1"), dep("d2", 1024, "a-1-1")},
			zone: "zone-1", want: want{survivable: true, unplaceable: []string{}, lostHA: []string{}}},
		{name: "not enough room elsewhere", zones: 2, per: 1, capacity: 2048,
			deps: []engine.Deployment{dep("d1", 2048, "a-1-1"), dep("d2", 1024, "a-2-1")},
			zone: "zone-1", want: want{survivable: false, unplaceable: []string{"d1"}, lostHA: []string{}, shortfall: 2048}},
		{name: "one deployment blocking: the first fits, the second finds no room", zones: 2, per: 1, capacity: 2048,
			deps: []engine.Deployment{dep("d1", 1024, "a-1-1"), dep("d2", 1024, "a-1-1"), dep("d3", 512, "a-2-1")},
			zone: "zone-1", want: want{survivable: false, unplaceable: []string{"d2"}, lostHA: []string{}, shortfall: 1024}},
		{name: "spread over every zone: loses high availability, stays up", zones: 2, per: 1, capacity: 8192,
			deps: []engine.Deployment{dep("d1", 1024, "a-1-1", "a-2-1")},
			zone: "zone-1", want: want{survivable: true, unplaceable: []string{}, lostHA: []string{"d1"}}},
		{name: "two zones of three: moves to the third", zones: 3, per: 1, capacity: 4096,
			deps: []engine.Deployment{dep("d1", 1024, "a-1-1", "a-2-1")},
			zone: "zone-1", want: want{survivable: true, unplaceable: []string{}, lostHA: []string{}}},
		{name: "whole zone of two allocators lost freezes rescheduling", zones: 2, per: 2, capacity: 4096,
			deps: []engine.Deployment{dep("d1", 1024, "a-1-1")},
			zone: "zone-1", want: want{survivable: true, unplaceable: []string{}, lostHA: []string{}}, frozenNonZero: true},
		{name: "single zone platform: nowhere to go", zones: 1, per: 2, capacity: 4096,
			deps: []engine.Deployment{dep("d1", 1024, "a-1-1")},
			zone: "zone-1", want: want{survivable: false, unplaceable: []string{"d1"}, lostHA: []string{}}, frozenNonZero: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := Compute(Input{Allocators: fleet(tc.zones, tc.per, tc.capacity, tc.deps), Deployments: tc.deps})
			z := zoneByName(rep, tc.zone)
			got := want{survivable: z.Survivable, unplaceable: z.Unplaceable, lostHA: z.LostHA, shortfall: z.ShortfallMB}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("zone %s: got %+v, want %+v (report %+v)", tc.zone, got, tc.want, z)
			}
			if (z.Frozen != "") != tc.frozenNonZero {
				t.Fatalf("frozen = %q, want set: %v", z.Frozen, tc.frozenNonZero)
			}
		})
	}
}

func TestVacate(t *testing.T) {
	cases := []struct {
		name      string
		capacity  int
		deps      []engine.Deployment
		alloc     string
		vacatable bool
		shortfall int
	}{
		{name: "room in the same zone", capacity: 4096, deps: []engine.Deployment{dep("d1", 2048, "a-1-1")}, alloc: "a-1-1", vacatable: true},
		{name: "no room anywhere", capacity: 2048,
			deps:  []engine.Deployment{dep("d1", 2048, "a-1-1"), dep("d2", 2048, "a-1-2"), dep("d3", 2048, "a-2-1"), dep("d4", 2048, "a-2-2")},
			alloc: "a-1-1", vacatable: false, shortfall: 2048},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := Compute(Input{Allocators: fleet(2, 2, tc.capacity, tc.deps), Deployments: tc.deps})
			for _, a := range rep.Allocators {
				if a.ID != tc.alloc {
					continue
				}
				if a.Vacatable != tc.vacatable || a.ShortfallMB != tc.shortfall {
					t.Fatalf("%s: got %+v, want vacatable %v shortfall %d", a.ID, a, tc.vacatable, tc.shortfall)
				}
				return
			}
			t.Fatalf("allocator %s not in the report %+v", tc.alloc, rep.Allocators)
		})
	}
}

// The dry-run leaves no trace: vacating one allocator does not take the
// room another's vacate needs.
func TestVacateReleasesBetweenAllocators(t *testing.T) {
	deps := []engine.Deployment{dep("d1", 2048, "a-1-1"), dep("d2", 2048, "a-1-2")}
	rep := Compute(Input{Allocators: fleet(1, 3, 2048, deps), Deployments: deps})
	for _, a := range rep.Allocators {
		if !a.Vacatable {
			t.Fatalf("%s not vacatable: %+v (a-1-3 is empty for each in turn)", a.ID, a)
		}
	}
}

func TestWriteText(t *testing.T) {
	deps := []engine.Deployment{dep("d1", 2048, "a-1-1"), dep("d2", 1024, "a-2-1")}
	rep := Compute(Input{Allocators: fleet(2, 1, 2048, deps), Deployments: deps})
	var b strings.Builder
	rep.WriteText(&b)
	for _, want := range []string{"zone-1  NOT SURVIVABLE", "d1", "zone-2  NOT SURVIVABLE", "2 of 2 allocators holding instances could not be vacated", "a-1-1"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("text lacks %q:\n%s", want, b.String())
		}
	}
}
