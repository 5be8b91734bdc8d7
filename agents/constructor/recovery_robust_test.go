package constructor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/testenv"
)

// inSyncGate holds the constructor's side of a recovery at its end: the
// nodes recover the new copies for real (they take live writes), but
// the primary's in_sync events do not reach the constructor while
// hold is set, so the plan stays in "recover new copies" (the primary
// asks again every 10 s until the routing has the copy in sync).
type inSyncGate struct {
	NodeAPI
	hold atomic.Bool
	once sync.Once
	// held is closed the first time an in_sync event was held back.
	held chan struct{}
}

func newInSyncGate(n NodeAPI) *inSyncGate {
	g := &inSyncGate{NodeAPI: n, held: make(chan struct{})}
	g.hold.Store(true)
	return g
}

func (g *inSyncGate) ReplicationEvents(ctx context.Context, addr string, after int64, wait time.Duration) (ReplicationEvents, error) {
	evs, err := g.NodeAPI.ReplicationEvents(ctx, addr, after, wait)
	if err != nil || !g.hold.Load() {
		return evs, err
	}
	kept := evs.Events[:0:0]
	for _, ev := range evs.Events {
		if ev.Kind == EventInSync {
			g.once.Do(func() { close(g.held) })
			continue
		}
		kept = append(kept, ev)
	}
	evs.Events = kept
	return evs, nil
}

// recoveryRun is a two-zone deployment under a writer, about to be
// resized by recovery.
type recoveryRun struct {
	h      *harness
	id     string
	before engine.Deployment
	r0     engine.Replication
	w      *writer
	stop   func()
	paused *atomic.Bool
	// mayPause: the plan may take the snapshot path (a fallback).
	mayPause bool
}

// startWrites creates the deployment, waits for it and starts a writer
// and a watch of the route's state.
func startWrites(t *testing.T, h *harness) *recoveryRun {
	t.Helper()
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	if p := h.waitPlan(id, planID, 60*time.Second); p.Status != engine.PlanSuccess {
		t.Fatalf("create: %s", stepNames(p))
	}
	run := &recoveryRun{h: h, id: id, before: checkRunning(t, h, id, 2), paused: &atomic.Bool{}}
	run.r0, _, _ = h.replication(id)
	run.w = &writer{h: h, id: id}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); run.w.run(ctx) }()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if r, ok := h.route(id); ok && r.State != engine.RouteLive {
				run.paused.Store(true)
			}
			testenv.Pause(ctx, 5*time.Millisecond)
		}
	}()
	run.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(run.stop)
	h.waitFor("some writes", 20*time.Second, func() bool { return run.acked() > 20 })
	return run
}

// resizeHeld submits a resize (1 GB to 2 GB) with gate holding the
// in_sync events, and returns once a new copy recovered: the plan is in
// "recover new copies".
func (run *recoveryRun) resizeHeld(t *testing.T, gate *inSyncGate) string {
	t.Helper()
	gate.hold.Store(true)
	resize := run.h.submit(run.id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 2048, 2)})
	select {
	case <-gate.held:
	case <-time.After(60 * time.Second):
		t.Fatal("no new copy finished its recovery")
	}
	return resize
}

func (run *recoveryRun) acked() int {
	run.w.mu.Lock()
	defer run.w.mu.Unlock()
	return len(run.w.acked)
}

// finish lets the writer go on a little on the final topology, stops
// it, and checks that every acknowledged write is on every backend and
// (unless the plan fell back to the snapshot path) that the route never
// paused.
func (run *recoveryRun) finish(t *testing.T) {
	t.Helper()
	n := run.acked()
	run.h.waitFor("writes on the final topology", 20*time.Second, func() bool { return run.acked() > n+20 })
	run.stop()
	run.w.checkNoLoss(t)
	if run.paused.Load() && !run.mayPause {
		t.Fatal("the route was paused during a resize by recovery")
	}
}

