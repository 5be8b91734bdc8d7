package constructor

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"paddock/agents/agentkit"
	"paddock/engine"
)

// leader is the work of the elected constructor: caches of allocators,
// deployments and routes, one executor per deployment with a plan, route
// upkeep and rescheduling.
type leader struct {
	cfg Config
	s   *engine.Store
	log *slog.Logger
	m   *metrics
	st  *agentkit.Status

	allocs, deps, routes *engine.TreeCache

	// placeMu serialises placement decisions with the writes of their
	// instance znodes, so concurrent plans see each other's capacity.
	placeMu sync.Mutex

	mu       sync.Mutex
	running  map[string]bool
	platform engine.PlatformConfig
	wg       sync.WaitGroup

	resched *rescheduler

	// memo keeps decoded znodes by path and modification zxid: reconcile
	// runs on every change and would otherwise decode every deployment,
	// route and status each time.
	memoMu sync.Mutex
	memo   map[string]memoEntry
	// placed holds the instances this leader wrote that the cache may
	// not show yet (by znode path), so placements need not wait for the
	// cache between each other. Guarded by placeMu.
	placed map[string]placedEntry
	// lastSweep is when routes and rescheduling last ran (they run at
	// most every Tick/2, plan dispatch on every change).
	lastSweep time.Time
}

type placedEntry struct {
	alloc string
	in    engine.Instance
	at    time.Time
}

type memoEntry struct {
	mzxid int64
	v     any
}

// cached decodes the cached znode at p into a T, reusing the previous
// decoding while the znode is unchanged.
func cached[T any](l *leader, c *engine.TreeCache, p string) (T, bool) {
	var zero T
	n, ok := c.Get(p)
	if !ok {
		return zero, false
	}
	l.memoMu.Lock()
	e, hit := l.memo[p]
	l.memoMu.Unlock()
	if hit && e.mzxid == n.Stat.Mzxid {
		v, ok := e.v.(T)
		return v, ok
	}
	var v T
	if json.Unmarshal(n.Data, &v) != nil {
		return zero, false
	}
	l.memoMu.Lock()
	if len(l.memo) > 200000 {
		l.memo = map[string]memoEntry{} // drop entries of deleted znodes
	}
	l.memo[p] = memoEntry{mzxid: n.Stat.Mzxid, v: v}
	l.memoMu.Unlock()
	return v, true
}

func newLeader(cfg Config, m *metrics, st *agentkit.Status, log *slog.Logger) *leader {
	return &leader{cfg: cfg, s: cfg.Store, log: log, m: m, st: st, running: map[string]bool{},
		platform: engine.DefaultPlatformConfig(), resched: newRescheduler(), memo: map[string]memoEntry{}, placed: map[string]placedEntry{}}
}

