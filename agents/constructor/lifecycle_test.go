package constructor

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/zktest"
)

func setMaintenance(t *testing.T, h *harness, alloc string, on bool) {
	t.Helper()
	if err := h.admin.Put(ctxT(t, 10*time.Second), engine.AllocatorMaintenancePath(alloc), engine.Maintenance{On: on, Since: time.Now().UTC(), By: "test"}); err != nil {
		t.Fatal(err)
	}
}

func allocatorsOf(d engine.Deployment) []string {
	var out []string
	for _, in := range d.Instances {
		out = append(out, in.Allocator)
	}
	slices.Sort(out)
	return out
}

func TestMaintenanceAndVacate(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2")
	h.startAllocator("alloc-1a", "zone-1", 4096, nil)
	h.startAllocator("alloc-1b", "zone-1", 4096, nil)
	h.startAllocator("alloc-2a", "zone-2", 4096, nil)
	_, metrics := h.startConstructorWithMetrics("c1", NewHTTPNodes(), nil)

	// Maintenance: nothing new goes there.
	setMaintenance(t, h, "alloc-1a", true)
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	if p := h.waitPlan(id, planID, 60*time.Second); p.Status != engine.PlanSuccess {
		t.Fatalf("create: %s", stepNames(p))
	}
	d := checkRunning(t, h, id, 2)
	if got := allocatorsOf(d); !slices.Equal(got, []string{"alloc-1b", "alloc-2a"}) {
		t.Fatalf("placed on %v, want alloc-1b and alloc-2a (alloc-1a in maintenance)", got)
	}
	r, _ := h.route(id)
	if err := nodeHTTP(t, "PUT", r.Backends[0].Address, "/logs/_doc/before-vacate", `{"x":1}`, nil); err != nil {
		t.Fatal(err)
	}

	// Maintenance does not move what runs: the instance on alloc-1b stays
	// when alloc-1b goes into maintenance...
	setMaintenance(t, h, "alloc-1a", false)
	setMaintenance(t, h, "alloc-1b", true)
	h.waitSweeps(metrics, 3) // the leader looked three times: nothing may happen
	if _, ok := h.pendingPlan(id); ok || !slices.Equal(allocatorsOf(h.deployment(id)), []string{"alloc-1b", "alloc-2a"}) {
		t.Fatal("maintenance moved instances by itself")
	}
	// ...until it is vacated: a move plan (as the service writes it),
	// staying in zone-1, without downtime (grow-and-shrink, data kept).
	move := h.submit(id, engine.Plan{Action: engine.ActionMove, MoveFrom: []string{"alloc-1b"}})
	p := h.waitPlan(id, move, 60*time.Second)
	if p.Status != engine.PlanSuccess {
		t.Fatalf("vacate: %s", stepNames(p))
	}
	checkByRecovery(t, "vacate", p)
	d = checkRunning(t, h, id, 2)
	if got := allocatorsOf(d); !slices.Equal(got, []string{"alloc-1a", "alloc-2a"}) {
		t.Fatalf("after vacate on %v, want alloc-1a (same zone) and alloc-2a", got)
	}
	if n := h.instanceZnodes(id); len(n["alloc-1b"]) != 0 {
		t.Fatalf("instances left on the vacated allocator: %v", n)
	}
	r, _ = h.route(id)
	for _, b := range r.Backends {
		if err := nodeHTTP(t, "GET", b.Address, "/logs/_doc/before-vacate", "", nil); err != nil {
			t.Fatalf("document lost by the vacate on %s: %v", b.Zone, err)
		}
	}
}

