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
	"paddock/engine/testenv"
)

// fakeReplNodes answers the replication calls as nodes following the
// contract would (a push older than the one held is ignored; the
// events long poll serves seq ≥ after and waits), from tables the test
// writes; the real in-process nodes serve everything else.
type fakeReplNodes struct {
	*HTTPNodes
	mu sync.Mutex
	// self: the copy a node address was pushed as.
	self map[string]string
	// held: the push each copy applied last.
	held   map[string]ReplicationPush
	pushes map[string]int
	// events: each copy's log, served when it is the primary polled.
	events map[string][]ReplicationEvent
	wake   chan struct{}
}

func newFakeReplNodes() *fakeReplNodes {
	return &fakeReplNodes{HTTPNodes: NewHTTPNodes(), self: map[string]string{}, held: map[string]ReplicationPush{},
		pushes: map[string]int{}, events: map[string][]ReplicationEvent{}, wake: make(chan struct{})}
}

func (f *fakeReplNodes) PushReplication(_ context.Context, addr string, p ReplicationPush) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.self[addr] = p.Self
	f.pushes[p.Self]++
	cur, ok := f.held[p.Self]
	if ok && (p.Term < cur.Term || (p.Term == cur.Term && p.Version < cur.Version)) {
		return false, nil
	}
	f.held[p.Self] = p
	return true, nil
}

func (f *fakeReplNodes) NodeReplication(_ context.Context, addr string) (NodeReplication, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	self, ok := f.self[addr]
	if !ok {
		return NodeReplication{Role: RoleStandalone}, nil
	}
	p := f.held[self]
	role := RoleReplica
	if p.Primary == self {
		role = RolePrimary
	}
	return NodeReplication{Self: self, Term: p.Term, RoutingTerm: p.Term, Version: p.Version, Role: role, Primary: p.Primary, InSync: p.InSync}, nil
}

func (f *fakeReplNodes) ReplicationEvents(ctx context.Context, addr string, after int64, wait time.Duration) (ReplicationEvents, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		f.mu.Lock()
		var out []ReplicationEvent
		for _, ev := range f.events[f.self[addr]] {
			if ev.Seq >= after {
				out = append(out, ev)
			}
		}
		wake := f.wake
		f.mu.Unlock()
		if len(out) > 0 {
			return ReplicationEvents{Events: out, Next: out[len(out)-1].Seq + 1}, nil
		}
		select {
		case <-ctx.Done():
			return ReplicationEvents{}, ctx.Err()
		case <-timer.C:
			return ReplicationEvents{Next: after}, nil
		case <-wake:
		}
	}
}

// emit appends an event to a copy's log (as its primary would).
func (f *fakeReplNodes) emit(copyID string, ev ReplicationEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev.Seq = int64(len(f.events[copyID]))
	f.events[copyID] = append(f.events[copyID], ev)
	close(f.wake)
	f.wake = make(chan struct{})
}

func (f *fakeReplNodes) heldBy(copyID string) (ReplicationPush, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held[copyID], f.pushes[copyID]
}

func (h *harness) replication(id string) (engine.Replication, engine.Version, bool) {
	r, v, err := h.admin.Replication(context.Background(), id)
	return r, v, err == nil
}

