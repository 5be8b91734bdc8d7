package engine_test

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock/engine"
)

// snapshotOf reads the subtree at root straight from ZooKeeper (path →
// data), leaving out what skip names.
func snapshotOf(t *testing.T, s *engine.Store, root string, skip func(string) bool) map[string]string {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	out := map[string]string{}
	var walk func(p string)
	walk = func(p string) {
		if p != root && skip != nil && skip(p) {
			return
		}
		b, _, err := s.Get(ctx, p)
		if err != nil {
			return
		}
		out[p] = string(b)
		kids, _ := s.Children(ctx, p)
		for _, k := range kids {
			walk(path.Join(p, k))
		}
	}
	walk(root)
	return out
}

func cacheSnapshot(c *engine.TreeCache, root string) map[string]string {
	out := map[string]string{}
	var walk func(p string)
	walk = func(p string) {
		n, ok := c.Get(p)
		if !ok {
			return
		}
		out[p] = string(n.Data)
		for _, k := range c.Children(p) {
			walk(path.Join(p, k))
		}
	}
	walk(root)
	return out
}

func diffSnapshots(want, got map[string]string) string {
	var d []string
	for p, v := range want {
		if g, ok := got[p]; !ok {
			d = append(d, "missing "+p)
		} else if g != v {
			d = append(d, fmt.Sprintf("%s = %q, want %q", p, g, v))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			d = append(d, "extra "+p)
		}
	}
	sort.Strings(d)
	if len(d) > 10 {
		d = append(d[:10], fmt.Sprintf("… %d more", len(d)-10))
	}
	return strings.Join(d, "; ")
}