func TestLostAllocatorInstancesReplaced(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2")
	h.startAllocator("alloc-1a", "zone-1", 4096, nil)
	h.startAllocator("alloc-1b", "zone-1", 4096, nil)
	h.startAllocator("alloc-2a", "zone-2", 4096, nil)
	// Grace is read live from the platform config.
	h.setGrace(2)
	h.startConstructor("c1", NewHTTPNodes(), nil)
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	h.waitPlan(id, planID, 60*time.Second)
	d := checkRunning(t, h, id, 2)
	victim := ""
	for _, in := range d.Instances {
		if in.Zone == "zone-1" {
			victim = in.Allocator
		}
	}
	r, _ := h.route(id)
	if err := nodeHTTP(t, "PUT", r.Backends[0].Address, "/logs/_doc/survivor", `{"x":1}`, nil); err != nil {
		t.Fatal(err)
	}
	lostAt := time.Now()
	h.allocs[victim].kill()

	h.waitFor("a move plan off the lost allocator to succeed", 60*time.Second, func() bool {
		for _, p := range h.history(id) {
			if p.Action == engine.ActionMove && p.Status == engine.PlanSuccess {
				return true
			}
		}
		return false
	})
	if since := time.Since(lostAt); since < 2*time.Second {
		t.Fatalf("replaced after %s, before the 2s grace", since)
	}
	d = checkRunning(t, h, id, 2)
	for _, in := range d.Instances {
		if in.Allocator == victim {
			t.Fatalf("instance still on the lost allocator: %+v", d.Instances)
		}
		if in.Zone == "zone-1" && in.Allocator != "alloc-1a" && in.Allocator != "alloc-1b" {
			t.Fatalf("replacement left zone-1: %+v", in)
		}
	}
	var mv engine.Plan
	for _, p := range h.history(id) {
		if p.Action == engine.ActionMove {
			mv = p
		}
	}
	if !strings.Contains(mv.CreatedBy, "lost") || !slices.Equal(mv.MoveFrom, []string{victim}) {
		t.Fatalf("move plan %+v", mv)
	}
	r, _ = h.route(id)
	for _, b := range r.Backends {
		if err := nodeHTTP(t, "GET", b.Address, "/logs/_doc/survivor", "", nil); err != nil {
			t.Fatalf("data lost on %s: %v", b.Zone, err)
		}
	}
}

// blockingNodes holds restores until released, to catch a plan mid-way.
type blockingNodes struct {
	NodeAPI
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (b *blockingNodes) Restore(ctx context.Context, addr, location, snap string) error {
	b.once.Do(func() { close(b.entered) })
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.NodeAPI.Restore(ctx, addr, location, snap)
}

func TestLeaderKilledMidPlanNewLeaderFinishes(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2", "zone-3")
	threeAllocators(h)
	block := &blockingNodes{NodeAPI: NewHTTPNodes(), entered: make(chan struct{}), release: make(chan struct{})}
	c1 := h.startConstructor("c1", block, func(c *Config) { c.MigrateBySnapshot = true }) // blocks in "migrate data"
	h.waitFor("c1 to lead", 20*time.Second, func() bool {
		kids, _ := h.admin.Children(context.Background(), engine.PathLeaderCons)
		return len(kids) == 1
	})
	c2 := h.startConstructor("c2", NewHTTPNodes(), func(c *Config) { c.MigrateBySnapshot = true })
	h.waitFor("c2 to stand by", 20*time.Second, func() bool {
		kids, _ := h.admin.Children(context.Background(), engine.PathLeaderCons)
		return len(kids) == 2
	})
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	h.waitPlan(id, planID, 60*time.Second)
	before := checkRunning(t, h, id, 2)

	resize := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 2048, 2)})
	select {
	case <-block.entered:
	case <-time.After(60 * time.Second):
		t.Fatal("the plan never reached the migration")
	}
	c1.kill() // the leader dies inside "migrate data"
	p := h.waitPlan(id, resize, 90*time.Second)
	close(block.release)
	if p.Status != engine.PlanSuccess {
		t.Fatalf("plan %s after the leader change: %s", p.Status, stepNames(p))
	}
	var resumedBy, interrupted string
	applied := map[string]int{}
	for _, s := range p.Steps {
		if s.Name == StepResume {
			resumedBy = s.AppliedBy
		}
		if s.Status == engine.PlanError && strings.Contains(s.Message, "interrupted") {
			interrupted = s.Name
		}
		if s.Status == engine.PlanSuccess {
			applied[s.Name]++
		}
	}
	if resumedBy != "c2" || interrupted != StepMigrate || p.Leader != "c2" {
		t.Fatalf("resume by %q, interrupted %q, leader %q: %s", resumedBy, interrupted, p.Leader, stepNames(p))
	}
	for name, n := range applied {
		if n > 1 {
			t.Fatalf("step %q applied %d times: %s", name, n, stepNames(p))
		}
	}
	after := checkRunning(t, h, id, 2)
	for _, in := range after.Instances {
		if in.SizeMB != 2048 {
			t.Fatalf("not resized: %+v", after.Instances)
		}
	}
	// Exactly the new instances remain: nothing placed twice, old gone.
	total := 0
	for _, ids := range h.instanceZnodes(id) {
		total += len(ids)
	}
	if total != 2 {
		t.Fatalf("%d instance znodes, want 2 (before: %v)", total, before.Instances)
	}
	_ = c2
}

