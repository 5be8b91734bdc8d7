package allocator_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"paddock/agents/allocator"
	"paddock/engine"
)

// TestSimRuntime: the scale-test mode reports hundreds of instances
// running and healthy without containers, advertises use in alive,
// applies a capacity setting live, reports over-capacity assignments,
// removes statuses of unassigned instances, and serves metrics.
func TestSimRuntime(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	cons := p.Connect(t, engine.RoleConstructor)
	ctx := ctxT(t, 2*time.Minute)
	id := "sim-" + engine.RandomToken(3)
	var metricsAddr string
	cfg := allocator.Config{ID: id, Zone: "zone-1", StateDir: t.TempDir(), Runtime: allocator.RuntimeSim, CapacityMB: 64 * 1024,
		MetricsAddr: "127.0.0.1:0", ProbeInterval: 200 * time.Millisecond}
	own, _ := allocator.OwnCredential(cfg.StateDir, id)
	cfg.Store = p.ConnectAllocator(t, id, own)
	r := start(t, p, "", cfg)
	_ = metricsAddr

	const n = 200
	dep := engine.NewID()
	now := time.Now().UTC()
	ops := make([]engine.Op, 0, n)
	for i := 0; i < n; i++ {
		in := engine.Instance{ID: fmt.Sprintf("i-%04d", i), DeploymentID: dep, Kind: engine.KindElasticsearch, Version: "8.17.0",
			SizeMB: 256, CreatedAt: now.Add(time.Duration(i) * time.Millisecond)}
		ops = append(ops, engine.OpCreate(engine.InstancePath(id, in.ID), in))
	}
	if err := cons.Multi(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "all sim instances running and healthy", func() (bool, string) {
		kids, err := cons.Children(ctx, engine.StatusesPath(id))
		if err != nil || len(kids) != n {
			return false, fmt.Sprintf("%d statuses, %v", len(kids), err)
		}
		for _, k := range []string{"i-0000", fmt.Sprintf("i-%04d", n-1)} {
			st, err := readStatus(ctx, cons, id, k)
			if err != nil || !runningHealthy(st) || st.Address != allocator.SimAddress {
				return false, fmt.Sprintf("%s: %+v %v", k, st, err)
			}
		}
		var alive engine.AllocatorAlive
		_, err = cons.GetJSON(ctx, engine.AllocatorAlivePath(id), &alive)
		return err == nil && alive.UsedMB == n*256 && alive.Healthy == n && alive.Instances == n, fmt.Sprintf("alive %+v", alive)
	})

	// A live capacity cut keeps running instances and refuses new ones.
	if err := p.Admin.Put(ctx, engine.AllocatorSettingsPath(id), engine.AllocatorSettings{CapacityMB: 1024}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "capacity cut in record and alive", func() (bool, string) {
		var rec engine.Allocator
		var alive engine.AllocatorAlive
		_, err1 := cons.GetJSON(ctx, engine.AllocatorPath(id), &rec)
		_, err2 := cons.GetJSON(ctx, engine.AllocatorAlivePath(id), &alive)
		return err1 == nil && err2 == nil && rec.CapacityMB == 1024 && alive.CapacityMB == 1024 && alive.FreeMB == 0,
			fmt.Sprintf("record %d alive %+v", rec.CapacityMB, alive)
	})
	assign(t, cons, id, engine.Instance{ID: "late", DeploymentID: dep, Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 256})
	waitStatus(t, cons, id, "late", 30*time.Second, "refused for capacity", func(s engine.InstanceStatus) bool {
		return s.State == engine.StateFailed && strings.Contains(s.Reason, "does not fit")
	})
	if st, _ := readStatus(ctx, cons, id, "i-0000"); !runningHealthy(st) {
		t.Fatalf("a capacity cut disturbed a running instance: %+v", st)
	}

	// Unassigning removes the statuses, and frees room for "late".
	del := make([]engine.Op, 0, n)
	for i := 0; i < n; i++ {
		del = append(del, engine.OpDelete(engine.InstancePath(id, fmt.Sprintf("i-%04d", i)), engine.AnyVersion))
	}
	if err := cons.Multi(ctx, del...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "statuses of unassigned instances removed", func() (bool, string) {
		kids, err := cons.Children(ctx, engine.StatusesPath(id))
		return err == nil && len(kids) == 1 && kids[0] == "late", fmt.Sprint(len(kids), err)
	})
	waitStatus(t, cons, id, "late", 30*time.Second, "admitted once room was freed", runningHealthy)

	// Metrics are served on the per-agent registry.
	var rec engine.Allocator
	if _, err := cons.GetJSON(ctx, engine.AllocatorPath(id), &rec); err != nil || rec.MetricsAddr == "" {
		t.Fatalf("record has no metrics address: %+v %v", rec, err)
	}
	body := get(t, "http://"+rec.MetricsAddr+"/metrics")
	for _, want := range []string{"paddock_allocator_instances{state=\"running\"} 1", "paddock_allocator_capacity_mb 1024", "paddock_allocator_reconcile_passes_total"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(body, "paddock_allocator"))
		}
	}
	if h := get(t, "http://"+rec.MetricsAddr+"/healthz"); !strings.Contains(h, `"status":"ok"`) {
		t.Errorf("healthz = %s", h)
	}
	r.stop(t)
	// A clean stop withdraws the alive node at once.
	if ok, _, _ := cons.Exists(ctx, engine.AllocatorAlivePath(id)); ok {
		t.Fatal("alive node still present after the allocator stopped")
	}
}