// checkTopology fails t unless exactly the instances of want run as the
// deployment, hold the instance znodes, are the routing's copies (all
// in sync) and the route's backends.
func checkTopology(t *testing.T, h *harness, id string, want []engine.PlacedInstance) {
	t.Helper()
	var ids []string
	for _, in := range want {
		ids = append(ids, in.ID)
	}
	slices.Sort(ids)
	var znodes []string
	for _, kids := range h.instanceZnodes(id) {
		znodes = append(znodes, kids...)
	}
	slices.Sort(znodes)
	if !slices.Equal(znodes, ids) {
		t.Fatalf("instance znodes %v, want %v (an orphan copy, or one missing)", znodes, ids)
	}
	var r engine.Replication
	testenv.EventuallyDetail(t, 30*time.Second, "the final copies alone in the routing, all in sync", func() (bool, string) {
		r, _, _ = h.replication(id)
		return slices.Equal(sortedSet(r.Copies), ids) && slices.Equal(sortedSet(r.InSync), ids) && slices.Contains(ids, r.Primary),
			fmt.Sprintf("%+v, want %v", r, ids)
	})
	rt, _ := h.route(id)
	var backends []string
	for _, b := range rt.Backends {
		backends = append(backends, b.InstanceID)
	}
	slices.Sort(backends)
	if !slices.Equal(backends, ids) || rt.State != engine.RouteLive {
		t.Fatalf("route %s to %v, want live to %v", rt.State, backends, ids)
	}
	h.waitFor("the allocators to run the final copies only", 20*time.Second, func() bool {
		return slices.Equal(h.workloads(id), ids)
	})
	d := h.deployment(id)
	if d.Status != engine.DeploymentRunning {
		t.Fatalf("deployment %s after the plan", d.Status)
	}
	if hl, _ := engine.ReplicationHealth(r, func(string) bool { return true }); hl != engine.HealthGreen {
		t.Fatalf("replication health %s, want green (%+v)", hl, r)
	}
}

// TestLeaderChangeDuringRecovery: the constructor leading a resize by
// recovery dies while the new copies recover; the next leader resumes
// the plan in "recover new copies" and finishes it: the data moved by
// recovery (no snapshot, no pause), no acknowledged write lost, the new
// copies alone in the routing and in sync, no orphan instance. With a
// cancel asked just before the leader dies (the old leader may have
// begun the rollback), the next leader rolls back to the old copies.
func TestLeaderChangeDuringRecovery(t *testing.T) {
	resumedOrCancelled(t, testLeaderChangeDuringRecovery)
}

func testLeaderChangeDuringRecovery(t *testing.T, cancel bool) {
	gate := newInSyncGate(NewHTTPNodes())
	gate.hold.Store(false) // the create's copies join as they are
	h, c1 := twoLeaders(t, gate)
	run := startWrites(t, h)
	resize := run.resizeHeld(t, gate)
	if p, ok := h.pendingPlan(run.id); !ok || lastStep(p).Name != StepRecover || lastStep(p).Status != engine.PlanRunning {
		t.Fatalf("plan not in %q when the leader dies: %s", StepRecover, stepNames(p))
	}
	if cancel {
		run.cancel(t)
	}
	c1.kill()
	p := h.waitPlan(run.id, resize, 90*time.Second)
	if p.Leader != "c2" {
		t.Fatalf("plan finished by %q: %s", p.Leader, stepNames(p))
	}
	applied := appliedOnce(t, p)
	if cancel {
		if p.Status != engine.PlanCancelled || applied[StepRollback] != 1 || applied[StepSwitch] != 0 || applied[StepResume] != 1 {
			t.Fatalf("cancel across the leader change: %s %s", p.Status, stepNames(p))
		}
		run.checkRolledBack(t, p)
		return
	}
	if p.Status != engine.PlanSuccess {
		t.Fatalf("resize %s after the leader change: %s", p.Status, stepNames(p))
	}
	var interrupted string
	for _, s := range p.Steps {
		if s.Status == engine.PlanError && strings.Contains(s.Message, "interrupted") {
			interrupted = s.Name
		}
		if s.Name == StepRecover && s.Status == engine.PlanSuccess && s.AppliedBy != "c2" {
			t.Fatalf("recover step finished by %q: %s", s.AppliedBy, stepNames(p))
		}
	}
	if interrupted != StepRecover {
		t.Fatalf("interrupted %q: %s", interrupted, stepNames(p))
	}
	checkByRecovery(t, "resize", p)
	after := checkRunning(t, h, run.id, 2)
	for _, in := range after.Instances {
		if in.SizeMB != 2048 || slices.ContainsFunc(run.before.Instances, func(o engine.PlacedInstance) bool { return o.ID == in.ID }) {
			t.Fatalf("instance %+v: not a new one", in)
		}
	}
	checkTopology(t, h, run.id, after.Instances)
	run.finish(t)
	t.Logf("%d writes acknowledged, %d failed attempts; steps: %s", run.acked(), run.w.fails.Load(), stepNames(p))
}