// TestReplicationAuthority drives the constructor's side of the
// replication contract with nodes that follow it: the routing of a new
// deployment, the primary's failed and in_sync events, a stale event,
// failover when the primary's allocator is lost, and the replacement
// of the lost copy, which recovers.
func TestReplicationAuthority(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2")
	h.setGrace(3600) // no rescheduling until the test asks for it
	h.startAllocator("alloc-1a", "zone-1", 4096, nil)
	h.startAllocator("alloc-2a", "zone-2", 4096, nil)
	nodes := newFakeReplNodes()
	h.startConstructor("c1", nodes, func(c *Config) { c.FailoverGrace = 500 * time.Millisecond; c.ReplicationCheck = time.Second })

	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	if p := h.waitPlan(id, planID, 60*time.Second); p.Status != engine.PlanSuccess {
		t.Fatalf("create: %s", stepNames(p))
	}
	d := checkRunning(t, h, id, 2)
	r, ver, ok := h.replication(id)
	if !ok || r.Term != 1 || len(r.Copies) != 2 || len(r.InSync) != 2 || r.Validate() != nil {
		t.Fatalf("routing of a new 2-zone deployment: %+v (found %v), want term 1 with both copies in sync", r, ok)
	}
	for _, in := range d.Instances {
		if !slices.Contains(r.Copies, in.ID) {
			t.Fatalf("instance %s is not a copy: %+v", in.ID, r)
		}
	}
	primary := r.Primary
	replica := r.Copies[0]
	if replica == primary {
		replica = r.Copies[1]
	}
	unreachable := ""
	waitHeld := func(what string, cond func(r engine.Replication, ver engine.Version) bool) engine.Replication {
		t.Helper()
		var got engine.Replication
		h.waitFor(what, 20*time.Second, func() bool {
			r, ver, ok := h.replication(id)
			if !ok || !cond(r, ver) {
				return false
			}
			for _, c := range r.Copies {
				if c == unreachable {
					continue
				}
				p, _ := nodes.heldBy(c)
				if p.Term != r.Term || p.Version != ver || p.Primary != r.Primary || !slices.Equal(p.InSync, r.InSync) {
					return false
				}
			}
			got = r
			return true
		})
		return got
	}
	waitHeld("the routing pushed to both copies", func(r engine.Replication, v engine.Version) bool { return v == ver })
	for _, c := range r.Copies {
		p, _ := nodes.heldBy(c)
		if p.Self != c || len(p.Copies) != 2 || p.Copies[0].URL == "" {
			t.Fatalf("push to %s: %+v, want self and both copies with their URLs", c, p)
		}
	}

	// The primary cannot replicate to the replica: out of in_sync, pushed.
	nodes.emit(primary, ReplicationEvent{Kind: EventFailed, Copy: replica, Term: 1, Reason: "connection refused"})
	waitHeld("the failed replica out of in_sync", func(r engine.Replication, _ engine.Version) bool {
		return r.Term == 1 && slices.Equal(r.InSync, []string{primary})
	})
	// A stale event (an older term) changes nothing; the asker gets the
	// routing again.
	_, before := nodes.heldBy(primary)
	nodes.emit(primary, ReplicationEvent{Kind: EventInSync, Copy: replica, Term: 0})
	h.waitFor("the routing pushed to the asker of a stale event", 10*time.Second, func() bool {
		_, n := nodes.heldBy(primary)
		return n > before
	})
	if r, _, _ := h.replication(id); !slices.Equal(r.InSync, []string{primary}) {
		t.Fatalf("a stale event changed the routing: %+v", r)
	}
	// The replica recovered.
	nodes.emit(primary, ReplicationEvent{Kind: EventInSync, Copy: replica, Term: 1})
	waitHeld("the recovered replica back in sync", func(r engine.Replication, _ engine.Version) bool { return len(r.InSync) == 2 })

	// The primary's allocator is lost: the in-sync replica is promoted.
	var lostAlloc, lostZone string
	for _, in := range d.Instances {
		if in.ID == primary {
			lostAlloc, lostZone = in.Allocator, in.Zone
		}
	}
	h.allocs[lostAlloc].kill()
	unreachable = primary
	r = waitHeld("the replica promoted", func(r engine.Replication, _ engine.Version) bool { return r.Primary == replica })
	if r.Term != 2 || !slices.Equal(r.InSync, []string{replica}) || !slices.Contains(r.Copies, primary) {
		t.Fatalf("after failover: %+v, want term 2, the old primary a copy out of sync", r)
	}
	t.Logf("failover: %s", r.Reason)
	// Events of the deposed primary are stale now.
	nodes.emit(primary, ReplicationEvent{Kind: EventFailed, Copy: replica, Term: 1})

	// Rescheduling replaces the lost copy: the new one joins out of sync
	// and recovers from the new primary (the plan waits for it), then the
	// lost copy leaves the group and the deployment is green again.
	h.startAllocator("alloc-new", lostZone, 4096, nil)
	h.setGrace(1)
	var fresh string
	r = waitHeld("the new copy out of sync, recovering", func(r engine.Replication, _ engine.Version) bool {
		for _, c := range r.Copies {
			if c != primary && c != replica {
				fresh = c
			}
		}
		return fresh != "" && r.Primary == replica
	})
	if r.IsInSync(fresh) || r.Term != 2 {
		t.Fatalf("a new copy joined in sync or the term moved: %+v", r)
	}
	nodes.emit(replica, ReplicationEvent{Kind: EventInSync, Copy: fresh, Term: 2})
	r = waitHeld("the new copy in sync, the lost one gone", func(r engine.Replication, _ engine.Version) bool {
		return len(r.InSync) == 2 && !slices.Contains(r.Copies, primary)
	})
	if !r.IsInSync(fresh) || r.Primary != replica || r.Term != 2 {
		t.Fatalf("after the replacement: %+v, want %s and the recovered %s in sync, term 2", r, replica, fresh)
	}
}

