package api

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paddock/agents/allocator"
	"paddock/agents/constructor"
	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/testenv"
)

// TestEndToEndSim drives the API against a live platform: real
// ZooKeeper, the real constructor and two allocators in sim mode (no
// containers: Docker adds nothing to what is checked here), all
// in-process. Plans written by the API are executed by the constructor
// and followed through the activity endpoint.
func TestEndToEndSim(t *testing.T) {
	f := newFixture(t, "zone-1", "zone-2")
	// Made before the cleanup below is registered, so it is removed after
	// the agents writing into it have stopped (cleanups run last first).
	stateDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	log := slog.New(slog.DiscardHandler)
	run := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("%s stopped: %v", name, err)
			}
		}()
	}
	for _, a := range []struct{ id, zone string }{{"sim-1", "zone-1"}, {"sim-2", "zone-2"}} {
		cfg := allocator.Config{ID: a.id, Zone: a.zone, CapacityMB: 4096, StateDir: filepath.Join(stateDir, a.id), Runtime: allocator.RuntimeSim,
			Logger: log, Registry: prometheus.NewRegistry(), Version: "test",
			ZK: engine.Options{Servers: env.Servers(), Role: engine.RoleAllocator, Credential: f.p.Creds[engine.RoleAllocator],
				SessionTimeout: 4 * time.Second, Logger: log}}
		run("allocator "+a.id, func(ctx context.Context) error { return allocator.Run(ctx, cfg) })
	}
	cons := f.p.Connect(t, engine.RoleConstructor)
	run("constructor", func(ctx context.Context) error {
		return constructor.Run(ctx, constructor.Config{Store: cons, ID: "cons-e2e", Logger: log, HealthyTimeout: 30 * time.Second})
	})
	waitFor(t, 30*time.Second, "two connected allocators", func() bool {
		var al AllocatorList
		a := f.do(admin, "GET", "/platform/infrastructure/allocators", nil)
		if a.status != 200 {
			return false
		}
		a.decode(t, &al)
		n := 0
		for _, x := range al.Allocators {
			if x.Connected {
				n++
			}
		}
		return n == 2
	})

	// Create: the constructor runs the plan; activity follows it.
	b := createBody("e2e", 1024, 2)
	b.RequestID = "e2e-1"
	var cr service.CreateResult
	f.want(f.do(admin, "POST", "/deployments", b), 201).decode(t, &cr)
	id := cr.Deployment.ID
	plan := waitPlan(t, f, id, cr.PlanID)
	if plan.Status != engine.PlanSuccess || plan.Steps[len(plan.Steps)-1].Status != engine.PlanSuccess {
		t.Fatalf("create plan: %+v", plan)
	}
	var dv service.DeploymentView
	f.want(f.do(admin, "GET", "/deployments/"+id, nil), 200).decode(t, &dv)
	if dv.Status != engine.DeploymentRunning || len(dv.Instances) != 2 || dv.Instances[0].Zone == dv.Instances[1].Zone {
		t.Fatalf("deployment after create: %+v", dv)
	}
	// The idempotent replay still returns the same deployment.
	var again service.CreateResult
	f.want(f.do(admin, "POST", "/deployments", b), 200).decode(t, &again)
	if again.Deployment.ID != id {
		t.Fatalf("replay after completion: %s, want %s", again.Deployment.ID, id)
	}
	// What the allocators have left: 3 GB each; 4 GB cannot be placed.
	eb := f.want(f.do(admin, "POST", "/deployments", createBody("big", 4096, 1)), 422).errBody(t)
	if len(eb.Errors[0].Explain) != 2 {
		t.Fatalf("422 explain: %+v", eb.Errors[0])
	}
	// An allocator in maintenance takes nothing new: validate_only shows it.
	f.want(f.do(admin, "POST", "/platform/infrastructure/allocators/sim-1/maintenance-mode/_start", nil), 200)
	f.want(f.do(admin, "POST", "/deployments?validate_only=true", createBody("v", 1024, 2)), 422)
	var vo service.CreateResult
	f.want(f.do(admin, "POST", "/deployments?validate_only=true", createBody("v", 1024, 1)), 200).decode(t, &vo)
	if vo.Placement.Placements[0].Allocator != "sim-2" {
		t.Fatalf("validate_only placed on %+v", vo.Placement.Placements)
	}
	f.want(f.do(admin, "POST", "/platform/infrastructure/allocators/sim-1/maintenance-mode/_stop", nil), 200)

	// Delete: the constructor removes the instances; the list hides it.
	var pr service.PlanResult
	f.want(f.do(admin, "DELETE", "/deployments/"+id, nil), 202).decode(t, &pr)
	plan = waitPlan(t, f, id, pr.PlanID)
	if plan.Status != engine.PlanSuccess {
		t.Fatalf("delete plan: %+v", plan)
	}
	var list DeploymentList
	f.want(f.do(admin, "GET", "/deployments", nil), 200).decode(t, &list)
	if len(list.Deployments) != 0 {
		t.Fatalf("deleted deployment listed: %+v", list)
	}
	waitFor(t, 30*time.Second, "allocators emptied", func() bool {
		var al AllocatorList
		f.do(admin, "GET", "/platform/infrastructure/allocators", nil).decode(t, &al)
		for _, a := range al.Allocators {
			if len(a.Instances) > 0 {
				return false
			}
		}
		return true
	})
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, d, what, cond)
}

// waitPlan follows a plan through the activity endpoint until it is in
// the history.
func waitPlan(t *testing.T, f *fixture, id, planID string) engine.Plan {
	t.Helper()
	var out engine.Plan
	waitFor(t, 60*time.Second, "plan "+planID+" finished", func() bool {
		var act service.Activity
		f.want(f.do(service.RolePlatformViewer, "GET", "/deployments/"+id+"/activity", nil), 200).decode(t, &act)
		if act.Pending != nil && act.Pending.ID == planID {
			return false
		}
		p, ok := act.Plan(planID)
		out = p
		return ok
	})
	return out
}
