package constructor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"paddock/agents/agentkit"
	"paddock/engine"
	"paddock/engine/placement"
)

// leader is the work of the elected constructor: the platform's state
// kept from watch events (world), plans dispatched as their pending
// znodes appear and run several at a time, route upkeep and
// rescheduling.
type leader struct {
	cfg Config
	s   *engine.Store
	log *slog.Logger
	m   *metrics
	st  *agentkit.Status
	// fence is this leader's election znode: every write is a Multi
	// that checks it still exists, so nothing a deposed leader still
	// has in flight can land after its successor took over.
	fence string

	allocs, deps *engine.TreeCache
	w            *world
	routes       *routeTable
	plans        *dispatcher

	mu       sync.Mutex
	platform engine.PlatformConfig
	wg       sync.WaitGroup

	resched *rescheduler
	// repl is the replication authority (replication.go).
	repl *replicator
	// inflight are the waiting steps running now (blocked-step alarm).
	inflight inflight
	// lastSweep is when routes and rescheduling last ran.
	lastSweep time.Time
	// routeSweeps counts the route sweeps (every fullRouteSweep-th looks
	// at every deployment).
	routeSweeps int
}

func newLeader(cfg Config, m *metrics, st *agentkit.Status, log *slog.Logger, fence string) *leader {
	seed := cfg.Seed
	if seed == 0 {
		seed = placement.PlatformSeed
	}
	l := &leader{cfg: cfg, s: cfg.Store, log: log, m: m, st: st, fence: fence,
		platform: engine.DefaultPlatformConfig(), resched: newRescheduler(), w: newWorld(seed)}
	l.w.identity = cfg.Store.KnowAllocatorIdentity
	l.routes = newRouteTable()
	l.plans = newDispatcher(l, cfg.MaxPlans)
	l.repl = newReplicator(l)
	return l
}

// Instance znodes are written by the leading constructor alone: read
// once when leading starts, then known from its own writes (a cache
// would read each one back, and re-list the allocator's instances).
func skipAllocatorZnode(p string) bool {
	return path.Base(p) == "instances" && path.Dir(path.Dir(p)) == engine.PathAllocators
}

func (l *leader) run(ctx context.Context) error {
	defer l.wg.Wait()
	l.allocs = engine.NewTreeCache(l.s, engine.PathAllocators, engine.CacheSkip(skipAllocatorZnode), engine.CacheLeaves(engine.LeafAllocatorZnode),
		engine.CacheContainers(engine.ContainerZnode))
	l.deps = engine.NewTreeCache(l.s, engine.PathDeployments, engine.CacheSkip(engine.PlanHistoryZnode), engine.CacheLeaves(engine.LeafDeploymentZnode),
		engine.CacheContainers(engine.ContainerZnode))
	aev, dev := l.allocs.Listen(), l.deps.Listen()
	aReady, dReady := make(chan struct{}), make(chan struct{})
	for _, c := range []*engine.TreeCache{l.allocs, l.deps} {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			_ = c.Run(ctx)
		}()
	}
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		l.consume(ctx, aev, aReady, func(ev engine.CacheEvent) { l.w.applyAllocators(ev) })
	}()
	go func() {
		defer l.wg.Done()
		l.consume(ctx, dev, dReady, func(ev engine.CacheEvent) {
			if id, run := l.w.applyDeployments(ev); run {
				l.plans.offer(id)
			}
		})
	}()
	for _, ready := range []chan struct{}{aReady, dReady} {
		select {
		case <-ctx.Done():
			return nil
		case <-ready:
		}
	}
	if err := l.routes.load(ctx, l.s); err != nil {
		return err
	}
	if err := l.loadInstances(ctx); err != nil {
		return err
	}
	l.readConfig(ctx)
	l.log.Info("constructor leader ready", "allocators", len(l.allocs.Children(engine.PathAllocators)),
		"deployments", len(l.deps.Children(engine.PathDeployments)), "routes", l.routes.len())
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		l.plans.run(ctx)
	}()
	go func() {
		defer l.wg.Done()
		l.repl.run(ctx)
	}()
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.runSnapshots(ctx)
	}()
	for _, id := range l.w.deploymentIDs() {
		if p, _, ok := l.w.pending(id); ok && (p.Status == engine.PlanPending || p.Status == engine.PlanRunning) {
			l.plans.offer(id)
		}
	}
	tick := time.NewTicker(l.cfg.Tick)
	defer tick.Stop()
	for {
		l.sweep(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// loadInstances reads every allocator's instance znodes, pipelined,
// retrying with backoff until ctx ends.
func (l *leader) loadInstances(ctx context.Context) error {
	type got struct {
		alloc, iid string
		in         engine.Instance
	}
	read := func() ([]got, error) {
		var out []got
		for _, a := range l.allocs.Children(engine.PathAllocators) {
			raw, err := l.s.ReadChildren(ctx, engine.InstancesPath(a))
			if err != nil {
				return nil, err
			}
			for iid, b := range raw {
				var in engine.Instance
				if json.Unmarshal(b, &in) != nil {
					continue // malformed: not counted (the allocator refuses it too)
				}
				out = append(out, got{a, iid, in})
			}
		}
		return out, nil
	}
	ins, err := backoff.Retry(ctx, read, backoff.WithBackOff(backoff.NewExponentialBackOff()), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return fmt.Errorf("read the instance assignments: %w", err)
	}
	for _, in := range ins {
		l.w.instanceWritten(in.alloc, in.iid, &in.in)
	}
	return nil
}

// consume applies a cache's events to the world; ready is closed once
// the first full load is applied.
func (l *leader) consume(ctx context.Context, evs <-chan engine.CacheEvent, ready chan struct{}, apply func(engine.CacheEvent)) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-evs:
			switch ev.Type {
			case engine.NodeAdded, engine.NodeUpdated, engine.NodeRemoved:
				apply(ev)
			case engine.CacheInitialized:
				close(ready)
			}
		}
	}
}

