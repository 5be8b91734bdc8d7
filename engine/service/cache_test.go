package service_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/service/servicetest"
	"paddock/engine/testenv"
)

// GET of one deployment and its activity come from the watch cache
// without a ZooKeeper request once the cache is caught up, answer what
// the same reads from ZooKeeper answer, and show every change the
// service made before them at once (read-after-write: create, a plan,
// a password reset, a traffic filter attached).
func TestCachedReadsSeeOwnWrites(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	quiet := service.WithLogger(slog.New(slog.DiscardHandler))
	cache := service.NewCache(p.Admin)
	done := make(chan struct{})
	go func() { defer close(done); _ = cache.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := cache.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	svc := service.New(p.Admin, quiet, service.WithCache(cache))
	direct := service.New(p.Admin, quiet) // every read from ZooKeeper
	servicetest.AddAllocator(t, p, "a1", "zone-1", 8192)

	same := func(what string, cached, zk any) {
		t.Helper()
		a, _ := json.Marshal(cached)
		b, _ := json.Marshal(zk)
		if string(a) != string(b) {
			t.Fatalf("%s from the cache:\n%s\nfrom ZooKeeper:\n%s", what, a, b)
		}
	}
	check := func(id string) (service.DeploymentView, service.Activity) {
		t.Helper()
		v, err := svc.GetDeployment(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		a, err := svc.Activity(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		zv, err := direct.GetDeployment(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		za, err := direct.Activity(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		same("GET", v, zv)
		same("activity", a, za)
		return v, a
	}

	res, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "d", Spec: spec(1024, 1), Actor: "t"})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Deployment.ID
	v, a := check(id)
	if v.PendingPlan == nil || a.Pending == nil || v.Security == nil {
		t.Fatalf("the GET right after the create misses its plan or credentials: %+v / %+v", v, a)
	}

	// Another session (the constructor) finishes the plan: the cache
	// shows it once its events are applied.
	servicetest.FinishPlan(t, p, id, engine.PlanSuccess, nil)
	testenv.Eventually(t, 10*time.Second, "the finished plan in the cache", func() bool {
		v, err := svc.GetDeployment(ctx, id)
		return err == nil && v.PendingPlan == nil && v.Status == engine.DeploymentRunning
	})

	if _, err := svc.Resize(ctx, id, 2048, "t"); err != nil {
		t.Fatal(err)
	}
	v, a = check(id)
	if v.PendingPlan == nil || v.PendingPlan.Spec.Elasticsearch.SizeMB != 2048 || len(a.History) != 1 {
		t.Fatalf("the GET right after a resize misses it: pending %+v, history %d", v.PendingPlan, len(a.History))
	}

	if _, err := svc.ResetPassword(ctx, id, "t"); err != nil {
		t.Fatal(err)
	}
	if v, _ = check(id); v.Security == nil || v.Security.Resets != 1 {
		t.Fatalf("the GET right after a password reset misses it: %+v", v.Security)
	}

	f, err := svc.CreateTrafficFilter(ctx, service.TrafficFilterRequest{Name: "office",
		Rules: []engine.TrafficFilterRule{{Source: "10.0.0.0/8"}}}, "t")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AttachTrafficFilter(ctx, f.ID, engine.TrafficFilterAssociation{EntityType: engine.AssociationDeployment, ID: id}, "t"); err != nil {
		t.Fatal(err)
	}
	if v, _ = check(id); len(v.TrafficFilters) != 1 {
		t.Fatalf("the GET right after attaching a filter misses it: %v", v.TrafficFilters)
	}

	keyID, key, err := svc.CreateAPIKey(ctx, "ci", service.RolePlatformAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AuthenticateKey(ctx, key); err != nil {
		t.Fatalf("a key right after its creation: %v", err)
	}

	// Caught up, the reads make no ZooKeeper request.
	before := p.Admin.Stats()
	if _, err := svc.AuthenticateKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GetDeployment(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Activity(ctx, id); err != nil {
		t.Fatal(err)
	}
	if d := p.Admin.Stats().Sub(before); d.Reads != 0 {
		t.Fatalf("authentication, GET and activity from a caught-up cache made %d ZooKeeper reads, want 0", d.Reads)
	}

	// A key revoked here is refused at once.
	if err := svc.RevokeAPIKey(ctx, keyID, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AuthenticateKey(ctx, key); err == nil {
		t.Fatal("a revoked key still authenticates")
	}

	// Unknown deployments still answer not found (from ZooKeeper).
	if _, err := svc.GetDeployment(ctx, "0123456789abcdef0123456789abcdef"); err == nil {
		t.Fatal("GET of an unknown deployment answered")
	}
}
