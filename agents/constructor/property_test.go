package constructor

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock/engine"
)

// TestConcurrentPlansAcrossLeaderChange is a property test on real
// ZooKeeper and real (sim) allocators: a seeded burst of concurrent
// creates, then resizes and deletes, more than the fleet can hold, with
// the leading constructor killed in the middle. Whatever the order the
// plans run in, and wherever the leader dies:
//   - no allocator is ever assigned more memory than it has (an
//     observer checks every change it sees, and the allocators admit
//     nothing that does not fit);
//   - every instance of a successful plan is placed exactly once, and
//     nothing else of the deployment stays assigned (no orphan of a
//     failed or interrupted plan);
//   - every plan ends once, in the history, with a complete step log.
//
// PADDOCK_TEST_SEED replays a run.
func TestConcurrentPlansAcrossLeaderChange(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("PADDOCK_TEST_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (PADDOCK_TEST_SEED=%d replays it)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	h := newHarness(t, "zone-1", "zone-2", "zone-3")
	const capMB = 6144
	actx, stopAllocs := context.WithCancel(context.Background())
	var awg sync.WaitGroup
	t.Cleanup(func() { stopAllocs(); awg.Wait() })
	startSimAllocators(t, actx, &awg, h.p, 9, capMB, 200*time.Millisecond)

	// The observer: every change of the allocators' subtree it sees is
	// checked against the capacities.
	obs := engine.NewTreeCache(h.p.Connect(t, engine.RoleAdmin), engine.PathAllocators)
	evs := obs.Listen()
	octx, ocancel := context.WithCancel(context.Background())
	defer ocancel()
	var omu sync.Mutex
	var overcommits []string
	go func() { _ = obs.Run(octx) }()
	go func() {
		used := map[string]map[string]int{} // allocator → instance → MB
		for {
			select {
			case <-octx.Done():
				return
			case ev := <-evs:
				parts := strings.Split(strings.TrimPrefix(ev.Path, engine.PathAllocators+"/"), "/")
				if len(parts) != 3 || parts[1] != "instances" {
					continue
				}
				a := parts[0]
				if used[a] == nil {
					used[a] = map[string]int{}
				}
				var in engine.Instance
				if ev.Type == engine.NodeRemoved || json.Unmarshal(ev.Data, &in) != nil {
					delete(used[a], parts[2])
				} else {
					used[a][parts[2]] = in.SizeMB
				}
				sum := 0
				for _, mb := range used[a] {
					sum += mb
				}
				if sum > capMB {
					omu.Lock()
					overcommits = append(overcommits, fmt.Sprintf("%s: %d MB assigned of %d MB", a, sum, capMB))
					omu.Unlock()
				}
			}
		}
	}()
	<-obs.Ready()

	c1 := h.startConstructor("c1", simNodes{}, func(c *Config) { c.MaxPlans = 8 })
	h.waitFor("c1 to lead", 20*time.Second, func() bool {
		kids, _ := h.admin.Children(context.Background(), engine.PathLeaderCons)
		return len(kids) == 1
	})
	h.startConstructor("c2", simNodes{}, func(c *Config) { c.MaxPlans = 8 })

	// Wave 1: creates, more than fits (9 × 6 GB = 54 GB for about 90 GB asked).
	type asked struct {
		id    string
		plans []string
	}
	var deps []*asked
	var mu sync.Mutex
	var wg sync.WaitGroup
	sizes := []int{512, 1024, 2048}
	for range 45 {
		sp := spec("8.17.0", sizes[rng.IntN(3)], 1+rng.IntN(3))
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, planID := h.createDeployment(sp)
			mu.Lock()
			deps = append(deps, &asked{id: id, plans: []string{planID}})
			mu.Unlock()
		}()
	}
	wg.Wait()
	// Kill the leader mid-burst: once 10 to 19 plans ended, preferably
	// (for up to 5 s more) while plans run with their instances assigned
	// but not yet acknowledged or finished. Its session is closed under
	// it (its election znode goes at once, so c2 takes over while c1's
	// executors are still in their steps and writes), then c1 stops.
	killAt := rng.IntN(10) + 10
	var midPlan []string
	var reached time.Time
	h.waitFor(fmt.Sprintf("%d plans to end", killAt), 60*time.Second, func() bool {
		n := 0
		midPlan = midPlan[:0]
		mu.Lock()
		ds := slices.Clone(deps)
		mu.Unlock()
		for _, d := range ds {
			n += len(h.history(d.id))
			if p, ok := h.pendingPlan(d.id); ok && p.Status == engine.PlanRunning && len(p.NewInstances) > 0 {
				midPlan = append(midPlan, fmt.Sprintf("%s (%s)", d.id[:8], lastStep(p).Name))
			}
		}
		if n < killAt {
			return false
		}
		if reached.IsZero() {
			reached = time.Now()
		}
		return len(midPlan) > 0 || time.Since(reached) > 5*time.Second
	})
	c1.crash()
	t.Logf("leader's session closed after %d plans ended, with %d plans mid-plan: %v", killAt, len(midPlan), midPlan)
	// Wave 2, while c2 takes over: resizes and deletes of the
	// deployments that exist.
	for _, d := range deps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var plan engine.Plan
			h.waitFor("the deployment's create to end", 90*time.Second, func() bool {
				_, pending := h.pendingPlan(d.id)
				return !pending
			})
			cur := h.deployment(d.id)
			if cur.Status != engine.DeploymentRunning {
				return
			}
			mu.Lock()
			r := rng.IntN(3)
			size := sizes[rng.IntN(3)]
			mu.Unlock()
			switch r {
			case 0:
				plan = engine.Plan{Action: engine.ActionDelete}
			case 1:
				plan = engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", size, cur.Spec.Elasticsearch.Zones)}
			default:
				return
			}
			pid := h.submit(d.id, plan)
			mu.Lock()
			d.plans = append(d.plans, pid)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, d := range deps {
		for _, pid := range d.plans {
			h.waitPlan(d.id, pid, 120*time.Second)
		}
	}

	// Every plan ended once, with a complete step log.
	succeeded, failed := 0, 0
	for _, d := range deps {
		hist := h.history(d.id)
		if len(hist) != len(d.plans) {
			t.Fatalf("deployment %s: %d plans in the history, %d asked", d.id, len(hist), len(d.plans))
		}
		for i, p := range hist {
			if p.ID != d.plans[i] {
				t.Fatalf("deployment %s: history %v, asked %v", d.id, hist, d.plans)
			}
			if last := lastStep(p); last.Name != StepCompleted {
				t.Fatalf("plan %s does not end with %q: %s", p.ID, StepCompleted, stepNames(p))
			}
			for _, st := range p.Steps {
				if st.Ended == nil || st.Status == engine.PlanRunning || st.AppliedBy == "" {
					t.Fatalf("plan %s: step %+v left incomplete: %s", p.ID, st, stepNames(p))
				}
			}
			if p.Status == engine.PlanSuccess {
				succeeded++
			} else {
				failed++
			}
		}
	}
	t.Logf("%d plans succeeded, %d failed", succeeded, failed)
	if succeeded == 0 || failed == 0 {
		t.Fatalf("the burst should both fit and not fit: %d succeeded, %d failed", succeeded, failed)
	}
	// Exactly the deployments' instances are assigned, once each, and
	// acknowledged running.
	inv, err := h.admin.Inventory(ctxT(t, 20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	assigned := map[string]string{} // instance → allocator
	for _, a := range inv {
		total := 0
		for _, in := range a.Instances {
			if prev, dup := assigned[in.ID]; dup {
				t.Fatalf("instance %s assigned twice (%s and %s)", in.ID, prev, a.ID())
			}
			assigned[in.ID] = a.ID()
			total += in.SizeMB
		}
		if total > capMB {
			t.Fatalf("allocator %s holds %d MB of %d MB", a.ID(), total, capMB)
		}
		for _, st := range a.Statuses {
			if strings.Contains(st.Reason, "does not fit") {
				t.Fatalf("allocator %s refused an instance: %+v", a.ID(), st)
			}
		}
	}
	want := 0
	for _, d := range deps {
		dep := h.deployment(d.id)
		for _, in := range dep.Instances {
			if assigned[in.ID] != in.Allocator {
				t.Fatalf("deployment %s: instance %s on %s is not assigned there (%q)", d.id, in.ID, in.Allocator, assigned[in.ID])
			}
		}
		if dep.Status == engine.DeploymentRunning && len(dep.Instances) != dep.Spec.Elasticsearch.Zones {
			t.Fatalf("deployment %s runs %d instances, its spec asks %d zones", d.id, len(dep.Instances), dep.Spec.Elasticsearch.Zones)
		}
		want += len(dep.Instances)
	}
	if len(assigned) != want {
		t.Fatalf("%d instances assigned, the deployments record %d: orphans of failed or interrupted plans", len(assigned), want)
	}
	omu.Lock()
	defer omu.Unlock()
	if len(overcommits) > 0 {
		t.Fatalf("overcommitted: %v", overcommits)
	}
}