func TestDeleteRemovesRouteThenInstances(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2", "zone-3")
	threeAllocators(h)
	h.startConstructor("c1", NewHTTPNodes(), nil)
	id, planID := h.createDeployment(spec("8.17.0", 1024, 3))
	h.waitPlan(id, planID, 60*time.Second)
	checkRunning(t, h, id, 3)
	del := h.submit(id, engine.Plan{Action: engine.ActionDelete})
	p := h.waitPlan(id, del, 60*time.Second)
	if p.Status != engine.PlanSuccess || !strings.HasPrefix(stepNames(p), StepValidate+"=success, "+StepRemoveRt+"=success, "+StepRemoveOld+"=success") {
		t.Fatalf("delete: %s", stepNames(p))
	}
	if _, ok := h.route(id); ok {
		t.Fatal("route still there")
	}
	if n := h.instanceZnodes(id); len(n) != 0 {
		t.Fatalf("instances left: %v", n)
	}
	d := h.deployment(id)
	if d.Status != engine.DeploymentDeleted || len(d.Instances) != 0 || len(h.history(id)) != 2 {
		t.Fatalf("deleted deployment %+v, history %d", d, len(h.history(id)))
	}
}

func TestRestartAndScaleOutInAndCancel(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2", "zone-3")
	threeAllocators(h)
	block := &blockingNodes{NodeAPI: NewHTTPNodes(), entered: make(chan struct{}), release: make(chan struct{})}
	h.startConstructor("c1", block, func(c *Config) { c.MigrateBySnapshot = true }) // the cancel comes in "migrate data"
	id, planID := h.createDeployment(spec("8.17.0", 1024, 1))
	h.waitPlan(id, planID, 60*time.Second)
	d := checkRunning(t, h, id, 1)

	// Forced restart: the instance's generation goes up, same instance.
	rs := h.submit(id, engine.Plan{Action: engine.ActionRestart})
	if p := h.waitPlan(id, rs, 60*time.Second); p.Status != engine.PlanSuccess || !strings.Contains(stepNames(p), StepRestart+"=success") {
		t.Fatalf("restart: %s", stepNames(p))
	}
	var in engine.Instance
	if _, err := h.admin.GetJSON(ctxT(t, 5*time.Second), engine.InstancePath(d.Instances[0].Allocator, d.Instances[0].ID), &in); err != nil || in.Generation != 1 {
		t.Fatalf("instance after restart: %+v %v", in, err)
	}

	// Scale out 1 → 3 zones is cancelled mid-migration: rolled back.
	out := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 1024, 3)})
	select {
	case <-block.entered:
	case <-time.After(60 * time.Second):
		t.Fatal("the scale-out never reached the migration")
	}
	var p engine.Plan
	if _, err := h.admin.Update(ctxT(t, 10*time.Second), engine.PendingPlanPath(id), &p, func() error {
		p.CancelRequested = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	close(block.release)
	p = h.waitPlan(id, out, 60*time.Second)
	if p.Status != engine.PlanCancelled || !strings.Contains(stepNames(p), StepRollback+"=success") {
		t.Fatalf("cancel: %s %s", p.Status, stepNames(p))
	}
	checkRunning(t, h, id, 1)

	// Scale out for real, then in.
	out = h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 1024, 3)})
	if p := h.waitPlan(id, out, 60*time.Second); p.Status != engine.PlanSuccess {
		t.Fatalf("scale out: %s", stepNames(p))
	}
	checkRunning(t, h, id, 3)
	in2 := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 1024, 2)})
	if p := h.waitPlan(id, in2, 60*time.Second); p.Status != engine.PlanSuccess || !strings.Contains(stepNames(p), StepRemoveOld+"=success") {
		t.Fatalf("scale in: %s", stepNames(p))
	}
	checkRunning(t, h, id, 2)
}

