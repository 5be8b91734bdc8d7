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
}

func newLeader(cfg Config, m *metrics, st *agentkit.Status, log *slog.Logger) *leader {
	return &leader{cfg: cfg, s: cfg.Store, log: log, m: m, st: st, running: map[string]bool{},
		platform: engine.DefaultPlatformConfig(), resched: newRescheduler()}
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
		select {
		case <-ctx.Done():
			return nil
		case <-ach:
		case <-dch:
		case <-tick.C:
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
	if cfg, _, err := l.s.Platform(ctx); err == nil {
		l.mu.Lock()
		l.platform = cfg
		l.mu.Unlock()
	} else if ctx.Err() == nil {
		l.log.Warn("read platform config", "err", err)
	}
	for _, id := range l.deps.Children(engine.PathDeployments) {
		n, ok := l.deps.Get(engine.PendingPlanPath(id))
		if !ok {
			continue
		}
		var p engine.Plan
		if json.Unmarshal(n.Data, &p) != nil || (p.Status != engine.PlanPending && p.Status != engine.PlanRunning) {
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
	l.syncRoutes(ctx)
	l.reschedule(ctx)
}

// busy reports whether an executor runs for the deployment.
func (l *leader) busy(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running[id]
}

// deployment reads a deployment from the cache.
func (l *leader) cachedDeployment(id string) (engine.Deployment, bool) {
	var d engine.Deployment
	n, ok := l.deps.Get(engine.DeploymentPath(id))
	if !ok || json.Unmarshal(n.Data, &d) != nil {
		return d, false
	}
	return d, true
}

// status returns an instance's observed state from the cache.
func (l *leader) status(alloc, iid string) (engine.InstanceStatus, bool) {
	var st engine.InstanceStatus
	n, ok := l.allocs.Get(engine.StatusPath(alloc, iid))
	if !ok || json.Unmarshal(n.Data, &st) != nil {
		return st, false
	}
	return st, true
}

// alive reports whether an allocator's alive node exists (cache).
func (l *leader) alive(alloc string) bool {
	_, ok := l.allocs.Get(engine.AllocatorAlivePath(alloc))
	return ok
}