// TestZoneLostUnderWrites loses, for good, the allocator and the nodes
// of the zone holding the primary of a 2-zone and a 3-zone deployment
// (real in-process nodes) while a writer goes on: an in-sync replica is
// promoted, the deployment is yellow, the rescheduled copy recovers and
// it is green again; no acknowledged write is lost.
func TestZoneLostUnderWrites(t *testing.T) {
	for _, zones := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d zones", zones), func(t *testing.T) {
			names := []string{"zone-1", "zone-2", "zone-3"}[:zones]
			h := newHarness(t, names...)
			h.setGrace(3600)
			for _, z := range names {
				h.startAllocator("alloc-"+z, z, 4096, nil)
			}
			h.startConstructor("c1", NewHTTPNodes(), func(c *Config) { c.FailoverGrace = 500 * time.Millisecond; c.ReplicationCheck = time.Second })
			id, planID := h.createDeployment(spec("8.17.0", 1024, zones))
			if p := h.waitPlan(id, planID, 60*time.Second); p.Status != engine.PlanSuccess {
				t.Fatalf("create: %s", stepNames(p))
			}
			d := checkRunning(t, h, id, zones)
			r, _, _ := h.replication(id)
			if len(r.InSync) != zones {
				t.Fatalf("routing %+v: want every copy in sync", r)
			}
			var lost engine.PlacedInstance
			for _, in := range d.Instances {
				if in.ID == r.Primary {
					lost = in
				}
			}
			// A second host in the zone, for the replacement.
			h.startAllocator("alloc-"+lost.Zone+"-b", lost.Zone, 4096, nil)

			w := &writer{h: h, id: id}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); w.run(ctx) }()
			defer func() { cancel(); <-done }()
			h.waitFor("some writes", 20*time.Second, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.acked) > 20 })

			h.allocs[lost.Allocator].kill()
			h.runtimes[lost.Allocator].stopAll()
			var after engine.Replication
			h.waitFor("a replica promoted", 30*time.Second, func() bool {
				after, _, _ = h.replication(id)
				return after.Primary != lost.ID
			})
			if after.Term != r.Term+1 || after.IsInSync(lost.ID) || !r.IsInSync(after.Primary) {
				t.Fatalf("after the loss: %+v, was %+v", after, r)
			}
			live := func(iid string) bool { return iid != lost.ID }
			if health, why := engine.ReplicationHealth(after, live); health != engine.HealthYellow {
				t.Fatalf("health after the loss %s (%s), want yellow", health, why)
			}
			w.mu.Lock()
			n := len(w.acked)
			w.mu.Unlock()
			h.waitFor("writes after the promotion", 30*time.Second, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.acked) > n+20 })

			h.setGrace(1)
			h.waitFor("the lost copy replaced and in sync (green)", 90*time.Second, func() bool {
				r, _, _ := h.replication(id)
				if slices.Contains(r.Copies, lost.ID) || len(r.Copies) != zones || len(r.InSync) != zones {
					return false
				}
				health, _ := engine.ReplicationHealth(r, func(string) bool { return true })
				return health == engine.HealthGreen
			})
			w.mu.Lock()
			n = len(w.acked)
			w.mu.Unlock()
			h.waitFor("writes on the new topology", 30*time.Second, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.acked) > n+20 })
			cancel()
			<-done
			h.waitFor("the route on the new topology", 30*time.Second, func() bool {
				rt, _ := h.route(id)
				return len(rt.Backends) == zones
			})
			w.checkNoLoss(t)
			t.Logf("%d failed write attempts during the loss", w.fails.Load())
		})
	}
}