// TestCancelDuringRecovery: a resize by recovery is cancelled (the API's
// cancel) while the new copies recover: the plan rolls back to the old
// copies (routing, route), the new instances go, no acknowledged write
// is lost and the writer goes on.
func TestCancelDuringRecovery(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2")
	h.startAllocator("alloc-1", "zone-1", 4096, nil)
	h.startAllocator("alloc-2", "zone-2", 4096, nil)
	gate := newInSyncGate(NewHTTPNodes())
	gate.hold.Store(false)
	h.startConstructor("c1", gate, nil)
	run := startWrites(t, h)
	resize := run.resizeHeld(t, gate)
	run.cancel(t)
	p := h.waitPlan(run.id, resize, 60*time.Second)
	if p.Status != engine.PlanCancelled || !strings.Contains(stepNames(p), StepRollback+"="+engine.PlanSuccess) {
		t.Fatalf("cancel: %s %s", p.Status, stepNames(p))
	}
	for _, not := range []string{StepSnapshot, StepMigrate, StepPause, StepSwitch, StepRemoveOld} {
		if strings.Contains(stepNames(p), not+"=") {
			t.Fatalf("cancelled resize ran %q: %s", not, stepNames(p))
		}
	}
	run.checkRolledBack(t, p)
}

// checkRolledBack fails t unless cancelled plan p left the deployment
// on its old copies alone, green, with every acknowledged write.
func (run *recoveryRun) checkRolledBack(t *testing.T, p engine.Plan) {
	t.Helper()
	t.Logf("rollback: %s", stepMessage(p, StepRollback))
	after := checkRunning(t, run.h, run.id, 2)
	if !slices.Equal(instanceIDs(after.Instances), instanceIDs(run.before.Instances)) {
		t.Fatalf("instances after the cancel %v, want the old ones %v", instanceIDs(after.Instances), instanceIDs(run.before.Instances))
	}
	checkTopology(t, run.h, run.id, after.Instances)
	run.finish(t)
	t.Logf("%d writes acknowledged, %d failed attempts; steps: %s", run.acked(), run.w.fails.Load(), stepNames(p))
}

// appliedOnce counts plan p's successful steps by name and fails t when
// one was applied twice (a resumed plan redid a step).
func appliedOnce(t *testing.T, p engine.Plan) map[string]int {
	t.Helper()
	applied := map[string]int{}
	for _, s := range p.Steps {
		if s.Status == engine.PlanSuccess {
			applied[s.Name]++
		}
	}
	for name, n := range applied {
		if n > 1 {
			t.Fatalf("step %q applied %d times: %s", name, n, stepNames(p))
		}
	}
	return applied
}

func instanceIDs(ins []engine.PlacedInstance) []string {
	var ids []string
	for _, in := range ins {
		ids = append(ids, in.ID)
	}
	slices.Sort(ids)
	return ids
}

// stepMessage is the message of plan p's last step called name.
func stepMessage(p engine.Plan, name string) string {
	msg := ""
	for _, s := range p.Steps {
		if s.Name == name {
			msg = s.Message
		}
	}
	return msg
}

// workloads are the instances whose nodes run on the allocators'
// runtimes for deployment id (an orphan copy's node shows here).
func (h *harness) workloads(id string) []string {
	var out []string
	for _, rt := range h.runtimes {
		ws, _ := rt.List(context.Background())
		for _, w := range ws {
			if w.Deployment == id && w.Running {
				out = append(out, w.Instance)
			}
		}
	}
	slices.Sort(out)
	return out
}

