package tui

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/service/servicetest"
	"paddock/engine/zktest"
	"paddock/themes"
	"paddock/tui/data"
)

var env *zktest.Env

func TestMain(m *testing.M) { os.Exit(zktest.Main(m, 1, &env)) }

// startLive runs a Live source over store until the test ends.
func startLive(t testing.TB, s *engine.Store) *data.Live {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	live := data.NewLive(s, nil)
	done := make(chan struct{})
	go func() { defer close(done); live.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return live
}

// waitSnap waits until cond holds on the source's snapshot.
func waitSnap(t testing.TB, src data.Source, what string, cond func(data.Snapshot) bool) data.Snapshot {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		s := src.Snapshot()
		if cond(s) {
			return s
		}
		select {
		case <-src.Changed():
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s; last snapshot: loaded=%v connected=%v deployments=%d proxies=%d",
				what, s.Loaded, s.Connected, len(s.Deployments), len(s.Proxies))
		}
	}
}

// TestLiveFollowsZooKeeper drives real changes through the service
// layer (the console's own actions) and a proxy registration, and sees
// each in the snapshot the console renders.
func TestLiveFollowsZooKeeper(t *testing.T) {
	p := env.Fresh(t, "zone-1", "zone-2")
	live := startLive(t, p.Admin)
	waitSnap(t, live, "first load", func(s data.Snapshot) bool { return s.Loaded && len(s.Zones) == 2 })
	a1 := servicetest.AddAllocator(t, p, "alloc-1", "zone-1", 4096)
	servicetest.AddAllocator(t, p, "alloc-2", "zone-2", 4096)
	waitSnap(t, live, "two live allocators", func(s data.Snapshot) bool {
		return len(s.Allocators) == 2 && !s.Allocators[0].Lost() && !s.Allocators[1].Lost()
	})

	act := ServiceActions{Svc: service.New(p.Admin, service.WithLogger(slog.New(slog.DiscardHandler))), Actor: "console"}
	ctx := context.Background()
	if err := act.SetMaintenance(ctx, "alloc-2", true); err != nil {
		t.Fatalf("maintenance through the service: %v", err)
	}
	waitSnap(t, live, "maintenance shown", func(s data.Snapshot) bool {
		a, _ := s.Allocator("alloc-2")
		return a.Maintenance && s.Zones[1].Maintenance == 1
	})
	if err := act.SetMaintenance(ctx, "alloc-2", false); err != nil {
		t.Fatal(err)
	}
	created, err := act.CreateDeployment(ctx, CreateRequest{Name: "orders", Version: engine.DefaultVersions[0], SizeMB: 1024, Zones: 1})
	if err != nil {
		t.Fatalf("create through the service: %v", err)
	}
	if created.Username != "elastic" || len(created.Password) < 20 {
		t.Fatalf("the console's create did not get the elastic credentials to show: %+v", created.Username)
	}
	id := created.ID
	s := waitSnap(t, live, "new deployment with its pending plan", func(s data.Snapshot) bool {
		d, ok := s.Deployment(id)
		return ok && d.Pending != nil
	})
	if d, _ := s.Deployment(id); d.Name != "orders" || d.Pending.Action != engine.ActionCreate {
		t.Fatalf("deployment in snapshot: %+v", d.Deployment)
	}
	if s.PendingPlans != 1 {
		t.Fatalf("pending plans = %d", s.PendingPlans)
	}

	// The console's view of it.
	app := newTestApp(t, live, act, 2)
	app.Update(snapshotMsg{})
	if v := app.View(); !strings.Contains(v, "orders") {
		t.Fatalf("deployments screen lacks the new deployment:\n%s", v)
	}

	// A second plan is refused by the service (one plan at a time): the
	// console reports the service's error.
	if err := act.ResizeDeployment(ctx, id, 2048); err == nil {
		t.Fatal("resize during a pending create plan succeeded; want a conflict")
	}

	ps := p.Connect(t, engine.RoleProxy)
	if err := ps.CreateEphemeral(ctx, engine.ProxyPath("proxy-t"), engine.ProxyRecord{ID: "proxy-t", HTTPAddr: "127.0.0.1:9200", State: "serving"}); err != nil {
		t.Fatal(err)
	}
	waitSnap(t, live, "proxy registered", func(s data.Snapshot) bool { return len(s.Proxies) == 1 && s.Proxies[0].ID == "proxy-t" })
	ps.Close()
	waitSnap(t, live, "proxy gone with its session", func(s data.Snapshot) bool { return len(s.Proxies) == 0 })

	a1.Kill()
	waitSnap(t, live, "lost allocator alert", func(s data.Snapshot) bool {
		a, _ := s.Allocator("alloc-1")
		return a.Lost() && len(s.Alerts) > 0 && strings.Contains(s.Alerts[0].Message, "alloc-1")
	})
}