func TestRollingUpgradeOneZoneAtATime(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2")
	// Room for one instance each: grow-and-shrink could not fit.
	h.startAllocator("alloc-1", "zone-1", 1024, nil)
	h.startAllocator("alloc-2", "zone-2", 1024, nil)
	h.startConstructor("c1", NewHTTPNodes(), nil)
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	h.waitPlan(id, planID, 60*time.Second)
	checkRunning(t, h, id, 2)
	r, _ := h.route(id)
	if err := nodeHTTP(t, "PUT", r.Backends[0].Address, "/logs/_doc/kept", `{"x":1}`, nil); err != nil {
		t.Fatal(err)
	}
	up := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Strategy: engine.PlanRolling, Spec: spec("8.18.0", 1024, 2)})
	p := h.waitPlan(id, up, 90*time.Second)
	if p.Status != engine.PlanSuccess {
		t.Fatalf("rolling: %s", stepNames(p))
	}
	d := checkRunning(t, h, id, 2)
	for _, in := range d.Instances {
		if in.Version != "8.18.0" {
			t.Fatalf("not upgraded: %+v", d.Instances)
		}
	}
	if got := allocatorsOf(d); !slices.Equal(got, []string{"alloc-1", "alloc-2"}) {
		t.Fatalf("rolling moved instances: %v", got)
	}
	r, _ = h.route(id)
	for _, b := range r.Backends {
		if err := nodeHTTP(t, "GET", b.Address, "/logs/_doc/kept", "", nil); err != nil {
			t.Fatalf("data lost on %s: %v", b.Zone, err)
		}
	}
}

func TestRollingFailureKeepsWhatRuns(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2")
	h.startAllocator("alloc-1", "zone-1", 1024, nil)
	h.startAllocator("alloc-2", "zone-2", 1024, nil)
	nodes := &failingNodes{NodeAPI: NewHTTPNodes()}
	h.startConstructor("c1", nodes, nil)
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	h.waitPlan(id, planID, 60*time.Second)
	checkRunning(t, h, id, 2)
	r0, _ := h.route(id)
	if err := nodeHTTP(t, "PUT", r0.Backends[0].Address, "/logs/_doc/kept", `{"x":1}`, nil); err != nil {
		t.Fatal(err)
	}
	nodes.fail.Store(true)
	up := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Strategy: engine.PlanRolling, Spec: spec("8.18.0", 1024, 2)})
	p := h.waitPlan(id, up, 90*time.Second)
	if p.Status != engine.PlanError || !strings.Contains(stepNames(p), StepRollback+"=success") {
		t.Fatalf("rolling failure: %s %s", p.Status, stepNames(p))
	}
	// The failure hit zone-1's restore: its new node (without the data)
	// goes, zone-2's old node keeps serving with the data; the spec is
	// unchanged and the plan's error recorded.
	d := checkRunning(t, h, id, 1)
	if d.Instances[0].Version != "8.17.0" || d.Instances[0].Zone != "zone-2" || d.Spec.Version != "8.17.0" || d.LastPlanStatus != engine.PlanError {
		t.Fatalf("after a failed rolling plan: %+v", d)
	}
	r, _ := h.route(id)
	if err := nodeHTTP(t, "GET", r.Backends[0].Address, "/logs/_doc/kept", "", nil); err != nil {
		t.Fatalf("data lost: %v", err)
	}
}

// TestPartitionedLeaderHandsOver: the leader's connection to ZooKeeper is
// cut mid-plan (as when its host dies or is partitioned, no clean
// close): it stops acting at once, its session expires, the standby takes
// over within the session timeout and finishes the plan; each step is
// applied once.
func TestPartitionedLeaderHandsOver(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2", "zone-3")
	threeAllocators(h)
	part, err := zktest.NewPartition(env.Servers())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(part.Close)
	viaPart := h.p.ConnectVia(t, part.Addr(), engine.RoleConstructor)
	block := &blockingNodes{NodeAPI: NewHTTPNodes(), entered: make(chan struct{}), release: make(chan struct{})}
	h.startConstructor("c1", block, func(c *Config) { c.Store = viaPart; c.MigrateBySnapshot = true }) // blocks in "migrate data"
	h.waitFor("c1 to lead", 20*time.Second, func() bool {
		kids, _ := h.admin.Children(context.Background(), engine.PathLeaderCons)
		return len(kids) == 1
	})
	h.startConstructor("c2", NewHTTPNodes(), func(c *Config) { c.MigrateBySnapshot = true })
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	if p := h.waitPlan(id, planID, 60*time.Second); p.Leader != "c1" {
		t.Fatalf("create plan led by %q, want c1", p.Leader)
	}
	resize := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 2048, 2)})
	select {
	case <-block.entered:
	case <-time.After(60 * time.Second):
		t.Fatal("the plan never reached the migration")
	}
	part.Cut()
	p := h.waitPlan(id, resize, 90*time.Second)
	close(block.release)
	if p.Status != engine.PlanSuccess || p.Leader != "c2" {
		t.Fatalf("plan %s led by %s: %s", p.Status, p.Leader, stepNames(p))
	}
	appliedOnce(t, p)
	checkRunning(t, h, id, 2)
	// The old leader comes back with a new session and stands by: the
	// plan is not touched again.
	part.Restore()
	h.waitFor("c1 back in the election", 30*time.Second, func() bool {
		kids, _ := h.admin.Children(context.Background(), engine.PathLeaderCons)
		return len(kids) == 2
	})
	hist := h.history(id)
	if last := hist[len(hist)-1]; last.ID != resize {
		t.Fatalf("a plan ran after the handover: %+v", last)
	}
}