// loseFor removes instance iid's container behind its allocator's back,
// for good (it cannot be created again: its image or volume is gone);
// false when no container of iid runs here.
func (r *nodeRuntime) loseFor(iid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone == nil {
		r.gone = map[string]bool{}
	}
	r.gone[iid] = true
	found := false
	for id, w := range r.ws {
		if w.w.Instance == iid {
			r.stop(w)
			delete(r.ws, id)
			found = true
		}
	}
	for _, ch := range r.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	return found
}

// refusingNodes are nodes whose primary reports every recovering copy
// "refused" (as when the copy answers 403 to it).
type refusingNodes struct{ *inSyncGate }

func (n refusingNodes) NodeReplication(ctx context.Context, addr string) (NodeReplication, error) {
	v, err := n.inSyncGate.NodeReplication(ctx, addr)
	if err != nil || v.Role != RolePrimary {
		return v, err
	}
	for id, c := range v.Copies {
		if c.State != "in_sync" {
			c.Error, c.Refused = "copy ["+id+"] answered 403: test", true
			v.Copies[id] = c
		}
	}
	return v, nil
}

// TestRecoveryCertainFailureFallsBackAtOnce: when a new copy certainly
// cannot recover, the recovery step does not wait for --recovery-stall
// (ten minutes here): it takes the new copies out of the group and the
// plan goes on by snapshot, the step saying why. A copy the primary's
// recovery is refused by (after the failover grace): the snapshot path
// finishes the resize. A copy whose container is gone for good: the
// restore into it fails and the plan rolls back to the old copies. No
// acknowledged write is lost either way.
func TestRecoveryCertainFailureFallsBackAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes func(*inSyncGate) NodeAPI
		// lose: remove a new copy's container for good.
		lose bool
		want []string
	}{
		{"copy refuses the primary", func(g *inSyncGate) NodeAPI { return refusingNodes{g} }, false,
			[]string{"cannot finish", "refuses the primary's recovery", "answered 403", "taken out of the group", "by snapshot"}},
		{"container gone", func(g *inSyncGate) NodeAPI { return g }, true,
			[]string{"cannot finish", "taken out of the group", "by snapshot"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "zone-1", "zone-2")
			h.startAllocator("alloc-1", "zone-1", 4096, nil)
			h.startAllocator("alloc-2", "zone-2", 4096, nil)
			gate := newInSyncGate(NewHTTPNodes())
			gate.hold.Store(false)
			_, metrics := h.startConstructorWithMetrics("c1", tc.nodes(gate), func(c *Config) { c.RecoveryStall = 10 * time.Minute })
			run := startWrites(t, h)
			run.mayPause = true
			resize := run.resizeHeld(t, gate)
			if tc.lose {
				p, _ := h.pendingPlan(run.id)
				victim := esOnly(p.NewInstances)[0]
				if !h.runtimes[victim.Allocator].loseFor(victim.ID) {
					t.Fatalf("no container of %s on %s", victim.ID, victim.Allocator)
				}
				tc.want = append(tc.want, "new copy "+engine.Short(victim.ID))
			}
			// Once fallen back, the in_sync events go through again (the
			// copies the snapshot path leaves recovering join at once).
			h.waitFor("the fallback to the snapshot path", 60*time.Second, func() bool {
				p, ok := h.pendingPlan(run.id)
				return !ok || strings.Contains(stepNames(p), StepSnapshot+"=")
			})
			gate.hold.Store(false)
			p := h.waitPlan(run.id, resize, 90*time.Second)
			var rec engine.PlanStep
			for _, s := range p.Steps {
				if s.Name == StepRecover {
					rec = s
				}
			}
			for _, want := range tc.want {
				if !strings.Contains(rec.Message, want) {
					t.Fatalf("recover step message %q lacks %q (steps %s)", rec.Message, want, stepNames(p))
				}
			}
			if rec.Status != engine.PlanSuccess || !strings.Contains(stepNames(p), StepSnapshot+"="+engine.PlanSuccess) {
				t.Fatalf("no fallback to the snapshot path: %s", stepNames(p))
			}
			t.Logf("recover step (%s): %s", rec.Ended.Sub(rec.Started).Round(100*time.Millisecond), rec.Message)
			if n := metric(t, metrics, "paddock_constructor_recovery_fallbacks_total"); n != 1 {
				t.Fatalf("paddock_constructor_recovery_fallbacks_total = %v, want 1", n)
			}
			if tc.lose {
				if p.Status != engine.PlanError || !strings.Contains(stepNames(p), StepRollback+"="+engine.PlanSuccess) {
					t.Fatalf("resize with a copy gone: %s %s", p.Status, stepNames(p))
				}
				run.checkRolledBack(t, p)
				return
			}
			if p.Status != engine.PlanSuccess {
				t.Fatalf("resize %s: %s", p.Status, stepNames(p))
			}
			after := checkRunning(t, h, run.id, 2)
			checkTopology(t, h, run.id, after.Instances)
			run.finish(t)
			t.Logf("%d writes acknowledged, %d failed attempts; steps: %s", run.acked(), run.w.fails.Load(), stepNames(p))
		})
	}
}

