package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/testenv"
	"paddock/engine/zktest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, d, what, cond)
}

func TestCompareAndSetConflict(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	ctx := ctxT(t, 20*time.Second)
	a := p.Admin
	b := p.Connect(t, engine.RoleAdmin)
	path := engine.DeploymentPath("d1")
	if err := a.Create(ctx, path, engine.Deployment{ID: "d1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	var da, db engine.Deployment
	va, err := a.GetJSON(ctx, path, &da)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := b.GetJSON(ctx, path, &db)
	if err != nil {
		t.Fatal(err)
	}
	da.Name = "by-a"
	if _, err := a.Set(ctx, path, da, va); err != nil {
		t.Fatalf("first writer: %v", err)
	}
	db.Name = "by-b"
	_, err = b.Set(ctx, path, db, vb)
	if !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("second writer with a stale version: got %v, want ErrConflict", err)
	}
	var se *engine.StoreError
	if !errors.As(err, &se) || se.Path != path {
		t.Fatalf("conflict error should be a *StoreError naming %s, got %#v", path, err)
	}
	var got engine.Deployment
	if _, err := b.GetJSON(ctx, path, &got); err != nil || got.Name != "by-a" {
		t.Fatalf("after the conflict: %+v %v, want the first writer's value", got, err)
	}
}

func TestUpdateRetriesConcurrentWriters(t *testing.T) {
	p := env.Fresh(t)
	ctx := ctxT(t, 30*time.Second)
	path := engine.DeploymentPath("counter")
	if err := p.Admin.Create(ctx, path, engine.Deployment{ID: "counter"}); err != nil {
		t.Fatal(err)
	}
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		s := p.Connect(t, engine.RoleAdmin)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				var d engine.Deployment
				_, err := s.Update(ctx, path, &d, func() error {
					d.Instances = append(d.Instances, engine.PlacedInstance{ID: fmt.Sprint(len(d.Instances))})
					return nil
				})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var d engine.Deployment
	if _, err := p.Admin.GetJSON(ctx, path, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Instances) != writers*each {
		t.Fatalf("lost updates: %d increments recorded, want %d", len(d.Instances), writers*each)
	}
}

func TestMultiIsAllOrNothing(t *testing.T) {
	p := env.Fresh(t)
	ctx := ctxT(t, 20*time.Second)
	s := p.Admin
	if err := s.Create(ctx, engine.DeploymentPath("exists"), engine.Deployment{ID: "exists"}); err != nil {
		t.Fatal(err)
	}
	err := s.Multi(ctx,
		engine.OpCreate(engine.DeploymentPath("new"), engine.Deployment{ID: "new"}),
		engine.OpCreate(engine.PlansPath("new"), nil),
		engine.OpSet(engine.DeploymentPath("exists"), engine.Deployment{ID: "exists", Name: "changed"}, 7), // wrong version
	)
	if !errors.Is(err, engine.ErrConflict) {
		t.Fatalf("multi with a stale version: got %v, want ErrConflict", err)
	}
	for _, p := range []string{engine.DeploymentPath("new"), engine.PlansPath("new")} {
		if ok, _, err := s.Exists(ctx, p); err != nil || ok {
			t.Fatalf("%s exists=%v err=%v after a failed multi: nothing may be left behind", p, ok, err)
		}
	}
	var d engine.Deployment
	if _, err := s.GetJSON(ctx, engine.DeploymentPath("exists"), &d); err != nil || d.Name != "" {
		t.Fatalf("existing record changed by a failed multi: %+v %v", d, err)
	}
	// And the same ops with the right version apply together.
	_, st, _ := s.Get(ctx, engine.DeploymentPath("exists"))
	if err := s.Multi(ctx,
		engine.OpCreate(engine.DeploymentPath("new"), engine.Deployment{ID: "new"}),
		engine.OpCreate(engine.PlansPath("new"), nil),
		engine.OpSet(engine.DeploymentPath("exists"), engine.Deployment{ID: "exists", Name: "changed"}, st.Version),
	); err != nil {
		t.Fatalf("multi with the right versions: %v", err)
	}
}

// collect reads cache events until pred returns true or the deadline.
func collect(t *testing.T, ch <-chan engine.CacheEvent, d time.Duration, pred func([]engine.CacheEvent) bool) []engine.CacheEvent {
	t.Helper()
	var evs []engine.CacheEvent
	deadline := time.After(d)
	for !pred(evs) {
		select {
		case ev := <-ch:
			evs = append(evs, ev)
		case <-deadline:
			t.Fatalf("timed out after %s; events so far: %s", d, describe(evs))
		}
	}
	return evs
}

func describe(evs []engine.CacheEvent) string {
	s := ""
	for _, e := range evs {
		s += fmt.Sprintf("\n  %s %s %q", e.Type, e.Path, e.Data)
	}
	return s
}

func has(evs []engine.CacheEvent, typ engine.CacheEventType, path string) bool {
	for _, e := range evs {
		if e.Type == typ && (path == "" || e.Path == path) {
			return true
		}
	}
	return false
}

func TestTreeCacheSeesChangesInOrder(t *testing.T) {
	p := env.Fresh(t)
	ctx := ctxT(t, 30*time.Second)
	s := p.Admin
	if err := s.Create(ctx, engine.DeploymentPath("pre"), "before"); err != nil {
		t.Fatal(err)
	}
	reader := p.Connect(t, engine.RoleAdmin)
	c := engine.NewTreeCache(reader, engine.PathDeployments)
	ch := c.Listen()
	go c.Run(ctx)
	evs := collect(t, ch, 10*time.Second, func(e []engine.CacheEvent) bool { return has(e, engine.CacheInitialized, "") })
	if !has(evs, engine.NodeAdded, engine.DeploymentPath("pre")) {
		t.Fatalf("initial snapshot misses the existing node: %s", describe(evs))
	}

	d := engine.DeploymentPath("d")
	steps := []struct {
		name string
		do   func() error
		want engine.CacheEventType
		path string
		data string
	}{
		{"create", func() error { return s.Create(ctx, d, "v1") }, engine.NodeAdded, d, "v1"},
		{"change", func() error { _, err := s.Set(ctx, d, "v2", engine.AnyVersion); return err }, engine.NodeUpdated, d, "v2"},
		{"child", func() error { return s.Create(ctx, engine.PlansPath("d"), "p") }, engine.NodeAdded, engine.PlansPath("d"), "p"},
		{"grandchild", func() error { return s.Create(ctx, engine.PendingPlanPath("d"), "x") }, engine.NodeAdded, engine.PendingPlanPath("d"), "x"},
		{"change again", func() error { _, err := s.Set(ctx, d, "v3", engine.AnyVersion); return err }, engine.NodeUpdated, d, "v3"},
		{"delete subtree", func() error { return s.DeleteTree(ctx, d) }, engine.NodeRemoved, d, ""},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		evs := collect(t, ch, 5*time.Second, func(e []engine.CacheEvent) bool {
			return len(e) > 0 && e[len(e)-1].Type == st.want && e[len(e)-1].Path == st.path
		})
		last := evs[len(evs)-1]
		if st.data != "" && string(last.Data) != st.data {
			t.Fatalf("%s: event data %q, want %q", st.name, last.Data, st.data)
		}
		if st.want == engine.NodeRemoved {
			// children are removed before their parent
			if !has(evs, engine.NodeRemoved, engine.PendingPlanPath("d")) {
				t.Fatalf("%s: children not reported removed before the parent: %s", st.name, describe(evs))
			}
		}
	}
	if _, ok := c.Get(d); ok {
		t.Fatal("deleted node still in the cache")
	}
	if got := c.Children(engine.PathDeployments); len(got) != 1 || got[0] != "pre" {
		t.Fatalf("children after delete = %v, want [pre]", got)
	}
}

func TestCacheAndEphemeralsSurviveSessionExpiry(t *testing.T) {
	p := env.Fresh(t)
	ctx := ctxT(t, 90*time.Second)
	part, err := zktest.NewPartition(env.Servers())
	if err != nil {
		t.Fatal(err)
	}
	defer part.Close()
	// The proxy role's store goes through the partition; session timeout 4s.
	victim := p.ConnectVia(t, part.Addr(), engine.RoleProxy)
	cache := engine.NewTreeCache(p.ConnectVia(t, part.Addr(), engine.RoleAdmin), engine.PathDeployments)
	ch := cache.Listen()
	go cache.Run(ctx)
	collect(t, ch, 10*time.Second, func(e []engine.CacheEvent) bool { return has(e, engine.CacheInitialized, "") })

	reg, err := victim.Register(ctx, engine.ProxyPath("p1"), engine.ProxyRecord{ID: "p1", State: "serving"})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	oldSession := victim.SessionID()

	// Partition: the server expires both sessions (4s) while we change
	// the tree from an unaffected client.
	part.Cut()
	admin := p.Admin
	if err := admin.Create(ctx, engine.DeploymentPath("during"), "x"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the server to expire the partitioned session", func() bool {
		ok, _, err := admin.Exists(ctx, engine.ProxyPath("p1"))
		return err == nil && !ok
	})
	part.Restore()

	waitUntil(t, 30*time.Second, "the registration to come back under a new session", func() bool {
		ok, st, err := admin.Exists(ctx, engine.ProxyPath("p1"))
		return err == nil && ok && st.EphemeralOwner != oldSession && st.EphemeralOwner == victim.SessionID()
	})
	evs := collect(t, ch, 30*time.Second, func(e []engine.CacheEvent) bool { return has(e, engine.CacheResynced, "") })
	if !has(evs, engine.NodeAdded, engine.DeploymentPath("during")) {
		t.Fatalf("rebuilt cache did not report the node created during the partition: %s", describe(evs))
	}
	if !has(evs, engine.ConnectionLost, "") {
		t.Fatalf("cache did not report the lost connection: %s", describe(evs))
	}
	// Watches work again after the rebuild.
	if err := admin.Create(ctx, engine.DeploymentPath("after"), "y"); err != nil {
		t.Fatal(err)
	}
	collect(t, ch, 10*time.Second, func(e []engine.CacheEvent) bool { return has(e, engine.NodeAdded, engine.DeploymentPath("after")) })
	if reg.Recreated() < 1 {
		t.Fatalf("registration reports %d re-creations, want ≥ 1", reg.Recreated())
	}
}

