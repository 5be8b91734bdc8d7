package constructor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"paddock/agents/allocator"
	"paddock/engine"
)

// simNodes is the NodeAPI of sim allocators: their instances only exist
// as records, so there is no data to move (create plans only set peers).
type simNodes struct{}

func (simNodes) Snapshot(context.Context, string, string, string) error { return nil }
func (simNodes) Restore(context.Context, string, string, string) error  { return nil }
func (simNodes) SetPeers(context.Context, string, []string) error       { return nil }
func (simNodes) LatestSnapshot(context.Context, string, string) (string, error) {
	return "", nil
}

// BenchmarkZooKeeper1000Deployments: 1,000 deployments of 3 instances
// (one per zone) against 100 allocators in 3 zones running the sim
// runtime (instances only acknowledged), through real ZooKeeper, the
// real allocator agents and the constructor. Reports the time until every
// plan succeeded (all 3,000 instances placed, acknowledged running and
// healthy by their allocators, routes written). Run with
//
//	go test ./agents/constructor -run '^$' -bench ZooKeeper -benchtime 1x
func BenchmarkZooKeeper1000Deployments(b *testing.B) {
	allocators, deployments := 100, 1000
	if n, err := strconv.Atoi(os.Getenv("PADDOCK_BENCH_DEPLOYMENTS")); err == nil && n > 0 {
		deployments = n
	}
	for b.Loop() {
		elapsed, placed := runZKScale(b, allocators, deployments)
		b.ReportMetric(elapsed.Seconds(), "s-total")
		b.ReportMetric(float64(deployments)/elapsed.Seconds(), "deployments/s")
		b.ReportMetric(float64(placed)/elapsed.Seconds(), "instances/s")
	}
}

func runZKScale(b *testing.B, allocators, deployments int) (time.Duration, int) {
	p := env.Fresh(b, "zone-1", "zone-2", "zone-3")
	admin := p.Admin
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range allocators {
		id := fmt.Sprintf("sim-%03d", i)
		dir := b.TempDir()
		own, err := allocator.OwnCredential(dir, id)
		if err != nil {
			b.Fatal(err)
		}
		s := p.ConnectAllocator(b, id, own)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = allocator.Run(ctx, allocator.Config{ID: id, Zone: fmt.Sprintf("zone-%d", i%3+1), CapacityMB: 64 << 10, StateDir: dir,
				Runtime: allocator.RuntimeSim, Store: s, Logger: quiet(), ProbeInterval: 500 * time.Millisecond})
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		kids, _ := admin.Children(ctx, engine.PathAllocators)
		alive := 0
		for _, k := range kids {
			if ok, _, _ := admin.Exists(ctx, engine.AllocatorAlivePath(k)); ok {
				alive++
			}
		}
		if alive == allocators {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d allocators alive after 60s", alive, allocators)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cs := p.Connect(b, engine.RoleConstructor)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = Run(ctx, Config{Store: cs, ID: "bench", Nodes: simNodes{}, Logger: quiet(), HealthyTimeout: 5 * time.Minute})
	}()
	// Watch deployments through a cache, as a console would.
	watch := engine.NewTreeCache(admin, engine.PathDeployments)
	wg.Add(1)
	go func() { defer wg.Done(); _ = watch.Run(ctx) }()
	<-watch.Ready()

	start := time.Now()
	sp := spec("8.17.0", 1024, 3)
	var cwg sync.WaitGroup
	for w := range 8 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for i := w; i < deployments; i += 8 {
				id := engine.NewID()
				now := time.Now().UTC()
				dep := engine.Deployment{ID: id, Name: fmt.Sprintf("bench-%d", i), CreatedAt: now, UpdatedAt: now, Status: engine.DeploymentInitializing, Instances: []engine.PlacedInstance{}}
				plan := engine.Plan{ID: engine.NewID(), DeploymentID: id, Action: engine.ActionCreate, Spec: sp, Strategy: engine.PlanGrowAndShrink,
					CreatedAt: now, Status: engine.PlanPending, Steps: []engine.PlanStep{}}
				if err := admin.Multi(ctx, engine.OpCreate(engine.DeploymentPath(id), dep), engine.OpCreate(engine.PlansPath(id), nil),
					engine.OpCreate(engine.PlanHistoryPath(id), nil), engine.OpCreate(engine.PendingPlanPath(id), plan)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	cwg.Wait()
	done, failed := 0, 0
	failedID := ""
	limit := time.After(10 * time.Minute)
	for done+failed < deployments {
		select {
		case <-time.After(250 * time.Millisecond):
		case <-limit:
			b.Fatalf("after 10 minutes: %d of %d deployments running, %d failed", done, deployments, failed)
		}
		done, failed = 0, 0
		for _, id := range watch.Children(engine.PathDeployments) {
			n, ok := watch.Get(engine.DeploymentPath(id))
			var d engine.Deployment
			if !ok || json.Unmarshal(n.Data, &d) != nil {
				continue
			}
			switch {
			case d.LastPlanStatus == engine.PlanSuccess && d.Status == engine.DeploymentRunning:
				done++
			case d.LastPlanStatus == engine.PlanError:
				failed++
				if failedID == "" {
					failedID = id
				}
			}
		}
	}
	elapsed := time.Since(start)
	if failed > 0 {
		for _, name := range watch.Children(engine.PlanHistoryPath(failedID)) {
			var p engine.Plan
			if n, ok := watch.Get(engine.PlanHistoryEntryPath(failedID, name)); ok && json.Unmarshal(n.Data, &p) == nil {
				b.Logf("failed plan: %s", stepNames(p))
				for _, st := range p.Steps {
					b.Logf("  %s %s: %s", st.Name, st.Status, st.Message)
				}
			}
		}
		b.Fatalf("%d deployments failed", failed)
	}
	// Every instance acknowledged running by its allocator.
	inv, err := admin.Inventory(ctx)
	if err != nil {
		b.Fatal(err)
	}
	running := 0
	for _, a := range inv {
		for _, st := range a.Statuses {
			if st.State == engine.StateRunning && st.Healthy {
				running++
			}
		}
	}
	if running != 3*deployments {
		b.Fatalf("%d instances running, want %d", running, 3*deployments)
	}
	return elapsed, running
}