// sweep runs the periodic work: the platform config, routes of
// deployments without a plan, rescheduling. It counts itself
// (paddock_constructor_sweeps_total): tests wait for sweeps, not time.
func (l *leader) sweep(ctx context.Context) {
	l.lastSweep = time.Now()
	l.readConfig(ctx)
	l.syncRoutes(ctx)
	l.reschedule(ctx)
	l.checkBlocked(time.Now())
	l.m.sweeps.Inc()
}

func (l *leader) readConfig(ctx context.Context) {
	cfg, _, err := l.s.Platform(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("read platform config", "err", err)
		}
		return
	}
	l.mu.Lock()
	l.platform = cfg
	l.mu.Unlock()
}

// config returns the live platform config (read every sweep).
func (l *leader) config() engine.PlatformConfig {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.platform
}

// fenced prefixes ops with the check of this leader's election znode.
func (l *leader) fenced(ops ...engine.Op) []engine.Op {
	return append([]engine.Op{engine.OpCheck(l.fence, engine.AnyVersion)}, ops...)
}

// status returns an instance's observed state.
func (l *leader) status(alloc, iid string) (engine.InstanceStatus, bool) {
	return l.w.status(alloc, iid)
}

// alive reports whether an allocator's alive node exists.
func (l *leader) alive(alloc string) bool { return l.w.alive(alloc) }

// busy reports whether an executor runs for the deployment.
func (l *leader) busy(id string) bool { return l.plans.busy(id) }

// dispatcher starts an executor per deployment whose pending plan asks
// for it, up to max at a time, first come first served; a deployment
// never has two.
type dispatcher struct {
	l   *leader
	max int

	mu      sync.Mutex
	queue   []string
	queued  map[string]bool
	running map[string]bool
	// finished remembers the plan an executor just finished, until the
	// cache shows it gone (not run twice).
	finished map[string]string
	wake     chan struct{}
}

func newDispatcher(l *leader, max int) *dispatcher {
	return &dispatcher{l: l, max: max, queued: map[string]bool{}, running: map[string]bool{}, finished: map[string]string{},
		wake: make(chan struct{}, 1)}
}

func (d *dispatcher) offer(id string) {
	d.mu.Lock()
	if !d.queued[id] {
		d.queued[id] = true
		d.queue = append(d.queue, id)
	}
	d.mu.Unlock()
	d.poke()
}

func (d *dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) busy(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running[id]
}

func (d *dispatcher) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
		for {
			id, ok := d.next()
			if !ok {
				break
			}
			wg.Add(1)
			d.l.m.running.Inc()
			go func() {
				defer wg.Done()
				defer d.l.m.running.Dec()
				planID := d.l.execute(ctx, id)
				d.mu.Lock()
				delete(d.running, id)
				if planID != "" {
					d.finished[id] = planID
				}
				d.mu.Unlock()
				// A plan written while this one finished runs next.
				d.offer(id)
			}()
		}
	}
}

// next pops a deployment whose plan should run now.
func (d *dispatcher) next() (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.queue) > 0 && len(d.running) < d.max {
		id := d.queue[0]
		d.queue = d.queue[1:]
		delete(d.queued, id)
		if d.running[id] {
			continue // offered again when it ends
		}
		p, _, ok := d.l.w.pending(id)
		if !ok {
			delete(d.finished, id)
			continue
		}
		if p.ID == d.finished[id] || (p.Status != engine.PlanPending && p.Status != engine.PlanRunning) {
			continue
		}
		delete(d.finished, id)
		d.running[id] = true
		return id, true
	}
	return "", false
}

// address of a healthy instance (running, healthy, its allocator
// alive), or "".
func (l *leader) address(in engine.PlacedInstance) string {
	st, ok := l.status(in.Allocator, in.ID)
	if !ok || !st.Healthy || st.State != engine.StateRunning || !l.alive(in.Allocator) {
		return ""
	}
	return st.Address
}

// nodeAddr is where the NodeAPI calls a healthy instance (the address()
// rules): its allocator's node tunnel when this constructor has a node
// certificate and the allocator runs one, else its Address. "" when not
// healthy.
func (l *leader) nodeAddr(in engine.PlacedInstance) string {
	a := l.address(in)
	if a == "" || l.cfg.NodeLoader == nil {
		return a
	}
	if st, _ := l.status(in.Allocator, in.ID); st.TunnelAddr != "" {
		return TunnelTarget(st.TunnelAddr, in.ID)
	}
	return a
}