func TestCacheFollowsZooKeeperRestart(t *testing.T) {
	p := env.Fresh(t)
	ctx := ctxT(t, 90*time.Second)
	cache := engine.NewTreeCache(p.Connect(t, engine.RoleAdmin), engine.PathRoutes)
	ch := cache.Listen()
	go cache.Run(ctx)
	collect(t, ch, 10*time.Second, func(e []engine.CacheEvent) bool { return has(e, engine.CacheInitialized, "") })
	cons := p.Connect(t, engine.RoleConstructor)
	if err := cons.Create(ctx, engine.RoutePath("r1"), engine.Route{DeploymentID: "r1", State: engine.RouteLive}); err != nil {
		t.Fatal(err)
	}
	collect(t, ch, 10*time.Second, func(e []engine.CacheEvent) bool { return has(e, engine.NodeAdded, engine.RoutePath("r1")) })

	if err := env.Cluster.StopNode(1); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = env.Cluster.StartNode(1)
			_ = env.Cluster.WaitReady(context.Background())
		}
	})
	collect(t, ch, 15*time.Second, func(e []engine.CacheEvent) bool { return has(e, engine.ConnectionLost, "") })
	if stale, _ := cache.Stale(); !stale {
		t.Fatal("cache does not say it is stale while ZooKeeper is down")
	}
	if _, ok := cache.Get(engine.RoutePath("r1")); !ok {
		t.Fatal("cache dropped its content while ZooKeeper is down")
	}
	if err := env.Cluster.StartNode(1); err != nil {
		t.Fatal(err)
	}
	restarted = true
	if err := env.Cluster.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	collect(t, ch, 30*time.Second, func(e []engine.CacheEvent) bool { return has(e, engine.ConnectionRestored, "") })
	waitUntil(t, 30*time.Second, "the constructor store to reconnect", cons.Connected)
	if _, err := cons.Set(ctx, engine.RoutePath("r1"), engine.Route{DeploymentID: "r1", State: engine.RoutePaused}, engine.AnyVersion); err != nil {
		t.Fatal(err)
	}
	collect(t, ch, 15*time.Second, func(e []engine.CacheEvent) bool { return has(e, engine.NodeUpdated, engine.RoutePath("r1")) })
}