// TestTreeCacheBurstMatchesZooKeeper: many writers create, update,
// delete and re-create znodes at two depths at once; the cache (fed by
// batched, pipelined reads) ends equal to ZooKeeper, and every event a
// listener saw replays into the same tree.
func TestTreeCacheBurstMatchesZooKeeper(t *testing.T) {
	p := env.Fresh(t)
	ctx := ctxT(t, 60*time.Second)
	s := p.Admin
	reader := p.Connect(t, engine.RoleAdmin)
	c := engine.NewTreeCache(reader, engine.PathDeployments)
	ch := c.Listen()
	go c.Run(ctx)
	<-c.Ready()
	replay := map[string]string{}
	var rmu sync.Mutex
	go func() {
		for ev := range ch {
			rmu.Lock()
			switch ev.Type {
			case engine.NodeAdded, engine.NodeUpdated:
				replay[ev.Path] = string(ev.Data)
			case engine.NodeRemoved:
				delete(replay, ev.Path)
			}
			rmu.Unlock()
		}
	}()

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				id := fmt.Sprintf("w%d-%02d", w, i)
				d := engine.DeploymentPath(id)
				if err := s.Create(ctx, d, "v1"); err != nil {
					t.Error(err)
					return
				}
				if err := s.Create(ctx, engine.PlansPath(id), "plans"); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Set(ctx, d, "v2", engine.AnyVersion); err != nil {
					t.Error(err)
					return
				}
				switch i % 4 {
				case 1: // delete the subtree
					if err := s.DeleteTree(ctx, d); err != nil {
						t.Error(err)
					}
				case 2: // delete and re-create at once
					if err := s.DeleteTree(ctx, d); err != nil {
						t.Error(err)
					}
					if err := s.Create(ctx, d, "again"); err != nil {
						t.Error(err)
					}
				case 3: // a child changes after its parent
					if _, err := s.Set(ctx, engine.PlansPath(id), "plans-2", engine.AnyVersion); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	want := snapshotOf(t, s, engine.PathDeployments, nil)
	waitUntil(t, 20*time.Second, "the cache to match ZooKeeper", func() bool {
		return diffSnapshots(want, cacheSnapshot(c, engine.PathDeployments)) == ""
	})
	waitUntil(t, 10*time.Second, "the replayed events to match ZooKeeper", func() bool {
		rmu.Lock()
		defer rmu.Unlock()
		return diffSnapshots(want, replay) == ""
	})
}

// TestTreeCacheSkipAndLeaves: skipped subtrees are neither cached nor
// read; leaves are read without a children list.
func TestTreeCacheSkipAndLeaves(t *testing.T) {
	p := env.Fresh(t)
	ctx := ctxT(t, 30*time.Second)
	s := p.Admin
	for _, id := range []string{"a", "b"} {
		for _, n := range []string{engine.DeploymentPath(id), engine.PlansPath(id), engine.PendingPlanPath(id), engine.PlanHistoryPath(id),
			engine.PlanHistoryEntryPath(id, "plan-1")} {
			if err := s.Create(ctx, n, "x"); err != nil {
				t.Fatal(err)
			}
		}
	}
	skip := func(p string) bool { return path.Base(p) == "history" }
	leaf := func(p string) bool { return path.Base(p) == "pending" }
	reader := p.Connect(t, engine.RoleAdmin)
	c := engine.NewTreeCache(reader, engine.PathDeployments, engine.CacheSkip(skip), engine.CacheLeaves(leaf))
	before := reader.Stats()
	go c.Run(ctx)
	<-c.Ready()
	// root, 2 × (deployment, plans): data + children; 2 pending: data only.
	if got, want := reader.Stats().Sub(before).Reads, int64(2*5+2); got != want {
		t.Fatalf("initial load made %d reads, want %d (skipped subtrees and leaves' children read?)", got, want)
	}
	if got := c.Children(engine.PlansPath("a")); len(got) != 1 || got[0] != "pending" {
		t.Fatalf("children of plans = %v, want [pending] (history skipped)", got)
	}
	// A change under a skipped subtree costs nothing; one elsewhere costs
	// one read.
	if err := s.Create(ctx, engine.PlanHistoryEntryPath("a", "plan-2"), "y"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Set(ctx, engine.PendingPlanPath("a"), "z", engine.AnyVersion); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the pending plan update", func() bool {
		n, ok := c.Get(engine.PendingPlanPath("a"))
		return ok && string(n.Data) == "z"
	})
	if got := reader.Stats().Sub(before).Reads; got != 2*5+2+1 {
		t.Fatalf("%d reads after one update, want %d", got, 2*5+2+1)
	}
	if _, ok := c.Get(engine.PlanHistoryPath("a")); ok {
		t.Fatal("a skipped znode is cached")
	}
	// Deleting a deployment removes it without a read of its own.
	if err := s.DeleteTree(ctx, engine.DeploymentPath("b")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the deletion", func() bool {
		_, ok := c.Get(engine.DeploymentPath("b"))
		return !ok
	})
}

// TestTreeCacheContainers: a container (a znode without data by the
// layout) costs one read, its children list, and its children's
// changes and its own deletion still show.
func TestTreeCacheContainers(t *testing.T) {
	p := env.Fresh(t)
	ctx := ctxT(t, 30*time.Second)
	s := p.Admin
	for _, n := range []string{engine.DeploymentPath("a"), engine.PlansPath("a"), engine.PlanHistoryPath("a")} {
		if err := s.Create(ctx, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Create(ctx, engine.PlanHistoryEntryPath("a", "plan-1"), "x"); err != nil {
		t.Fatal(err)
	}
	reader := p.Connect(t, engine.RoleAdmin)
	c := engine.NewTreeCache(reader, engine.PathDeployments, engine.CacheContainers(engine.ContainerZnode),
		engine.CacheLeaves(engine.LayoutLeaves(engine.PathDeployments)))
	before := reader.Stats()
	go c.Run(ctx)
	<-c.Ready()
	// root, deployment: data + children; plans, history: children;
	// the finished plan: data.
	if got, want := reader.Stats().Sub(before).Reads, int64(2*2+2+1); got != want {
		t.Fatalf("initial load made %d reads, want %d (containers' data or leaves' children read?)", got, want)
	}
	if n, ok := c.Get(engine.PlanHistoryPath("a")); !ok || n.Stat.Version != 0 || len(n.Data) != 0 {
		t.Fatalf("history folder cached as %+v, %v", n, ok)
	}
	if err := s.Create(ctx, engine.PendingPlanPath("a"), "p"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the pending plan", func() bool {
		n, ok := c.Get(engine.PendingPlanPath("a"))
		return ok && string(n.Data) == "p"
	})
	if err := s.Delete(ctx, engine.PlanHistoryEntryPath("a", "plan-1"), engine.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, engine.PlanHistoryPath("a"), engine.AnyVersion); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the history folder's deletion", func() bool {
		_, ok := c.Get(engine.PlanHistoryPath("a"))
		return !ok && len(c.Children(engine.PlansPath("a"))) == 1
	})
}