// TestRecoveryDoomed: which observations of the recovering copies end
// the wait at once, which after the grace, which never.
func TestRecoveryDoomed(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 20, 0, 0, 0, time.UTC)
	grace := 3 * time.Second
	type at struct {
		after time.Duration
		obs   copyObs
		want  string // "" : not doomed
	}
	for _, tc := range []struct {
		name  string
		steps []at
	}{
		{"recovering", []at{{0, copyObs{}, ""}, {time.Hour, copyObs{}, ""}}},
		{"removed", []at{{0, copyObs{removed: true}, "was removed"}}},
		{"container failed", []at{{0, copyObs{failed: "create failed: no image"}, "its container failed (create failed: no image)"}}},
		{"no replication endpoints", []at{{0, copyObs{noAPI: true}, "has no replication endpoints"}}},
		{"lost for the grace", []at{
			{0, copyObs{lost: "container exited on alloc-1"}, ""},
			{2 * time.Second, copyObs{lost: "container exited on alloc-1"}, ""},
			{3 * time.Second, copyObs{lost: "container exited on alloc-1"}, "lost for 3s: container exited on alloc-1"},
		}},
		{"re-created within the grace", []at{
			{0, copyObs{lost: "no status on allocator alloc-1"}, ""},
			{2 * time.Second, copyObs{}, ""},
			{4 * time.Second, copyObs{lost: "container starting on alloc-1"}, ""},
			{6 * time.Second, copyObs{lost: "container starting on alloc-1"}, ""},
		}},
		{"refused for the grace", []at{
			{0, copyObs{refused: "answered 403"}, ""},
			{3 * time.Second, copyObs{refused: "answered 403"}, "refuses the primary's recovery (for 3s): answered 403"},
		}},
		{"refused, then not", []at{
			{0, copyObs{refused: "answered 403"}, ""},
			{2 * time.Second, copyObs{}, ""},
			{4 * time.Second, copyObs{refused: "answered 403"}, ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			since := map[string]time.Time{}
			for _, s := range tc.steps {
				o := s.obs
				o.id, o.zone = "0123456789abcdef", "zone-1"
				got := recoveryDoomed([]copyObs{{id: "fedcba9876543210", zone: "zone-2"}, o}, since, t0.Add(s.after), grace)
				if (s.want == "") != (got == "") || !strings.Contains(got, s.want) {
					t.Fatalf("at +%s with %+v: %q, want %q", s.after, s.obs, got, s.want)
				}
				if got != "" && !strings.Contains(got, "new copy 01234567 in zone-1") {
					t.Fatalf("%q does not name the copy", got)
				}
			}
		})
	}
}

// switchBlocker holds every routing push of a term above base (the
// switch's handover) until its caller gives up, entered closed at the
// first.
type switchBlocker struct {
	NodeAPI
	base    atomic.Int64
	once    sync.Once
	entered chan struct{}
}

func (b *switchBlocker) PushReplication(ctx context.Context, addr string, p ReplicationPush) (bool, error) {
	if base := b.base.Load(); base > 0 && p.Term > base {
		b.once.Do(func() { close(b.entered) })
		<-ctx.Done()
		return false, ctx.Err()
	}
	return b.NodeAPI.PushReplication(ctx, addr, p)
}