func TestRolesAreRefusedOutsideTheirRow(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	ctx := ctxT(t, 20*time.Second)
	proxy := p.Connect(t, engine.RoleProxy)
	cons := p.Connect(t, engine.RoleConstructor)
	cases := []struct {
		name string
		do   func() error
	}{
		{"proxy writes config", func() error { _, err := proxy.Set(ctx, engine.PathConfig, "{}", engine.AnyVersion); return err }},
		{"proxy creates a route", func() error { return proxy.Create(ctx, engine.RoutePath("x"), engine.Route{}) }},
		{"proxy reads deployments", func() error { _, err := proxy.Children(ctx, engine.PathDeployments); return err }},
		{"constructor writes zones", func() error { return cons.Create(ctx, engine.ZonePath("zone-9"), engine.Zone{}) }},
		{"constructor reads api keys", func() error { _, err := cons.Children(ctx, engine.PathAPIKeys); return err }},
		{"admin writes a route", func() error { return p.Admin.Create(ctx, engine.RoutePath("y"), engine.Route{}) }},
		{"admin creates the tokens parent", func() error { return p.Admin.Create(ctx, engine.PathTokens, nil) }},
		{"admin lists security", func() error { _, err := p.Admin.Children(ctx, engine.PathSecurity); return err }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.do(); !errors.Is(err, engine.ErrNoAuth) {
				t.Fatalf("got %v, want ErrNoAuth", err)
			}
		})
	}
	// And inside their rows they may.
	if err := cons.Create(ctx, engine.RoutePath("ok"), engine.Route{DeploymentID: "ok"}); err != nil {
		t.Fatalf("constructor creates a route: %v", err)
	}
	if _, err := proxy.Children(ctx, engine.PathRoutes); err != nil {
		t.Fatalf("proxy reads routes: %v", err)
	}
}

