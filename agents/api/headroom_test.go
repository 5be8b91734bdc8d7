package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paddock/engine"
	"paddock/engine/headroom"
	"paddock/engine/service"
	"paddock/engine/service/servicetest"
	"paddock/engine/testenv"
)

// TestHeadroomEndpoint, on real ZooKeeper: a zone whose instances fit
// in the other zone is survivable; once a second deployment fills its
// allocator past what the other zone can take, losing it is not, and
// the report names the deployment and the shortfall. The per-zone
// metric follows.
func TestHeadroomEndpoint(t *testing.T) {
	f := newFixture(t, "zone-1", "zone-2")
	servicetest.AddAllocator(t, f.p, "a1", "zone-1", 4096)
	servicetest.AddAllocator(t, f.p, "a2", "zone-2", 2048)

	place := func(name string) string {
		var cr service.CreateResult
		f.want(f.do(admin, "POST", "/deployments", createBody(name, 2048, 1)), 201).decode(t, &cr)
		id := cr.Deployment.ID
		iid := name + "-es"
		servicetest.Assign(t, f.p, "a1", engine.Instance{ID: iid, DeploymentID: id, Kind: engine.KindElasticsearch, Version: "8.15.0", SizeMB: 2048, Zone: "zone-1"})
		f.finishPlan(t, id, engine.PlanSuccess, []engine.PlacedInstance{
			{ID: iid, Kind: engine.KindElasticsearch, Allocator: "a1", Zone: "zone-1", SizeMB: 2048, Version: "8.15.0"}})
		return id
	}
	zone := func(rep headroom.Report, z string) headroom.Zone {
		for _, x := range rep.Zones {
			if x.Zone == z {
				return x
			}
		}
		t.Fatalf("zone %s missing from %+v", z, rep)
		return headroom.Zone{}
	}
	// poll reads the report until cond holds (the service recomputes it
	// at most a second after a change).
	poll := func(cond func(headroom.Report) bool) headroom.Report {
		var rep headroom.Report
		testenv.EventuallyDetail(t, 10*time.Second, "headroom to reach the expected state", func() (bool, string) {
			rep = headroom.Report{}
			f.want(f.do(service.RolePlatformViewer, "GET", "/platform/headroom", nil), 200).decode(t, &rep)
			return cond(rep), fmt.Sprintf("%+v", rep)
		})
		return rep
	}

	d1 := place("one")
	rep := poll(func(r headroom.Report) bool { return zone(r, "zone-1").Instances == 1 })
	if z := zone(rep, "zone-1"); !z.Survivable || len(z.Unplaceable) != 0 || z.ShortfallMB != 0 {
		t.Fatalf("zone-1 with one 2 GB deployment and 2 GB free in zone-2: %+v", z)
	}
	if z := zone(rep, "zone-2"); !z.Survivable || z.Instances != 0 {
		t.Fatalf("empty zone-2: %+v", z)
	}
	if len(rep.Allocators) != 1 || rep.Allocators[0].ID != "a1" || !rep.Allocators[0].Vacatable {
		t.Fatalf("allocators: %+v", rep.Allocators)
	}

	d2 := place("two")
	rep = poll(func(r headroom.Report) bool { return zone(r, "zone-1").Instances == 2 })
	z := zone(rep, "zone-1")
	if z.Survivable || z.ShortfallMB != 2048 || len(z.Unplaceable) != 1 || !slices.Contains([]string{d1, d2}, z.Unplaceable[0]) {
		t.Fatalf("zone-1 with two 2 GB deployments and 2 GB free in zone-2: %+v", z)
	}

	// The JSON contract of `paddock platform headroom -o json`.
	var compact bytes.Buffer
	if err := json.Compact(&compact, f.want(f.do(admin, "GET", "/platform/headroom", nil), 200).body); err != nil {
		t.Fatal(err)
	}
	body := compact.String()
	for _, k := range []string{`"zone":"zone-1"`, `"survivable":false`, fmt.Sprintf(`"unplaceable":["%s"]`, z.Unplaceable[0]), `"shortfall_mb":2048`} {
		if !strings.Contains(body, k) {
			t.Fatalf("headroom JSON lacks %s: %s", k, body)
		}
	}

	// The per-zone metrics.
	metrics := gatherText(t, f.reg)
	for _, k := range []string{`paddock_zone_loss_survivable{zone="zone-1"} 0`, `paddock_zone_loss_survivable{zone="zone-2"} 1`,
		`paddock_zone_loss_shortfall_mb{zone="zone-1"} 2048`} {
		if !strings.Contains(metrics, k) {
			t.Fatalf("metrics lack %s:\n%s", k, metrics)
		}
	}
}

// gatherText renders the registry's gauges one per line, as
// name{label="value"} value.
func gatherText(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetGauge().GetValue()
			if c := m.GetCounter(); c != nil {
				v = c.GetValue()
			}
			fmt.Fprintf(&b, "%s{%s} %g\n", mf.GetName(), strings.Join(ls, ","), v)
		}
	}
	return b.String()
}

// TestDoctorEndpoint: a viewer runs the doctor; a platform without a
// constructor leader is critical, and the finding says what to do.
func TestDoctorEndpoint(t *testing.T) {
	f := newFixture(t, "zone-1")
	servicetest.AddAllocator(t, f.p, "a1", "zone-1", 4096)
	var rep service.DoctorReport
	f.want(f.do(service.RolePlatformViewer, "GET", "/platform/doctor", nil), 200).decode(t, &rep)
	if rep.Status != service.SeverityCritical || len(rep.Checks) == 0 || rep.Checks[0].ID != "constructor" || rep.Checks[0].Action == "" {
		t.Fatalf("doctor without a constructor: %+v", rep)
	}
	f.want(f.do("", "GET", "/platform/doctor", nil), 401)
}