// TestWholeZoneLostFreezesRescheduling: both allocators of a zone vanish
// at once (a partition, not two failed hosts): nothing is rescheduled and
// the constructor says so loudly on /healthz and in its metrics.
func TestWholeZoneLostFreezesRescheduling(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2")
	h.startAllocator("alloc-1a", "zone-1", 4096, nil)
	h.startAllocator("alloc-1b", "zone-1", 4096, nil)
	h.startAllocator("alloc-2a", "zone-2", 4096, nil)
	h.startAllocator("alloc-2b", "zone-2", 4096, nil)
	h.setGrace(1)
	_, metrics := h.startConstructorWithMetrics("c1", NewHTTPNodes(), nil)
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	h.waitPlan(id, planID, 60*time.Second)
	checkRunning(t, h, id, 2)
	h.allocs["alloc-1a"].kill()
	h.allocs["alloc-1b"].kill()
	var health string
	h.waitFor("the freeze on /healthz", 30*time.Second, func() bool {
		var body map[string]any
		_ = nodeHTTP(t, "GET", metrics, "/healthz", "", &body)
		checks, _ := body["checks"].(map[string]any)
		health, _ = checks["rescheduling"].(string)
		return strings.Contains(health, "every allocator of zone-1 (2) looks lost")
	})
	// The leader found both allocators lost past the 1 s grace, and held
	// them, three times: still nothing may move.
	h.waitFor("three sweeps holding the lost allocators", 30*time.Second, func() bool {
		return metric(t, metrics, "paddock_constructor_rescheduling_held_total") >= 3
	})
	for _, p := range h.history(id) {
		if p.Action == engine.ActionMove {
			t.Fatalf("a move plan ran while frozen: %s", stepNames(p))
		}
	}
	if _, ok := h.pendingPlan(id); ok {
		t.Fatal("a move plan is pending while frozen")
	}
	// The zone-2 instance keeps the route.
	r, _ := h.route(id)
	if len(r.Backends) == 0 {
		t.Fatal("route emptied")
	}
}

// TestLostSingleZoneDeploymentRecoversFromSnapshot: the only node of a
// 1-zone deployment dies with its allocator: its replacement restores
// the newest snapshot of the deployment's repository (the last plan's).
func TestLostSingleZoneDeploymentRecoversFromSnapshot(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2")
	h.startAllocator("alloc-1a", "zone-1", 4096, nil)
	h.startAllocator("alloc-1b", "zone-1", 4096, nil)
	h.startAllocator("alloc-2a", "zone-2", 4096, nil)
	h.setGrace(1)
	// Plans by snapshot: the resize below leaves its snapshot in the
	// deployment's repository (a resize by recovery takes none).
	h.startConstructor("c1", NewHTTPNodes(), func(c *Config) { c.MigrateBySnapshot = true })
	id, planID := h.createDeployment(spec("8.17.0", 1024, 1))
	h.waitPlan(id, planID, 60*time.Second)
	r, _ := h.route(id)
	if err := nodeHTTP(t, "PUT", r.Backends[0].Address, "/logs/_doc/precious", `{"x":1}`, nil); err != nil {
		t.Fatal(err)
	}
	// A resize snapshots the data into the repository.
	resize := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 2048, 1)})
	if p := h.waitPlan(id, resize, 60*time.Second); p.Status != engine.PlanSuccess {
		t.Fatalf("resize: %s", stepNames(p))
	}
	d := checkRunning(t, h, id, 1)
	h.allocs[d.Instances[0].Allocator].kill()
	mv := h.waitMovePlan(id)
	if mv.Status != engine.PlanSuccess || !strings.Contains(stepNames(mv), StepMigrate+"=success") {
		t.Fatalf("move: %s", stepNames(mv))
	}
	d = checkRunning(t, h, id, 1)
	if d.Instances[0].Zone != "zone-1" {
		t.Fatalf("replacement left the zone: %+v", d.Instances)
	}
	r, _ = h.route(id)
	if err := nodeHTTP(t, "GET", r.Backends[0].Address, "/logs/_doc/precious", "", nil); err != nil {
		t.Fatalf("snapshot not recovered: %v", err)
	}
}