func (l *leader) run(ctx context.Context) error {
	defer l.wg.Wait()
	l.allocs = engine.NewTreeCache(l.s, engine.PathAllocators)
	l.deps = engine.NewTreeCache(l.s, engine.PathDeployments)
	l.routes = engine.NewTreeCache(l.s, engine.PathRoutes)
	ach, dch := l.allocs.Changed(), l.deps.Changed()
	for _, c := range []*engine.TreeCache{l.allocs, l.deps, l.routes} {
		c := c
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			_ = c.Run(ctx)
		}()
	}
	for _, c := range []*engine.TreeCache{l.allocs, l.deps, l.routes} {
		select {
		case <-ctx.Done():
			return nil
		case <-c.Ready():
		}
	}
	l.log.Info("constructor leader ready", "allocators", len(l.allocs.Children(engine.PathAllocators)),
		"deployments", len(l.deps.Children(engine.PathDeployments)))
	tick := time.NewTicker(l.cfg.Tick)
	defer tick.Stop()
	for {
		l.reconcile(ctx)
		if time.Since(l.lastSweep) >= l.cfg.Tick/2 {
			l.lastSweep = time.Now()
			l.syncRoutes(ctx)
			l.reschedule(ctx)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ach:
		case <-dch:
		case <-tick.C:
		}
		// Coalesce bursts of changes (a plan's steps, an allocator's
		// statuses) into one reconcile.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// config returns the live platform config (read each reconcile).
func (l *leader) config() engine.PlatformConfig {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.platform
}

func (l *leader) reconcile(ctx context.Context) {
	if time.Since(l.lastSweep) >= l.cfg.Tick/2 {
		if cfg, _, err := l.s.Platform(ctx); err == nil {
			l.mu.Lock()
			l.platform = cfg
			l.mu.Unlock()
		} else if ctx.Err() == nil {
			l.log.Warn("read platform config", "err", err)
		}
	}
	for _, id := range l.deps.Children(engine.PathDeployments) {
		p, ok := cached[engine.Plan](l, l.deps, engine.PendingPlanPath(id))
		if !ok || (p.Status != engine.PlanPending && p.Status != engine.PlanRunning) {
			continue
		}
		l.mu.Lock()
		busy := l.running[id]
		if !busy {
			l.running[id] = true
		}
		l.mu.Unlock()
		if busy {
			continue
		}
		l.wg.Add(1)
		l.m.running.Inc()
		go func(id string) {
			defer l.wg.Done()
			defer l.m.running.Dec()
			defer func() {
				l.mu.Lock()
				delete(l.running, id)
				l.mu.Unlock()
			}()
			l.execute(ctx, id)
		}(id)
	}
}

// busy reports whether an executor runs for the deployment.
func (l *leader) busy(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running[id]
}

// deployment reads a deployment from the cache.
func (l *leader) cachedDeployment(id string) (engine.Deployment, bool) {
	return cached[engine.Deployment](l, l.deps, engine.DeploymentPath(id))
}

// status returns an instance's observed state from the cache.
func (l *leader) status(alloc, iid string) (engine.InstanceStatus, bool) {
	return cached[engine.InstanceStatus](l, l.allocs, engine.StatusPath(alloc, iid))
}

// alive reports whether an allocator's alive node exists (cache).
func (l *leader) alive(alloc string) bool {
	_, ok := l.allocs.Get(engine.AllocatorAlivePath(alloc))
	return ok
}

// inventory is the allocators' state from the cache, for placement
// (desired instances, no observed states), decoded through the memo,
// plus the instances written but not yet in the cache. Call with placeMu.
func (l *leader) inventory() []engine.InventoryAllocator {
	extra := map[string][]engine.Instance{}
	for p, e := range l.placed {
		if _, ok := l.allocs.Get(p); ok {
			delete(l.placed, p) // the cache has caught up
			continue
		}
		extra[e.alloc] = append(extra[e.alloc], e.in)
	}
	ids := l.allocs.Children(engine.PathAllocators)
	out := make([]engine.InventoryAllocator, 0, len(ids))
	for _, id := range ids {
		rec, ok := cached[engine.Allocator](l, l.allocs, engine.AllocatorPath(id))
		if !ok {
			continue
		}
		if rec.ID == "" {
			rec.ID = id
		}
		a := engine.InventoryAllocator{Allocator: rec}
		if alive, ok := cached[engine.AllocatorAlive](l, l.allocs, engine.AllocatorAlivePath(id)); ok {
			a.Alive = &alive
		}
		if m, ok := cached[engine.Maintenance](l, l.allocs, engine.AllocatorMaintenancePath(id)); ok {
			a.Maintenance = m.On
		}
		if st, ok := cached[engine.AllocatorSettings](l, l.allocs, engine.AllocatorSettingsPath(id)); ok {
			a.Settings = st
		}
		for _, iid := range l.allocs.Children(engine.InstancesPath(id)) {
			if in, ok := cached[engine.Instance](l, l.allocs, engine.InstancePath(id, iid)); ok {
				a.Instances = append(a.Instances, in)
			}
		}
		a.Instances = append(a.Instances, extra[id]...)
		out = append(out, a)
	}
	return out
}