// TestResizeByRecoveryUnderWrites: by default a resize moves the data
// to the new nodes by replication recovery while a writer goes on: no
// snapshot, no paused route; the primary hands over to a recovered copy
// at the switch; no acknowledged write is lost.
func TestResizeByRecoveryUnderWrites(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2")
	h.startAllocator("alloc-1", "zone-1", 4096, nil)
	h.startAllocator("alloc-2", "zone-2", 4096, nil)
	h.startConstructor("c1", NewHTTPNodes(), nil)
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	if p := h.waitPlan(id, planID, 60*time.Second); p.Status != engine.PlanSuccess {
		t.Fatalf("create: %s", stepNames(p))
	}
	before := checkRunning(t, h, id, 2)
	r0, _, _ := h.replication(id)

	w, stopWriter := startWriter(t, h, id)
	paused := atomic.Bool{}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	go func() {
		for watchCtx.Err() == nil {
			if r, ok := h.route(id); ok && r.State != engine.RouteLive {
				paused.Store(true)
			}
			testenv.Pause(watchCtx, 5*time.Millisecond)
		}
	}()

	resize := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 2048, 2)})
	p := h.waitPlan(id, resize, 90*time.Second)
	stopWatch()
	if p.Status != engine.PlanSuccess {
		t.Fatalf("resize %s: %s", p.Status, stepNames(p))
	}
	checkByRecovery(t, "resize", p)
	if paused.Load() {
		t.Fatal("the route was paused during a resize by recovery")
	}
	after := checkRunning(t, h, id, 2)
	r, _, _ := h.replication(id)
	if r.Term != r0.Term+1 || len(r.InSync) != 2 {
		t.Fatalf("routing after the resize %+v (was %+v): want the primary handed over (term+1), both new copies in sync", r, r0)
	}
	for _, in := range after.Instances {
		if slices.ContainsFunc(before.Instances, func(o engine.PlacedInstance) bool { return o.ID == in.ID }) || !slices.Contains(r.Copies, in.ID) {
			t.Fatalf("instance %s: not new or not a copy (%+v)", in.ID, r)
		}
	}
	w.waitMore("writes on the new nodes")
	stopWriter()
	w.checkNoLoss(t)
	t.Logf("route never paused; %d failed write attempts during the resize", w.fails.Load())
}

// checkByRecovery fails t unless plan p moved the data by recovery: the
// recover, switch and remove steps succeeded, none of the snapshot
// path's ran.
func checkByRecovery(t *testing.T, what string, p engine.Plan) {
	t.Helper()
	steps := stepNames(p)
	for _, want := range []string{StepRecover, StepSwitch, StepRemoveOld} {
		if !strings.Contains(steps, want+"="+engine.PlanSuccess) {
			t.Fatalf("%s lacks step %q: %s", what, want, steps)
		}
	}
	for _, not := range []string{StepSnapshot, StepMigrate, StepPause, StepFinalSync} {
		if strings.Contains(steps, not+"=") {
			t.Fatalf("%s by recovery ran %q: %s", what, not, steps)
		}
	}
}

// noViewNodes are fakeReplNodes whose nodes have no replication view
// (GET /_paddock/replication unknown, as a node of an older version).
type noViewNodes struct{ *fakeReplNodes }

func (noViewNodes) NodeReplication(context.Context, string) (NodeReplication, error) {
	return NodeReplication{}, errNoReplicationAPI
}