func TestLayoutZnodes(t *testing.T) {
	for _, tc := range []struct {
		p               string
		leaf, container bool
	}{
		{engine.DeploymentPath("d"), false, false},
		{engine.PlansPath("d"), false, true},
		{engine.PlanHistoryPath("d"), false, true},
		{engine.PendingPlanPath("d"), true, false},
		{engine.PlanHistoryEntryPath("d", "plan-0000000001"), true, false},
		{engine.ReplicationPath("d"), true, false},
		{engine.InstancesPath("a"), false, true},
		{engine.StatusesPath("a"), false, true},
		{engine.InstancePath("a", "i"), true, false},
		{engine.StatusPath("a", "i"), true, false},
		{engine.AllocatorAlivePath("a"), true, false},
		{engine.AllocatorPath("a"), false, false},
		{engine.PathDeployments + "/plans", false, false},
		{engine.PathSnapshots + "/d/history", false, false},
	} {
		t.Run(tc.p, func(t *testing.T) {
			leaf := engine.LeafDeploymentZnode(tc.p) || engine.LeafAllocatorZnode(tc.p)
			if leaf != tc.leaf || engine.ContainerZnode(tc.p) != tc.container {
				t.Fatalf("leaf %v container %v, want %v %v", leaf, engine.ContainerZnode(tc.p), tc.leaf, tc.container)
			}
		})
	}
}

// TestTreeCacheRootCreatedLater: a cache of a missing root loads it once
// it appears, and after it is deleted and created again.
func TestTreeCacheRootCreatedLater(t *testing.T) {
	p := env.Fresh(t)
	ctx := ctxT(t, 30*time.Second)
	root := engine.DeploymentPath("later")
	c := engine.NewTreeCache(p.Connect(t, engine.RoleAdmin), root)
	go c.Run(ctx)
	<-c.Ready()
	if c.Len() != 0 {
		t.Fatal("missing root cached")
	}
	for round := range 2 {
		if err := p.Admin.Create(ctx, root, fmt.Sprint(round)); err != nil {
			t.Fatal(err)
		}
		if err := p.Admin.Create(ctx, engine.PlansPath("later"), "kid"); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 10*time.Second, "the root and its child", func() bool {
			n, ok := c.Get(root)
			_, kid := c.Get(engine.PlansPath("later"))
			return ok && kid && string(n.Data) == fmt.Sprint(round)
		})
		if err := p.Admin.DeleteTree(ctx, root); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 10*time.Second, "the root gone", func() bool { return c.Len() == 0 })
	}
}

