package proxy

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/testenv"
	"paddock/engine/zktest"
)

var env *zktest.Env

func TestMain(m *testing.M) { os.Exit(zktest.Main(m, 1, &env)) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func putRoute(t *testing.T, s *engine.Store, r engine.Route) {
	t.Helper()
	r.UpdatedAt = time.Now().UTC()
	if err := s.Put(ctxT(t), engine.RoutePath(r.DeploymentID), r); err != nil {
		t.Fatalf("write route %s: %v", r.DeploymentID, err)
	}
}

// proxyConnect connects as the proxy role of plat, as a proxy's
// Config.Connect does.
func proxyConnect(plat *zktest.Platform) func(ctx context.Context) (*engine.Store, error) {
	return func(ctx context.Context) (*engine.Store, error) {
		return engine.Connect(ctx, engine.Options{Servers: env.Servers(), Role: engine.RoleProxy, Credential: plat.Creds[engine.RoleProxy],
			SessionTimeout: 4 * time.Second, ConnectTimeout: 2 * time.Second, Logger: quietLogger()})
	}
}

// stopZooKeeper stops the test ensemble; restart (also run at cleanup,
// once) starts it again and waits until it serves.
func stopZooKeeper(t *testing.T) (restart func()) {
	t.Helper()
	if err := env.Cluster.StopNode(1); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	restart = func() {
		once.Do(func() {
			if err := env.Cluster.StartNode(1); err != nil {
				t.Errorf("restart ZooKeeper: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := env.Cluster.WaitReady(ctx); err != nil {
				t.Errorf("ZooKeeper after restart: %v", err)
			}
		})
	}
	t.Cleanup(restart)
	return restart
}

func routedTo(t testing.TB, p *Proxy, host, backend string) func() bool {
	c := newClient()
	return func() bool {
		a, err := get(t, c, p.HTTPAddr(), host, "/", nil)
		return err == nil && a.code == 200 && a.backend == backend
	}
}

func TestRoutesFromZooKeeperTwoProxies(t *testing.T) {
	plat := env.Fresh(t, "zone-1", "zone-2")
	cons := plat.Connect(t, engine.RoleConstructor)
	b1 := newTestBackend(t, "b1")
	b2 := newTestBackend(t, "b2")
	var proxies []*Proxy
	for _, id := range []string{"p1", "p2"} {
		proxies = append(proxies, startProxy(t, func(c *Config) {
			c.ID = id
			c.Store = plat.Connect(t, engine.RoleProxy)
			c.CacheFile = filepath.Join(t.TempDir(), "routes.json")
			c.RegisterInterval = 200 * time.Millisecond
		}))
	}
	host := testID + ".localhost"
	putRoute(t, cons, liveRoute(testID, 1, esBackend("i1", "zone-1", "a1", b1.addr())))
	for _, p := range proxies {
		waitFor(t, 10*time.Second, "proxy "+p.cfg.ID+" to route the new deployment", routedTo(t, p, host, "b1"))
	}
	// A change applies to both, within the deadline.
	putRoute(t, cons, liveRoute(testID, 2, esBackend("i2", "zone-2", "a2", b2.addr())))
	for _, p := range proxies {
		waitFor(t, 10*time.Second, "proxy "+p.cfg.ID+" to follow the switch", routedTo(t, p, host, "b2"))
	}
	// Registrations, readable by admins.
	waitFor(t, 10*time.Second, "both proxies registered", func() bool {
		kids, err := plat.Admin.Children(ctxT(t), engine.PathProxies)
		return err == nil && len(kids) == 2
	})
	for _, p := range proxies {
		var rec engine.ProxyRecord
		waitFor(t, 10*time.Second, "registration of "+p.cfg.ID+" with its route count", func() bool {
			_, err := plat.Admin.GetJSON(ctxT(t), engine.ProxyPath(p.cfg.ID), &rec)
			return err == nil && rec.Routes == 1
		})
		if rec.HTTPAddr != p.HTTPAddr() || rec.State != "serving" {
			t.Fatalf("registration %+v, want address %s and state serving", rec, p.HTTPAddr())
		}
	}
	// Removal: 404 everywhere.
	if err := cons.Delete(ctxT(t), engine.RoutePath(testID), engine.AnyVersion); err != nil {
		t.Fatal(err)
	}
	for _, p := range proxies {
		c := newClient()
		waitFor(t, 10*time.Second, "proxy "+p.cfg.ID+" to forget the deployment", func() bool {
			a, err := get(t, c, p.HTTPAddr(), host, "/", nil)
			return err == nil && a.code == http.StatusNotFound
		})
	}
	// The disk cache follows.
	waitFor(t, 10*time.Second, "disk cache rewritten without the route", func() bool {
		s, err := loadSnapshot(proxies[0].cfg.CacheFile)
		return err == nil && s.Source == "zookeeper" && len(s.Routes) == 0
	})
}

// TestZooKeeperOutage stops ZooKeeper for 60 s (5 s with -short) under a
// steady stream of requests: every request succeeds; a second proxy
// started during the outage serves from the disk cache; when ZooKeeper
// returns the caches follow changes again.
func TestZooKeeperOutage(t *testing.T) {
	plat := env.Fresh(t, "zone-1")
	cons := plat.Connect(t, engine.RoleConstructor)
	b1 := newTestBackend(t, "b1")
	b2 := newTestBackend(t, "b2")
	cache := filepath.Join(t.TempDir(), "routes.json")
	connect := proxyConnect(plat)
	host := testID + ".localhost"
	putRoute(t, cons, liveRoute(testID, 1, esBackend("i1", "zone-1", "a1", b1.addr())))
	p1ctx, stopP1 := context.WithCancel(context.Background())
	p1 := startProxy(t, func(c *Config) { c.ID = "p1"; c.Connect = connect; c.CacheFile = cache })
	waitFor(t, 15*time.Second, "p1 routing from ZooKeeper", routedTo(t, p1, host, "b1"))
	waitFor(t, 10*time.Second, "p1's disk cache", func() bool {
		s, err := loadSnapshot(cache)
		return err == nil && len(s.Routes) == 1
	})
	// Stop p1 on demand (startProxy's cleanup stops it at the end anyway).
	go func() { <-p1ctx.Done() }()

	var mu sync.Mutex
	target := p1.HTTPAddr()
	addr := func() string { mu.Lock(); defer mu.Unlock(); return target }
	l := startLoad(t, 4, addr, host)

	outage := 60 * time.Second
	if testing.Short() {
		outage = 5 * time.Second
	}
	restart := stopZooKeeper(t)
	down := time.Now()
	waitFor(t, 15*time.Second, "p1 to notice the outage", func() bool { return p1.cacheAge() > 0 })

	// A proxy (re)started in the middle of the outage serves from disk.
	time.Sleep(outage / 2)
	p2 := startProxy(t, func(c *Config) { c.ID = "p2"; c.Connect = connect; c.CacheFile = cache })
	if p2.Source() != "disk" {
		t.Fatalf("proxy started during the outage: table source %q, want disk", p2.Source())
	}
	if a, err := get(t, newClient(), p2.HTTPAddr(), host, "/", nil); err != nil || a.code != 200 || a.backend != "b1" {
		t.Fatalf("proxy started during the outage: %d from %q %v", a.code, a.backend, err)
	}
	mu.Lock()
	target = p2.HTTPAddr()
	mu.Unlock()
	stopP1()
	if rest := outage - time.Since(down); rest > 0 {
		time.Sleep(rest)
	}
	before := l.ok.Load()
	restart()
	// p2 connects, loads the tree, and follows a change.
	waitFor(t, 30*time.Second, "p2 to take its table from ZooKeeper", func() bool { return p2.Source() == "zookeeper" })
	// The constructor's session reconnects on its own time: retry the
	// write until it goes through rather than racing the reconnection.
	r2 := liveRoute(testID, 2, esBackend("i2", "zone-1", "a1", b2.addr()))
	waitFor(t, 30*time.Second, "the route write after the outage", func() bool {
		r2.UpdatedAt = time.Now().UTC()
		return cons.Put(ctxT(t), engine.RoutePath(r2.DeploymentID), r2) == nil
	})
	waitFor(t, 15*time.Second, "p2 to follow a change after the outage", func() bool { return l.count("b2") > 0 })
	waitFor(t, 15*time.Second, "p1 to resync too", routedTo(t, p1, host, "b2"))
	l.finish(t)
	t.Logf("%d requests during a %s outage, %d after, none failed", before, outage, l.ok.Load()-before)
}

// TestZoneDown takes a zone's allocator down (its alive node goes) while
// its node still answers: the proxy stops sending there. Then the node
// stops too. The client sees no error throughout.
func TestZoneDown(t *testing.T) {
	plat := env.Fresh(t, "zone-1", "zone-2")
	cons := plat.Connect(t, engine.RoleConstructor)
	allocs := map[string]*engine.Store{}
	for _, a := range []struct{ id, zone string }{{"a1", "zone-1"}, {"a2", "zone-2"}} {
		own := engine.Credential{User: engine.OwnAllocatorUser(a.id), Password: engine.RandomToken(8)}
		s := plat.ConnectAllocator(t, a.id, own)
		if err := s.Create(ctxT(t), engine.AllocatorPath(a.id), engine.Allocator{ID: a.id, Zone: a.zone, Identity: own.DigestID()}); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateEphemeral(ctxT(t), engine.AllocatorAlivePath(a.id), engine.AllocatorAlive{UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		allocs[a.id] = s
	}
	z1 := newTestBackend(t, "z1")
	z2 := newTestBackend(t, "z2")
	p := startProxy(t, func(c *Config) { c.Store = plat.Connect(t, engine.RoleProxy) })
	putRoute(t, cons, liveRoute(testID, 1, esBackend("i1", "zone-1", "a1", z1.addr()), esBackend("i2", "zone-2", "a2", z2.addr())))
	c := newClient()
	waitFor(t, 15*time.Second, "the route applied", func() bool {
		a, err := get(t, c, p.HTTPAddr(), testID+".localhost", "/", nil)
		return err == nil && a.code == 200
	})
	l := startLoad(t, 4, p.HTTPAddr, testID+".localhost")
	waitFor(t, 15*time.Second, "traffic in both zones", func() bool { return l.count("z1") > 20 && l.count("z2") > 20 })

	allocs["a2"].Close() // the allocator stops: its alive node goes at once
	waitFor(t, 15*time.Second, "the proxy to mark zone-2 down", func() bool { return p.tbl.Load().zonesDown["zone-2"] })
	hits := z2.hits.Load()
	waitFor(t, 15*time.Second, "traffic on zone-1 only", func() bool { return l.count("z1") > 200 })
	if got := z2.hits.Load(); got != hits {
		t.Fatalf("zone-2 is down but got %d more requests", got-hits)
	}
	z2.close() // and its nodes stop
	n := l.count("z1")
	waitFor(t, 15*time.Second, "more traffic", func() bool { return l.count("z1") > n+100 })
	l.finish(t)
}

func TestCacheFileIsAtomicAndReadable(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "sub", "routes.json")
	if _, err := loadSnapshot(f); err != errNoCache {
		t.Fatalf("missing cache: %v, want errNoCache", err)
	}
	want := Snapshot{Routes: map[string]engine.Route{testID: liveRoute(testID, 3)}, Allocators: map[string]AllocatorView{"a": {Zone: "z", Alive: true}}, Source: "zookeeper"}
	if err := saveSnapshot(f, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadSnapshot(f)
	if err != nil || got.Routes[testID].Generation != 3 || !got.Allocators["a"].Alive {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(f))
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	if err := os.WriteFile(f, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadSnapshot(f); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("corrupt cache: %v, want an error telling what to do", err)
	}
}

// BenchmarkRoutePropagation measures the time from a route write (as the
// constructor does it) to the proxy's table holding it: the "within
// milliseconds" of the issue. go test -bench RoutePropagation.
func BenchmarkRoutePropagation(b *testing.B) {
	plat := env.Fresh(b, "zone-1")
	cons := plat.Connect(b, engine.RoleConstructor)
	cfg := Config{HTTPAddr: "127.0.0.1:0", Logger: quietLogger(), Store: plat.Connect(b, engine.RoleProxy)}
	p, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	bg := context.Background()
	r := liveRoute(testID, 0, esBackend("i1", "zone-1", "a1", "127.0.0.1:9"))
	var afterWrite time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		r.Generation = int64(i + 1)
		if err := cons.Put(bg, engine.RoutePath(testID), r); err != nil {
			b.Fatal(err)
		}
		written := time.Now()
		n++
		if _, ok := testenv.WaitEvery(10*time.Second, 50*time.Microsecond, func() (bool, string) {
			rt := p.tbl.Load().routes[testID]
			return rt != nil && rt.gen == r.Generation, ""
		}); !ok {
			b.Fatalf("generation %d not applied within 10s", r.Generation)
		}
		afterWrite += time.Since(written)
	}
	b.ReportMetric(float64(afterWrite.Microseconds())/float64(n), "us-after-write/op")
}

// TestSwitchThroughZooKeeper: the constructor's pause → switch → resume,
// written to ZooKeeper under a steady load: no request fails, the old
// backend gets nothing after the switch and its connections close.
func TestSwitchThroughZooKeeper(t *testing.T) {
	plat := env.Fresh(t, "zone-1")
	cons := plat.Connect(t, engine.RoleConstructor)
	oldB := newTestBackend(t, "old")
	newB := newTestBackend(t, "new")
	p := startProxy(t, func(c *Config) { c.Store = plat.Connect(t, engine.RoleProxy) })
	host := testID + ".localhost"
	r := liveRoute(testID, 1, esBackend("i-old", "zone-1", "a1", oldB.addr()))
	putRoute(t, cons, r)
	waitFor(t, 10*time.Second, "the route applied", routedTo(t, p, host, "old"))
	l := startLoad(t, 8, p.HTTPAddr, host)
	waitFor(t, 10*time.Second, "load on the old backend", func() bool { return l.count("old") > 100 })
	r.State = engine.RoutePaused
	putRoute(t, cons, r)
	waitFor(t, 10*time.Second, "requests held", func() bool { return testutilGauge(p.met.held) > 0 })
	r.Backends = []engine.Backend{esBackend("i-new", "zone-1", "a1", newB.addr())}
	r.Generation = 2
	putRoute(t, cons, r)
	r.State = engine.RouteLive
	putRoute(t, cons, r)
	waitFor(t, 10*time.Second, "the new route live", func() bool {
		rt := p.tbl.Load().routes[testID]
		return rt != nil && !rt.paused && rt.gen == 2
	})
	hitsOld := oldB.hits.Load()
	waitFor(t, 10*time.Second, "load on the new backend", func() bool { return l.count("new") > 100 })
	l.finish(t)
	if got := oldB.hits.Load(); got != hitsOld {
		t.Fatalf("old backend got %d requests after the switch", got-hitsOld)
	}
	waitFor(t, 10*time.Second, "old backend connections drained", func() bool { return oldB.active.Load() == 0 })
}

// TestFollowsPlatformDomain: a proxy without --domain routes under the
// platform's domain and keeps it in its disk cache.
func TestFollowsPlatformDomain(t *testing.T) {
	plat := env.Fresh(t, "zone-1")
	var cfg engine.PlatformConfig
	if _, err := plat.Admin.GetJSON(ctxT(t), engine.PathConfig, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Domain = "search.example.test"
	if err := plat.Admin.Put(ctxT(t), engine.PathConfig, cfg); err != nil {
		t.Fatal(err)
	}
	b1 := newTestBackend(t, "b1")
	putRoute(t, plat.Connect(t, engine.RoleConstructor), liveRoute(testID, 1, esBackend("i1", "zone-1", "a1", b1.addr())))
	cache := filepath.Join(t.TempDir(), "routes.json")
	p := startProxy(t, func(c *Config) { c.Store = plat.Connect(t, engine.RoleProxy); c.CacheFile = cache })
	waitFor(t, 10*time.Second, "routing under the platform's domain", routedTo(t, p, testID+".search.example.test", "b1"))
	waitFor(t, 10*time.Second, "the domain in the disk cache", func() bool {
		s, err := loadSnapshot(cache)
		return err == nil && s.Domain == "search.example.test" && len(s.Routes) == 1
	})
	// A proxy started from that cache alone knows the domain.
	p2 := startProxy(t, func(c *Config) { c.CacheFile = cache })
	if p2.Domain() != "search.example.test" {
		t.Fatalf("proxy from the disk cache routes under %q", p2.Domain())
	}
}