// TestLiveStaleThenReconnects cuts the console's connection: the last
// state stays, marked stale; changes made meanwhile show once the
// connection is back, without any action of the operator. The long cut
// outlasts the session timeout (4s in zktest): the session expires and
// the caches rebuild from a new session.
func TestLiveStaleThenReconnects(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  time.Duration
	}{
		{"short outage", 500 * time.Millisecond},
		{"session expiry", 6 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := env.Fresh(t, "zone-1")
			servicetest.AddAllocator(t, p, "alloc-1", "zone-1", 8192)
			part, err := zktest.NewPartition(env.Servers())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(part.Close)
			console := p.ConnectVia(t, part.Addr(), engine.RoleAdmin)
			live := startLive(t, console)
			waitSnap(t, live, "first load", func(s data.Snapshot) bool { return s.Loaded && s.Connected })

			ctx := context.Background()
			svc := service.New(p.Admin, service.WithLogger(slog.New(slog.DiscardHandler)))
			spec := engine.DeploymentSpec{Version: engine.DefaultVersions[0], Elasticsearch: engine.Topology{SizeMB: 512, Zones: 1}}
			if _, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "before", Spec: spec}); err != nil {
				t.Fatal(err)
			}
			waitSnap(t, live, "deployment before the cut", func(s data.Snapshot) bool { return len(s.Deployments) == 1 })

			part.Cut()
			s := waitSnap(t, live, "stale marker", func(s data.Snapshot) bool { return !s.Connected })
			if len(s.Deployments) != 1 || s.Alerts[0].Severity != data.SevCritical || !strings.Contains(s.Alerts[0].Message, "ZooKeeper") {
				t.Fatalf("stale snapshot lost its state or alert: deployments=%d alerts=%v", len(s.Deployments), s.Alerts)
			}
			app := newTestApp(t, live, nil, 0)
			app.c.Now = time.Now
			app.Update(snapshotMsg{})
			if v := app.View(); !strings.Contains(v, "STALE") {
				t.Fatalf("no stale marker on screen:\n%s", v)
			}
			if _, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "during", Spec: spec}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(tc.cut) // the outage itself (scenario length, not an assertion)
			part.Restore()
			waitSnap(t, live, "reconnected with the change made during the cut", func(s data.Snapshot) bool {
				return s.Connected && len(s.Deployments) == 2
			})
			app.Update(snapshotMsg{})
			if v := app.View(); strings.Contains(v, "STALE") || !strings.Contains(v, "live") {
				t.Fatalf("still stale after reconnecting:\n%s", v)
			}
		})
	}
}

// BenchmarkChangeToScreen measures ZooKeeper-change-to-screen latency:
// a proxy record is rewritten in ZooKeeper, and the clock stops when
// the console's Proxies screen renders the new value.
func BenchmarkChangeToScreen(b *testing.B) {
	p := env.Fresh(b, "zone-1")
	live := startLive(b, p.Admin)
	waitSnap(b, live, "first load", func(s data.Snapshot) bool { return s.Loaded })
	ps := p.Connect(b, engine.RoleProxy)
	ctx := context.Background()
	rec := engine.ProxyRecord{ID: "proxy-b", HTTPAddr: "127.0.0.1:9200", State: "s0"}
	if err := ps.CreateEphemeral(ctx, engine.ProxyPath("proxy-b"), rec); err != nil {
		b.Fatal(err)
	}
	app := newTestApp(&testing.T{}, live, nil, 4)
	app.c.Now = time.Now
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec.State = fmt.Sprintf("s%d", i+1)
		want := rec.State
		if _, err := ps.Set(ctx, engine.ProxyPath("proxy-b"), rec, engine.AnyVersion); err != nil {
			b.Fatal(err)
		}
		for {
			<-live.Changed()
			app.Update(snapshotMsg{})
			if strings.Contains(app.View(), " "+want+" ") {
				break
			}
		}
	}
}

