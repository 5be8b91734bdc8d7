package constructor

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/backup"
)

// TestRoutingAfterZooKeeperRestore: ZooKeeper is restored from a backup
// taken before the routing last changed (real ZooKeeper, real
// in-process nodes): the znode comes back at a lower version than the
// nodes hold, and a node ignores a push of the same term at a lower
// version. The constructor finds the nodes ahead and moves the term
// past theirs; a later change of in_sync (a replica lost under writes)
// then reaches the primary, which acknowledges writes again.
func TestRoutingAfterZooKeeperRestore(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2")
	h.setGrace(3600)
	h.startAllocator("alloc-1", "zone-1", 4096, nil)
	h.startAllocator("alloc-2", "zone-2", 4096, nil)
	mod := func(c *Config) { c.FailoverGrace = 500 * time.Millisecond; c.ReplicationCheck = time.Second }
	c1 := h.startConstructor("c1", NewHTTPNodes(), mod)
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	if p := h.waitPlan(id, planID, 60*time.Second); p.Status != engine.PlanSuccess {
		t.Fatalf("create: %s", stepNames(p))
	}
	d := checkRunning(t, h, id, 2)
	addr := map[string]string{}
	rte, _ := h.route(id)
	for _, b := range rte.Backends {
		addr[b.InstanceID] = b.Address
	}
	held := func(c string) NodeReplication {
		var v NodeReplication
		_ = nodeHTTP(t, "GET", addr[c], "/_paddock/replication", "", &v)
		return v
	}
	// nodesHold waits until every copy (but skip) holds the znode's
	// routing, and returns it.
	nodesHold := func(what, skip string, cond func(r engine.Replication, ver engine.Version) bool) (engine.Replication, engine.Version) {
		t.Helper()
		var r engine.Replication
		var ver engine.Version
		h.waitFor(what, 30*time.Second, func() bool {
			var ok bool
			if r, ver, ok = h.replication(id); !ok || !cond(r, ver) {
				return false
			}
			for _, c := range r.Copies {
				if v := held(c); c != skip && (v.RoutingTerm != r.Term || v.Version != ver || v.Primary != r.Primary || !slices.Equal(v.InSync, r.InSync)) {
					return false
				}
			}
			return true
		})
		return r, ver
	}
	r0, v0 := nodesHold("the first routing on both nodes", "", func(engine.Replication, engine.Version) bool { return true })

	ctx := ctxT(t, 3*time.Minute)
	su := env.Super(t)
	f, err := backup.Take(ctx, su, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The routing changes after the backup (the same group written three
	// more times); the constructor's check brings the nodes up to it.
	ver := v0
	for range 3 {
		if ver, err = su.Set(ctx, engine.ReplicationPath(id), r0, ver); err != nil {
			t.Fatal(err)
		}
	}
	nodesHold("the later versions on both nodes", "", func(r engine.Replication, v engine.Version) bool { return v == v0+3 })

	// ZooKeeper's data is lost and restored from the backup while the
	// agents are down; the nodes keep running.
	c1.kill()
	for _, a := range []string{"alloc-1", "alloc-2"} {
		h.allocs[a].kill()
	}
	if err := su.DeleteTree(ctx, engine.Root); err != nil {
		t.Fatal(err)
	}
	if err := backup.Restore(ctx, su, f, backup.RestoreOptions{Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	if r, v, _ := h.replication(id); r.Term != r0.Term || v != v0 {
		t.Fatalf("restored routing term %d version %d, want the backup's (term %d version %d)", r.Term, v, r0.Term, v0)
	}
	for _, a := range []string{"alloc-1", "alloc-2"} {
		h.resumeAllocator(a)
	}
	h.startConstructor("c2", NewHTTPNodes(), mod)
	r1, _ := nodesHold("the term moved past the nodes' and pushed", "", func(r engine.Replication, _ engine.Version) bool { return r.Term > r0.Term })
	if r1.Primary != r0.Primary || len(r1.InSync) != 2 {
		t.Fatalf("routing after the restore %+v: want the nodes' group (primary %s, both in sync) under a new term", r1, engine.Short(r0.Primary))
	}
	t.Logf("after the restore: %s", r1.Reason)

	// A change of in_sync under writes: the replica's zone is lost.
	w := &writer{h: h, id: id}
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(wctx) }()
	defer func() { cancel(); <-done }()
	acked := func() int { w.mu.Lock(); defer w.mu.Unlock(); return len(w.acked) }
	h.waitFor("some writes", 20*time.Second, func() bool { return acked() > 20 })
	var replica engine.PlacedInstance
	for _, in := range d.Instances {
		if in.ID != r1.Primary {
			replica = in
		}
	}
	h.allocs[replica.Allocator].kill()
	h.runtimes[replica.Allocator].stopAll()
	nodesHold("the lost replica out of in_sync on the primary", replica.ID, func(r engine.Replication, _ engine.Version) bool {
		return slices.Equal(r.InSync, []string{r1.Primary})
	})
	n := acked()
	h.waitFor("writes acknowledged by the primary alone", 30*time.Second, func() bool { return acked() > n+20 })
	cancel()
	<-done
	w.mu.Lock()
	docs := slices.Clone(w.acked)
	w.mu.Unlock()
	for _, doc := range docs {
		if err := nodeHTTP(t, "GET", addr[r1.Primary], "/logs/_doc/"+doc, "", nil); err != nil {
			t.Fatalf("acknowledged %s not on the primary: %v", doc, err)
		}
	}
	t.Log(fmt.Sprintf("%d writes acknowledged, %d failed attempts", len(docs), w.fails.Load()))
}