// TestTreeCacheSyncReadsOwnWrites: after a write and a round trip on the
// cache's own session, Sync makes the cache show the write, every time
// (the read-your-writes the API's lists rely on).
func TestTreeCacheSyncReadsOwnWrites(t *testing.T) {
	p := env.Fresh(t)
	ctx := ctxT(t, 60*time.Second)
	s := p.Admin
	c := engine.NewTreeCache(s, engine.PathDeployments)
	go c.Run(ctx)
	<-c.Ready()
	const n = 200
	for i := range n {
		id := fmt.Sprintf("d%03d", i)
		if err := s.Create(ctx, engine.DeploymentPath(id), "v1"); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			// A change to a node the cache already has, too.
			prev := engine.DeploymentPath(fmt.Sprintf("d%03d", i-1))
			if _, err := s.Set(ctx, prev, "v2", engine.AnyVersion); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Children(ctx, engine.PathDeployments); err != nil {
			t.Fatal(err)
		}
		if err := c.Sync(ctx); err != nil {
			t.Fatalf("sync: %v", err)
		}
		if got, ok := c.Get(engine.DeploymentPath(id)); !ok || string(got.Data) != "v1" {
			t.Fatalf("write %d not in the cache after Sync: %q %v", i, got.Data, ok)
		}
		if i > 0 {
			if got, _ := c.Get(engine.DeploymentPath(fmt.Sprintf("d%03d", i-1))); string(got.Data) != "v2" {
				t.Fatalf("update %d not in the cache after Sync: %q", i-1, got.Data)
			}
		}
	}
}

// runDeploymentsCache starts a cache of the deployments on a fresh
// platform's admin store.
func runDeploymentsCache(t *testing.T, opts ...engine.CacheOption) (*engine.Store, *engine.TreeCache, context.Context) {
	t.Helper()
	p := env.Fresh(t)
	ctx := ctxT(t, 60*time.Second)
	c := engine.NewTreeCache(p.Admin, engine.PathDeployments, append(opts, engine.CacheOwnWrites())...)
	go c.Run(ctx)
	<-c.Ready()
	return p.Admin, c, ctx
}

// A write on the cache's session is visible through SyncPath alone (no
// round trip of its own), at the written znode, both for a new znode
// (with ancestors) and for a change of a cached one.
func TestTreeCacheSyncPathReadsOwnWrites(t *testing.T) {
	s, c, ctx := runDeploymentsCache(t)
	for i := range 200 {
		dp := engine.DeploymentPath(fmt.Sprintf("d%03d", i))
		if err := s.Create(ctx, dp, "v1"); err != nil {
			t.Fatal(err)
		}
		if err := c.SyncPath(ctx, dp, true); err != nil {
			t.Fatalf("sync: %v", err)
		}
		if got, ok := c.Get(dp); !ok || string(got.Data) != "v1" {
			t.Fatalf("create %d not in the cache after SyncPath: %q %v", i, got.Data, ok)
		}
		if _, err := s.Set(ctx, dp, "v2", engine.AnyVersion); err != nil {
			t.Fatal(err)
		}
		if err := c.SyncPath(ctx, dp, false); err != nil {
			t.Fatalf("sync: %v", err)
		}
		if got, _ := c.Get(dp); string(got.Data) != "v2" {
			t.Fatalf("update %d not in the cache after SyncPath: %q", i, got.Data)
		}
	}
}

// CacheData keeps only what the option returns.
func TestTreeCacheData(t *testing.T) {
	s, c, ctx := runDeploymentsCache(t, engine.CacheData(func(_ string, b []byte) []byte {
		return []byte(strings.ToUpper(string(b)))
	}))
	dp := engine.DeploymentPath("d1")
	if err := s.Create(ctx, dp, "secret"); err != nil {
		t.Fatal(err)
	}
	if err := c.SyncPath(ctx, dp, true); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(dp); string(got.Data) != "SECRET" {
		t.Fatalf("cached %q, want the kept form", got.Data)
	}
	if _, err := s.Set(ctx, dp, "other", engine.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if err := c.SyncPath(ctx, dp, false); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(dp); string(got.Data) != "OTHER" {
		t.Fatalf("cached %q after an update, want the kept form", got.Data)
	}
}