func TestAllocatorOwnsOnlyItsRecord(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	ctx := ctxT(t, 20*time.Second)
	ownA := engine.Credential{User: engine.OwnAllocatorUser("a"), Password: "pa"}
	ownB := engine.Credential{User: engine.OwnAllocatorUser("b"), Password: "pb"}
	a := p.ConnectAllocator(t, "a", ownA)
	b := p.ConnectAllocator(t, "b", ownB)
	for id, s := range map[string]*engine.Store{"a": a, "b": b} {
		own := ownA
		if id == "b" {
			own = ownB
		}
		if err := s.Create(ctx, engine.AllocatorPath(id), engine.Allocator{ID: id, Zone: "zone-1", Identity: own.DigestID()}); err != nil {
			t.Fatalf("allocator %s registers: %v", id, err)
		}
		if err := s.Create(ctx, engine.InstancesPath(id), nil); err != nil {
			t.Fatalf("allocator %s creates its instances parent: %v", id, err)
		}
	}
	if _, err := b.Set(ctx, engine.AllocatorPath("a"), engine.Allocator{ID: "a", Zone: "evil"}, engine.AnyVersion); !errors.Is(err, engine.ErrNoAuth) {
		t.Fatalf("allocator b overwrites a's record: got %v, want ErrNoAuth", err)
	}
	cons := p.Connect(t, engine.RoleConstructor)
	if err := cons.Create(ctx, engine.InstancePath("a", "i1"), engine.Instance{ID: "i1"}); err != nil {
		t.Fatalf("constructor assigns an instance to a: %v", err)
	}
	if _, _, err := a.Get(ctx, engine.InstancePath("a", "i1")); err != nil {
		t.Fatalf("allocator a reads its instance: %v", err)
	}
	if _, _, err := b.Get(ctx, engine.InstancePath("a", "i1")); !errors.Is(err, engine.ErrNoAuth) {
		t.Fatalf("allocator b reads a's instance: got %v, want ErrNoAuth", err)
	}
	if _, err := a.Set(ctx, engine.InstancePath("a", "i1"), engine.Instance{ID: "i1", SizeMB: 999999}, engine.AnyVersion); !errors.Is(err, engine.ErrNoAuth) {
		t.Fatalf("allocator a rewrites its own assignment: got %v, want ErrNoAuth", err)
	}
	if err := p.Admin.Create(ctx, engine.AllocatorMaintenancePath("a"), engine.Maintenance{On: true}); err != nil {
		t.Fatalf("admin sets maintenance: %v", err)
	}
	if _, err := a.Set(ctx, engine.AllocatorMaintenancePath("a"), engine.Maintenance{On: false}, engine.AnyVersion); !errors.Is(err, engine.ErrNoAuth) {
		t.Fatalf("allocator clears its own maintenance flag: got %v, want ErrNoAuth", err)
	}
}

func TestConnectUnreachableSaysWhatToDo(t *testing.T) {
	ctx := ctxT(t, 10*time.Second)
	_, err := engine.Connect(ctx, engine.Options{Servers: "127.0.0.1:1", ConnectTimeout: 500 * time.Millisecond})
	if !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	for _, want := range []string{"127.0.0.1:1", "zk.sh start"} {
		if !contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func contains(s, sub string) bool { return len(s) >= len(sub) && (s == sub || indexOf(s, sub) >= 0) }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