// TestLeaderChangeAtTheSwitch: the leader dies in "switch route" of a
// resize by recovery, after writing the routing that hands the primary
// over (term+1) and before the route (and before the end of "recover
// new copies" was written: both go with the next write). The next leader
// does not add the old copies back to recover (it used to: the new
// primary then began copying its data to the retiring nodes), switches
// without a second handover (the term moves once), writes the route and
// removes the old copies; no acknowledged write lost.
//
// With a cancel asked before the leader died, the same: once the primary
// is a new copy the old ones are out of sync, and rolling back to them
// would lose the writes made since (it used to: the rollback removed the
// new copies, primary included).
func TestLeaderChangeAtTheSwitch(t *testing.T) {
	resumedOrCancelled(t, testLeaderChangeAtTheSwitch)
}

func testLeaderChangeAtTheSwitch(t *testing.T, cancel bool) {
	block := &switchBlocker{NodeAPI: NewHTTPNodes(), entered: make(chan struct{})}
	h, c1 := twoLeaders(t, block)
	run := startWrites(t, h)
	block.base.Store(run.r0.Term)
	resize := h.submit(run.id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 2048, 2)})
	select {
	case <-block.entered:
	case <-time.After(60 * time.Second):
		t.Fatal("the resize never reached its switch")
	}
	if r, _, _ := h.replication(run.id); r.Term != run.r0.Term+1 {
		t.Fatalf("routing %+v at the switch, want term %d", r, run.r0.Term+1)
	}
	if cancel {
		run.cancel(t)
	}
	c1.kill()
	p := h.waitPlan(run.id, resize, 90*time.Second)
	if p.Status != engine.PlanSuccess || p.Leader != "c2" {
		t.Fatalf("resize %s led by %s after a leader change at the switch: %s", p.Status, p.Leader, stepNames(p))
	}
	appliedOnce(t, p)
	if msg := stepMessage(p, StepRecover); !strings.Contains(msg, "in sync already") {
		t.Fatalf("the next leader recovered again after the switch's routing was written (%q): %s", msg, stepNames(p))
	}
	after := checkRunning(t, h, run.id, 2)
	checkTopology(t, h, run.id, after.Instances)
	if r, _, _ := h.replication(run.id); r.Term != run.r0.Term+1 {
		t.Fatalf("routing %+v: the primary changed hands more than once (term was %d)", r, run.r0.Term)
	}
	run.finish(t)
	t.Logf("%d writes acknowledged, %d failed attempts; steps: %s", run.acked(), run.w.fails.Load(), stepNames(p))
}

// resumedOrCancelled runs test without and with a cancel.
func resumedOrCancelled(t *testing.T, test func(t *testing.T, cancel bool)) {
	for _, cancel := range []bool{false, true} {
		name := "resumed"
		if cancel {
			name = "cancelled"
		}
		t.Run(name, func(t *testing.T) { test(t, cancel) })
	}
}

// twoLeaders is a two-zone platform whose constructor c1 (over nodes)
// leads, c2 (plain) standing by.
func twoLeaders(t *testing.T, nodes NodeAPI) (*harness, *agentHandle) {
	h := newHarness(t, "zone-1", "zone-2")
	h.startAllocator("alloc-1", "zone-1", 4096, nil)
	h.startAllocator("alloc-2", "zone-2", 4096, nil)
	c1 := h.startConstructor("c1", nodes, nil)
	h.waitFor("c1 to lead", 20*time.Second, func() bool {
		kids, _ := h.admin.Children(context.Background(), engine.PathLeaderCons)
		return len(kids) == 1
	})
	h.startConstructor("c2", NewHTTPNodes(), nil)
	h.waitFor("c2 to stand by", 20*time.Second, func() bool {
		kids, _ := h.admin.Children(context.Background(), engine.PathLeaderCons)
		return len(kids) == 2
	})
	return h, c1
}

// cancel asks to cancel the pending plan, as the API does.
func (run *recoveryRun) cancel(t *testing.T) {
	t.Helper()
	svc := service.New(run.h.admin, service.WithLogger(quiet()))
	if _, err := svc.CancelPlan(ctxT(t, 10*time.Second), run.id, "test"); err != nil {
		t.Fatal(err)
	}
}