// TestAccessByKey: the console started with a viewer key refuses every
// action with the role's reason, before and at the call; a
// deployment-manager key acts on deployments, not on allocators; a
// wrong key does not open the console.
func TestAccessByKey(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svc := service.New(p.Admin, service.WithLogger(slog.New(slog.DiscardHandler)))
	servicetest.AddAllocator(t, p, "alloc-1", "zone-1", 4096)
	_, viewer, err := svc.CreateAPIKey(ctx, "oncall", service.RolePlatformViewer)
	if err != nil {
		t.Fatal(err)
	}
	_, manager, err := svc.CreateAPIKey(ctx, "ci", service.RoleDeploymentManager)
	if err != nil {
		t.Fatal(err)
	}

	perm, acts, err := access(ctx, svc, false, viewer)
	if err != nil {
		t.Fatal(err)
	}
	if perm.Role != service.RolePlatformViewer || perm.Who != "key oncall" {
		t.Fatalf("viewer permissions: %+v", perm)
	}
	for _, a := range []service.Access{service.AccessDeployments, service.AccessPlatform} {
		if err := perm.Check(a); err == nil || !strings.Contains(err.Error(), "platform-viewer") {
			t.Fatalf("viewer may %s: %v", a, err)
		}
	}
	// Even called directly, the actions refuse and write nothing.
	if _, err := acts.CreateDeployment(ctx, CreateRequest{Name: "x", SizeMB: 1024, Zones: 1}); err == nil || !strings.Contains(err.Error(), "platform-viewer") {
		t.Fatalf("viewer create: %v", err)
	}
	if err := acts.SetMaintenance(ctx, "alloc-1", true); err == nil {
		t.Fatal("viewer set maintenance")
	}
	if deps, _ := svc.ListDeployments(ctx, true); len(deps) != 0 {
		t.Fatalf("viewer wrote %d deployments", len(deps))
	}

	perm, acts, err = access(ctx, svc, false, manager)
	if err != nil {
		t.Fatal(err)
	}
	if perm.Check(service.AccessDeployments) != nil || perm.Check(service.AccessPlatform) == nil {
		t.Fatalf("manager permissions: %+v", perm)
	}
	created, err := acts.CreateDeployment(ctx, CreateRequest{Name: "by-manager", SizeMB: 1024, Zones: 1})
	if err != nil {
		t.Fatal(err)
	}
	v, err := svc.GetDeployment(ctx, created.ID)
	if err != nil || v.PendingPlan == nil || !strings.Contains(v.PendingPlan.CreatedBy, "ci") {
		t.Fatalf("manager's plan: %+v %v", v.PendingPlan, err)
	}
	if err := acts.VacateAllocator(ctx, "alloc-1"); err == nil || !strings.Contains(err.Error(), "platform access") {
		t.Fatalf("manager vacate: %v", err)
	}

	// Read-only wins over any key.
	perm, acts, _ = access(ctx, svc, true, manager)
	if err := acts.RestartDeployment(ctx, created.ID); err == nil || !strings.Contains(err.Error(), "read-only") || perm.Badge() != "read-only" {
		t.Fatalf("read-only restart: %v (badge %q)", err, perm.Badge())
	}
	if _, _, err := access(ctx, svc, false, "nope.nope"); err == nil || !strings.Contains(err.Error(), "API key was refused") {
		t.Fatalf("bad key: %v", err)
	}
}

// TestPlanHeldThenCancelled: a plan held on a step past its deadline on
// real ZooKeeper (the constructor's step log: a node that never becomes
// healthy) shows its waiting reason and BLOCKED on the Plans screen and
// in the Overview's alerts; the operator cancels it from the console
// with the typed confirmation, and the cancel reaches ZooKeeper.
func TestPlanHeldThenCancelled(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	live := startLive(t, p.Admin)
	servicetest.AddAllocator(t, p, "alloc-1", "zone-1", 4096)
	svc := service.New(p.Admin, service.WithLogger(slog.New(slog.DiscardHandler)))
	act := ServiceActions{Svc: svc, Actor: "console"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	created, err := act.CreateDeployment(ctx, CreateRequest{Name: "stuck", Version: engine.DefaultVersions[0], SizeMB: 1024, Zones: 1})
	if err != nil {
		t.Fatal(err)
	}
	id := created.ID
	// The constructor's step log of a node that never becomes healthy.
	now := time.Now()
	var plan engine.Plan
	if _, err := p.Admin.Update(ctx, engine.PendingPlanPath(id), &plan, func() error {
		dl := now.Add(-90 * time.Second)
		plan.Status = engine.PlanRunning
		plan.Steps = []engine.PlanStep{
			{Name: "place-instances", Status: engine.PlanSuccess, Started: now.Add(-11 * time.Minute), Ended: ptr(now.Add(-11 * time.Minute))},
			{Name: "wait-healthy", Status: engine.PlanRunning, Started: now.Add(-11 * time.Minute), Deadline: &dl,
				Waiting: "0 of 1 instances healthy; waiting for instance stuck-es-0 on alloc-1 (starting)"},
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitSnap(t, live, "the held plan", func(s data.Snapshot) bool {
		d, ok := s.Deployment(id)
		return ok && d.Pending != nil && len(d.Pending.Steps) == 2
	})

	app := New(ctx, Options{Source: live, Actions: act, Styles: themes.MustGet("no-color"), Tick: -1, Screen: tabOverview})
	tm := session(t, app, 140, 40, "plan create of stuck blocked at wait-healthy")
	send(tm, keyMsg("4"))
	waitOut(t, tm, "BLOCKED 1m3", "now: 0 of 1 instances healthy; waiting for instance stuck-es-0 on alloc-1")
	send(tm, keyMsg("x"))
	waitOut(t, tm, "Type stuck to confirm")
	send(tm, typed("stuck")...)
	send(tm, keyMsg("enter"))
	waitOut(t, tm, "cancel requested")
	finish(t, tm)
	var got engine.Plan
	if _, err := p.Admin.GetJSON(ctx, engine.PendingPlanPath(id), &got); err != nil || !got.CancelRequested {
		t.Fatalf("cancel did not reach ZooKeeper: %+v %v", got, err)
	}
}

func ptr[T any](v T) *T { return &v }
