package constructor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/testenv"
)

func threeAllocators(h *harness) {
	h.startAllocator("alloc-1", "zone-1", 4096, nil)
	h.startAllocator("alloc-2", "zone-2", 4096, nil)
	h.startAllocator("alloc-3", "zone-3", 4096, nil)
}

// checkRunning asserts a deployment runs its spec: instances in distinct
// zones, each running healthy, the route live on them.
func checkRunning(t *testing.T, h *harness, id string, zones int) engine.Deployment {
	t.Helper()
	d := h.deployment(id)
	if d.Status != engine.DeploymentRunning {
		t.Fatalf("deployment status %s, want running", d.Status)
	}
	es := esOnly(d.Instances)
	if len(es) != zones {
		t.Fatalf("%d elasticsearch instances, want %d: %+v", len(es), zones, d.Instances)
	}
	seen := map[string]bool{}
	for _, in := range es {
		if seen[in.Zone] {
			t.Fatalf("two instances in %s: %+v", in.Zone, es)
		}
		seen[in.Zone] = true
	}
	h.waitFor("route on the deployment's instances", 10*time.Second, func() bool {
		r, ok := h.route(id)
		if !ok || r.State != engine.RouteLive || len(r.Backends) != zones {
			return false
		}
		for _, b := range r.Backends {
			found := false
			for _, in := range es {
				found = found || in.ID == b.InstanceID
			}
			if !found {
				return false
			}
		}
		return true
	})
	return d
}