// TestRecoveryStallFallsBackToSnapshot: a resize whose recovery cannot
// finish takes the new copies out of the group and moves the data by
// snapshot, restore, paused final sync; the step says why; the data is
// on the new nodes and the plan succeeds. The fake replication nodes
// never report a new copy in sync: recovery makes no progress for
// RecoveryStall, or (no replication view on the primary) cannot start.
func TestRecoveryStallFallsBackToSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes func() NodeAPI
		stall time.Duration
		want  []string
	}{
		{"no progress", func() NodeAPI { return newFakeReplNodes() }, time.Second,
			[]string{"stalled", "no progress in 1s", "taken out of the group", "by snapshot"}},
		{"primary without replication endpoints", func() NodeAPI { return noViewNodes{newFakeReplNodes()} }, 10 * time.Minute,
			[]string{"stalled", "cannot recover copies", "taken out of the group", "by snapshot"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "zone-1", "zone-2")
			h.startAllocator("alloc-1", "zone-1", 4096, nil)
			h.startAllocator("alloc-2", "zone-2", 4096, nil)
			_, metrics := h.startConstructorWithMetrics("c1", tc.nodes(), func(c *Config) { c.RecoveryStall = tc.stall })
			id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
			if p := h.waitPlan(id, planID, 60*time.Second); p.Status != engine.PlanSuccess {
				t.Fatalf("create: %s", stepNames(p))
			}
			before := checkRunning(t, h, id, 2)
			rt, _ := h.route(id)
			for _, b := range rt.Backends { // fake replication: the test writes each copy
				if err := nodeHTTP(t, "PUT", b.Address, "/logs/_doc/kept", `{"a":1}`, nil); err != nil {
					t.Fatal(err)
				}
			}
			r0, _, _ := h.replication(id)

			resize := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 2048, 2)})
			p := h.waitPlan(id, resize, 90*time.Second)
			if p.Status != engine.PlanSuccess {
				t.Fatalf("resize %s: %s", p.Status, stepNames(p))
			}
			steps := stepNames(p)
			for _, want := range []string{StepRecover, StepSnapshot, StepMigrate, StepPause, StepFinalSync, StepSwitch, StepResumeRt, StepRemoveOld} {
				if !strings.Contains(steps, want+"="+engine.PlanSuccess) {
					t.Fatalf("resize lacks step %q: %s", want, steps)
				}
			}
			for _, s := range p.Steps {
				if s.Name == StepRecover {
					for _, want := range tc.want {
						if !strings.Contains(s.Message, want) {
							t.Fatalf("recover step message %q lacks %q", s.Message, want)
						}
					}
					t.Logf("recover step: %s", s.Message)
				}
			}
			if n := metric(t, metrics, "paddock_constructor_recovery_fallbacks_total"); n != 1 {
				t.Fatalf("paddock_constructor_recovery_fallbacks_total = %v, want 1", n)
			}
			after := checkRunning(t, h, id, 2)
			r, _, _ := h.replication(id)
			if r.Term != r0.Term+1 || slices.ContainsFunc(before.Instances, func(in engine.PlacedInstance) bool { return slices.Contains(r.Copies, in.ID) }) {
				t.Fatalf("routing after the fallback %+v (was %+v): want the new copies only, a migrated one primary", r, r0)
			}
			rt, _ = h.route(id)
			for _, b := range rt.Backends {
				if !slices.ContainsFunc(after.Instances, func(in engine.PlacedInstance) bool { return in.ID == b.InstanceID }) {
					t.Fatalf("route backend %s is not an instance of the new topology", b.InstanceID)
				}
				if err := nodeHTTP(t, "GET", b.Address, "/logs/_doc/kept", "", nil); err != nil {
					t.Fatalf("new node %s lacks the document: %v", b.InstanceID, err)
				}
			}
		})
	}
}

// TestNoInSyncCopyStaysRed: the primary of a deployment whose replica is
// out of sync is lost: nothing is promoted, the routing says red.
func TestNoInSyncCopyStaysRed(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2")
	h.setGrace(3600)
	h.startAllocator("alloc-1", "zone-1", 4096, nil)
	h.startAllocator("alloc-2", "zone-2", 4096, nil)
	nodes := newFakeReplNodes()
	h.startConstructor("c1", nodes, func(c *Config) { c.FailoverGrace = 300 * time.Millisecond })
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	if p := h.waitPlan(id, planID, 60*time.Second); p.Status != engine.PlanSuccess {
		t.Fatalf("create: %s", stepNames(p))
	}
	d := checkRunning(t, h, id, 2)
	r, _, _ := h.replication(id)
	var replica string
	for _, c := range r.Copies {
		if c != r.Primary {
			replica = c
		}
	}
	nodes.emit(r.Primary, ReplicationEvent{Kind: EventFailed, Copy: replica, Term: r.Term, Reason: "test"})
	h.waitFor("the replica out of sync", 20*time.Second, func() bool {
		r, _, _ := h.replication(id)
		return len(r.InSync) == 1
	})
	for _, in := range d.Instances {
		if in.ID == r.Primary {
			h.allocs[in.Allocator].kill()
		}
	}
	var got engine.Replication
	h.waitFor("the routing to say red", 20*time.Second, func() bool {
		got, _, _ = h.replication(id)
		return strings.Contains(got.Reason, "no in-sync copy runs")
	})
	if got.Primary != r.Primary || got.Term != r.Term || got.IsInSync(replica) {
		t.Fatalf("a copy out of sync was promoted: %+v (was %+v)", got, r)
	}
	if h, _ := engine.ReplicationHealth(got, func(c string) bool { return c == replica }); h != engine.HealthRed {
		t.Fatalf("health %s, want red", h)
	}
}