func get(t testing.TB, url string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSimQuickPasses: with no probe tick (an hour) and no other change,
// passes are quick ones (the changed and unsettled instances only), and
// they alone take instances through their lives: created, started,
// probed healthy and acknowledged; re-created on a new version; removed
// with their status when unassigned.
func TestSimQuickPasses(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	cons := p.Connect(t, engine.RoleConstructor)
	ctx := ctxT(t, 2*time.Minute)
	id := "simq-" + engine.RandomToken(3)
	cfg := allocator.Config{ID: id, Zone: "zone-1", StateDir: t.TempDir(), Runtime: allocator.RuntimeSim, CapacityMB: 64 * 1024,
		MetricsAddr: "127.0.0.1:0", ProbeInterval: time.Hour}
	own, _ := allocator.OwnCredential(cfg.StateDir, id)
	cfg.Store = p.ConnectAllocator(t, id, own)
	r := start(t, p, "", cfg)
	defer r.stop(t)

	dep := engine.NewID()
	inst := func(i int, version string) engine.Instance {
		return engine.Instance{ID: fmt.Sprintf("q-%02d", i), DeploymentID: dep, Kind: engine.KindElasticsearch, Version: version, SizeMB: 256}
	}
	// Several bursts, each acknowledged before the next.
	for b := range 3 {
		for i := range 5 {
			assign(t, cons, id, inst(b*5+i, "8.17.0"))
		}
		for i := range 5 {
			waitStatus(t, cons, id, inst(b*5+i, "").ID, 30*time.Second, "running and healthy", runningHealthy)
		}
	}
	first, err := readStatus(ctx, cons, id, "q-00")
	if err != nil {
		t.Fatal(err)
	}
	// A new version re-creates the node (a new container).
	if err := cons.Put(ctx, engine.InstancePath(id, "q-00"), inst(0, "8.18.0")); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, cons, id, "q-00", 30*time.Second, "re-created on the new version", func(s engine.InstanceStatus) bool {
		return runningHealthy(s) && s.Version == "8.18.0" && s.ContainerID != first.ContainerID
	})
	// Unassigned: removed, its status deleted.
	unassign(t, cons, id, "q-01")
	waitFor(t, 30*time.Second, "status of the unassigned instance removed", func() (bool, string) {
		ok, _, err := cons.Exists(ctx, engine.StatusPath(id, "q-01"))
		return err == nil && !ok, fmt.Sprint(ok, err)
	})
	var rec engine.Allocator
	if _, err := cons.GetJSON(ctx, engine.AllocatorPath(id), &rec); err != nil || rec.MetricsAddr == "" {
		t.Fatalf("record has no metrics address: %+v %v", rec, err)
	}
	var passes, quick float64
	for _, l := range strings.Split(get(t, "http://"+rec.MetricsAddr+"/metrics"), "\n") {
		if v, ok := strings.CutPrefix(l, "paddock_allocator_reconcile_passes_total "); ok {
			_, _ = fmt.Sscan(v, &passes)
		}
		if v, ok := strings.CutPrefix(l, "paddock_allocator_reconcile_quick_passes_total "); ok {
			_, _ = fmt.Sscan(v, &quick)
		}
	}
	if quick == 0 || quick < passes/2 {
		t.Fatalf("%v quick passes of %v: the instances' changes should take quick passes", quick, passes)
	}
	t.Logf("%v passes, %v of them quick", passes, quick)
}