func TestCreateTwoZoneDeployment(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2", "zone-3")
	threeAllocators(h)
	h.startConstructor("c1", NewHTTPNodes(), nil)
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	plan := h.waitPlan(id, planID, 60*time.Second)
	if plan.Status != engine.PlanSuccess || lastStep(plan).Name != StepCompleted || lastStep(plan).Status != engine.PlanSuccess {
		t.Fatalf("plan %s: %s", plan.Status, stepNames(plan))
	}
	want := []string{StepValidate, StepPlace, StepWait, StepSwitch, StepCompleted}
	var got []string
	for _, s := range plan.Steps {
		got = append(got, s.Name)
		if s.AppliedBy != "c1" || s.Ended == nil {
			t.Fatalf("step %+v lacks applied-by or end", s)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("steps %v, want %v", got, want)
	}
	d := checkRunning(t, h, id, 2)
	if d.Spec.Version != "8.17.0" || d.LastPlanID != planID || d.LastPlanStatus != engine.PlanSuccess {
		t.Fatalf("deployment %+v", d)
	}
	if _, ok := h.pendingPlan(id); ok {
		t.Fatal("pending plan still there")
	}
	// The nodes answer through the route's addresses.
	r, _ := h.route(id)
	for _, b := range r.Backends {
		if err := nodeHTTP(t, "GET", b.Address, "/_paddock/health", "", nil); err != nil {
			t.Fatalf("backend %s: %v", b.Address, err)
		}
	}
}

func TestUnplaceablePlanFailsWithZoneShortfall(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2", "zone-3")
	threeAllocators(h)
	h.startConstructor("c1", NewHTTPNodes(), nil)
	id, planID := h.createDeployment(spec("8.17.0", 8192, 2))
	plan := h.waitPlan(id, planID, 60*time.Second)
	if plan.Status != engine.PlanError {
		t.Fatalf("plan %s, want error: %s", plan.Status, stepNames(plan))
	}
	var place engine.PlanStep
	for _, s := range plan.Steps {
		if s.Name == StepPlace {
			place = s
		}
	}
	if place.Status != engine.PlanError || !strings.Contains(place.Message, "largest free 4096 MB, needs 8192 MB") {
		t.Fatalf("place step %+v", place)
	}
	if d := h.deployment(id); d.Status != engine.DeploymentFailed || len(d.Instances) != 0 {
		t.Fatalf("deployment %+v", d)
	}
	if n := h.instanceZnodes(id); len(n) != 0 {
		t.Fatalf("instances left behind: %v", n)
	}
}

// writer writes documents through the route (as a client behind the
// proxy would: it waits while the route is paused) and records every
// acknowledged id.
type writer struct {
	h     *harness
	id    string
	user  string // "name:password" when the deployment has credentials
	mu    sync.Mutex
	acked []string
	at    []time.Time // when each of acked was acknowledged
	where map[string]string
	fails atomic.Int64
}

func (w *writer) run(ctx context.Context) {
	for n := 0; ctx.Err() == nil; n++ {
		r, ok := w.h.route(w.id)
		if !ok || r.State != engine.RouteLive || len(r.Backends) == 0 {
			testenv.Pause(ctx, 5*time.Millisecond)
			n--
			continue
		}
		doc := fmt.Sprintf("doc-%d", n)
		b := r.Backends[n%len(r.Backends)]
		if err := nodeHTTPAs(nil, w.user, "PUT", b.Address, "/logs/_doc/"+doc, `{"n":`+fmt.Sprint(n)+`}`, nil); err != nil {
			w.fails.Add(1)
			n--
			testenv.Pause(ctx, 5*time.Millisecond)
			continue
		}
		w.mu.Lock()
		if w.where == nil {
			w.where = map[string]string{}
		}
		w.where[doc] = b.InstanceID[:6] + "@" + b.Zone + fmt.Sprintf("/gen%d", r.Generation)
		w.acked = append(w.acked, doc)
		w.at = append(w.at, time.Now())
		w.mu.Unlock()
	}
}

// startWriter runs a writer on deployment id until stop is called (or
// the test ends) and waits for its first writes.
func startWriter(t *testing.T, h *harness, id string) (w *writer, stop func()) {
	t.Helper()
	w = &writer{h: h, id: id}
	stop = runBackground(t, w.run)
	h.waitFor("some writes", 20*time.Second, func() bool { return w.count() > 20 })
	return w, stop
}

// runBackground runs f until the returned stop is called or the test
// ends; stop cancels f's context and waits for it to return.
func runBackground(t *testing.T, f func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// waitMore waits for 20 more acknowledged writes than now.
func (w *writer) waitMore(what string) {
	n := w.count()
	w.h.waitFor(what, 20*time.Second, func() bool { return w.count() > n+20 })
}

// checkNoLoss asserts every acknowledged document is on every backend.
func (w *writer) checkNoLoss(t *testing.T) {
	t.Helper()
	r, _ := w.h.route(w.id)
	w.mu.Lock()
	acked := append([]string(nil), w.acked...)
	w.mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("the writer got no write acknowledged")
	}
	for _, b := range r.Backends {
		var missing []string
		for _, doc := range acked {
			if err := nodeHTTPAs(t, w.user, "GET", b.Address, "/logs/_doc/"+doc, "", nil); err != nil {
				missing = append(missing, doc)
			}
		}
		if len(missing) > 0 {
			var ws []string
			for _, m := range missing {
				ws = append(ws, m+"→"+w.where[m])
			}
			t.Fatalf("backend %s (%s) lacks %d of %d acknowledged documents: %v", b.InstanceID, b.Zone, len(missing), len(acked), ws)
		}
	}
	t.Logf("%d acknowledged writes, all on %d backends", len(acked), len(r.Backends))
}

func TestResizeAndUpgradeUnderWritesLoseNothing(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2", "zone-3")
	h.startAllocator("alloc-1", "zone-1", 4096, nil)
	h.startAllocator("alloc-2", "zone-2", 4096, nil)
	h.startConstructor("c1", NewHTTPNodes(), nil)
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	h.waitPlan(id, planID, 60*time.Second)
	before := checkRunning(t, h, id, 2)

	w := &writer{h: h, id: id}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	h.waitFor("some writes", 10*time.Second, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.acked) > 20 })

	// Resize: new instances beside the old ones (same allocators:
	// grow-and-shrink replaces), data moved by recovery, route switched,
	// never paused.
	resize := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 2048, 2)})
	p := h.waitPlan(id, resize, 90*time.Second)
	if p.Status != engine.PlanSuccess {
		t.Fatalf("resize %s: %s", p.Status, stepNames(p))
	}
	checkByRecovery(t, "resize", p)
	after := checkRunning(t, h, id, 2)
	for _, in := range after.Instances {
		if in.SizeMB != 2048 {
			t.Fatalf("instance %+v not resized", in)
		}
		for _, old := range before.Instances {
			if old.ID == in.ID {
				t.Fatalf("old instance %s still in the topology", in.ID)
			}
		}
	}
	if n := h.instanceZnodes(id); len(n["alloc-1"])+len(n["alloc-2"]) != 2 {
		t.Fatalf("instance znodes after resize: %v", n)
	}

	upgrade := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.18.0", 2048, 2)})
	p = h.waitPlan(id, upgrade, 90*time.Second)
	if p.Status != engine.PlanSuccess {
		t.Fatalf("upgrade %s: %s", p.Status, stepNames(p))
	}
	checkByRecovery(t, "upgrade", p)
	if d := checkRunning(t, h, id, 2); d.Spec.Version != "8.18.0" || d.Instances[0].Version != "8.18.0" {
		t.Fatalf("not upgraded: %+v", d)
	}
	// A few writes on the new nodes too.
	w.mu.Lock()
	upto := len(w.acked) + 5
	w.mu.Unlock()
	h.waitFor("writes on the upgraded nodes", 30*time.Second, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.acked) >= upto
	})
	cancel()
	<-done
	w.checkNoLoss(t)
}

// failingNodes fails restores (a migration step) on demand.
type failingNodes struct {
	NodeAPI
	fail atomic.Bool
}

func (f *failingNodes) Restore(ctx context.Context, addr, location, snap string) error {
	if f.fail.Load() {
		return errors.New("injected restore failure")
	}
	return f.NodeAPI.Restore(ctx, addr, location, snap)
}

func TestFailedStepRollsBackToOldInstances(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2", "zone-3")
	threeAllocators(h)
	nodes := &failingNodes{NodeAPI: NewHTTPNodes()}
	h.startConstructor("c1", nodes, func(c *Config) { c.MigrateBySnapshot = true }) // restores fail
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	h.waitPlan(id, planID, 60*time.Second)
	before := checkRunning(t, h, id, 2)
	routeBefore, _ := h.route(id)
	// A document, to prove the old nodes keep serving their data.
	if err := nodeHTTP(t, "PUT", routeBefore.Backends[0].Address, "/logs/_doc/keep", `{"a":1}`, nil); err != nil {
		t.Fatal(err)
	}

	nodes.fail.Store(true)
	resize := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 2048, 2)})
	p := h.waitPlan(id, resize, 90*time.Second)
	if p.Status != engine.PlanError || lastStep(p).Status != engine.PlanError {
		t.Fatalf("plan %s: %s", p.Status, stepNames(p))
	}
	if !strings.Contains(stepNames(p), StepMigrate+"="+engine.PlanError) || !strings.Contains(stepNames(p), StepRollback+"="+engine.PlanSuccess) {
		t.Fatalf("steps: %s", stepNames(p))
	}
	if !strings.Contains(lastStep(p).Message, "injected restore failure") {
		t.Fatalf("failure reason not recorded: %q", lastStep(p).Message)
	}
	after := checkRunning(t, h, id, 2)
	if fmt.Sprint(after.Instances) != fmt.Sprint(before.Instances) || after.Spec.Elasticsearch.SizeMB != 1024 || after.LastPlanStatus != engine.PlanError {
		t.Fatalf("topology changed by a failed plan:\nbefore %+v\nafter  %+v", before, after)
	}
	r, _ := h.route(id)
	if fmt.Sprint(r.Backends) != fmt.Sprint(routeBefore.Backends) || r.State != engine.RouteLive {
		t.Fatalf("route changed: %+v, was %+v", r, routeBefore)
	}
	for a, ids := range h.instanceZnodes(id) {
		for _, iid := range ids {
			found := false
			for _, in := range before.Instances {
				found = found || (in.ID == iid && in.Allocator == a)
			}
			if !found {
				t.Fatalf("new instance %s left on %s after rollback", iid, a)
			}
		}
	}
	if err := nodeHTTP(t, "GET", r.Backends[0].Address, "/logs/_doc/keep", "", nil); err != nil {
		t.Fatalf("old node lost its data: %v", err)
	}
}
