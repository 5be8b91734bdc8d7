package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"time"

	"github.com/go-zookeeper/zk"
	"github.com/prometheus/client_golang/prometheus"

	"paddock/engine"
)

// control connects to ZooKeeper (retrying while it is down: the table of
// the disk cache keeps serving) and runs the sources and the
// registration until ctx ends.
func (p *Proxy) control(ctx context.Context) {
	s := p.cfg.Store
	if s == nil {
		if p.cfg.Connect == nil {
			p.cfg.Status.Set("zookeeper", "no ZooKeeper configured: serving the disk cache only")
			<-ctx.Done()
			return
		}
		backoff := 500 * time.Millisecond
		for s == nil {
			var err error
			s, err = p.cfg.Connect(ctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			p.cfg.Status.Set("zookeeper", "cannot connect, serving the cached table: "+err.Error())
			p.log.Warn("cannot connect to ZooKeeper; serving the cached routing table and retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 10*time.Second)
		}
		defer s.Close()
	}
	p.store.Store(s)
	if p.cfg.Domain == "" {
		p.followDomain(ctx, s)
	}
	var wg sync.WaitGroup
	for _, f := range []func(context.Context, *engine.Store){p.watchTables, p.watchAllocators, p.register, p.watchSession} {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx, s) }()
	}
	wg.Wait()
}

// followDomain reads the platform's domain (retrying while ZooKeeper
// is away); the disk cache keeps it for restarts during outages.
func (p *Proxy) followDomain(ctx context.Context, s *engine.Store) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		cfg, _, err := s.Platform(cctx)
		cancel()
		if err == nil {
			if cfg.Domain != "" && cfg.Domain != p.Domain() {
				p.setDomain(cfg.Domain)
				p.log.Info("routing under the platform's domain", "domain", p.Domain())
			}
			p.mu.Lock()
			p.snap.Domain = p.Domain()
			p.mu.Unlock()
			return
		}
		p.log.Warn("cannot read the platform's domain; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// watchSession tracks the ZooKeeper connection for /healthz and metrics.
func (p *Proxy) watchSession(ctx context.Context, s *engine.Store) {
	ch, cancel := s.Subscribe()
	defer cancel()
	was := -1
	for {
		up := 0
		if s.Connected() {
			up = 1
		}
		if up != was {
			was = up
			p.met.zk.Set(float64(up))
			if up == 1 {
				p.zkDownSince.Store(0)
				p.cfg.Status.Set("zookeeper", "")
				p.log.Info("ZooKeeper connected")
			} else {
				p.zkDownSince.Store(time.Now().UnixNano())
				p.cfg.Status.Set("zookeeper", "disconnected: routing from the cached table")
				p.log.Warn("ZooKeeper connection lost: routing from the cached table until it returns")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// watchTables applies /paddock/routes and /paddock/trafficfilters from
// two TreeCaches: each batch of changes becomes one new table version.
// Neither replaces the disk table until both have loaded, so a proxy
// never serves ZooKeeper's routes without their filters.
func (p *Proxy) watchTables(ctx context.Context, s *engine.Store) {
	rc := engine.NewTreeCache(s, engine.PathRoutes)
	fc := engine.NewTreeCache(s, engine.PathTrafficFilters)
	rch, fch := rc.Changed(), fc.Changed()
	var wg sync.WaitGroup
	for _, tc := range []*engine.TreeCache{rc, fc} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = tc.Run(ctx) }()
	}
	defer wg.Wait()
	routes := newTreeReader(engine.PathRoutes, func(id string, r *engine.Route) { r.DeploymentID = id }, p.log)
	filters := newTreeReader(engine.PathTrafficFilters, func(id string, r *engine.TrafficFilterRuleSet) { r.ID = id }, p.log)
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-rch:
		case <-fch:
		}
		if !isClosed(rc.Ready()) || !isClosed(fc.Ready()) {
			continue // keep the disk table until the first full load
		}
		rs, rsame := routes.read(rc)
		fs, fsame := filters.read(fc)
		if rsame && fsame && !first {
			continue
		}
		first = false
		p.mu.Lock()
		p.snap.Routes, p.snap.Filters = rs, fs
		p.snap.Source = "zookeeper"
		p.installLocked()
		p.mu.Unlock()
		p.requestSave()
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// treeReader decodes the children of a cached znode, keeping what it
// decoded by mzxid so that unchanged children are not decoded again.
type treeReader[T any] struct {
	root string
	fix  func(id string, v *T)
	log  interface {
		Error(msg string, args ...any)
	}
	seen map[string]parsedNode[T]
	cur  map[string]T
}

type parsedNode[T any] struct {
	mzxid int64
	v     T
}

func newTreeReader[T any](root string, fix func(string, *T), log interface{ Error(string, ...any) }) *treeReader[T] {
	return &treeReader[T]{root: root, fix: fix, log: log, seen: map[string]parsedNode[T]{}}
}

// read returns the children (name → value) and whether they are the
// same as at the last read.
func (t *treeReader[T]) read(tc *engine.TreeCache) (map[string]T, bool) {
	kids := tc.Children(t.root)
	out := make(map[string]T, len(kids))
	next := make(map[string]parsedNode[T], len(kids))
	same := t.cur != nil && len(kids) == len(t.seen)
	for _, k := range kids {
		n, ok := tc.Get(t.root + "/" + k)
		if !ok {
			continue
		}
		if old, ok := t.seen[k]; ok && old.mzxid == n.Stat.Mzxid {
			out[k], next[k] = old.v, old
			continue
		}
		same = false
		var v T
		if err := json.Unmarshal(n.Data, &v); err != nil {
			t.log.Error("znode does not decode; left out", "path", n.Path, "err", err)
			continue
		}
		t.fix(k, &v)
		out[k], next[k] = v, parsedNode[T]{n.Stat.Mzxid, v}
	}
	t.seen, t.cur = next, out
	return out, same
}

// watchAllocators tracks each allocator's zone and alive node. Proxies
// may read the allocator records and alive nodes only (not instances),
// so this is a small watcher of its own rather than a TreeCache.
func (p *Proxy) watchAllocators(ctx context.Context, s *engine.Store) {
	sess, cancel := s.Subscribe()
	defer cancel()
	fired := make(chan struct{}, 1)
	forward := func(ch <-chan zk.Event) {
		go func() {
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
			select {
			case fired <- struct{}{}:
			default:
			}
		}()
	}
	need := true
	lastSession := int64(0)
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	conn := s.Conn()
	zones := map[string]string{} // allocator → zone (records rarely change)
	for {
		if need && s.Connected() {
			view, err := p.readAllocators(conn, zones, forward)
			if err != nil {
				p.log.Debug("reading allocators failed; retrying", "err", err)
				retry.Reset(time.Second)
			} else {
				need = false
				lastSession = s.SessionID()
				p.mu.Lock()
				p.snap.Allocators = view
				p.installLocked() // a disk table keeps its routes, with fresh zones
				p.mu.Unlock()
				p.requestSave()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-fired:
			need = true
		case <-retry.C:
		case <-sess:
			if s.Connected() && s.SessionID() != lastSession {
				need = true
			}
		}
	}
}

func (p *Proxy) readAllocators(conn *zk.Conn, zones map[string]string, forward func(<-chan zk.Event)) (map[string]AllocatorView, error) {
	kids, _, cw, err := conn.ChildrenW(engine.PathAllocators)
	if errors.Is(err, zk.ErrNoNode) {
		return map[string]AllocatorView{}, nil
	}
	if err != nil {
		return nil, err
	}
	forward(cw)
	view := make(map[string]AllocatorView, len(kids))
	for _, id := range kids {
		zone, ok := zones[id]
		if !ok {
			data, _, err := conn.Get(engine.AllocatorPath(id))
			if errors.Is(err, zk.ErrNoNode) {
				continue
			}
			if err != nil {
				return nil, err
			}
			var a engine.Allocator
			if err := json.Unmarshal(data, &a); err == nil {
				zone = a.Zone
				zones[id] = zone
			}
		}
		alive, _, aw, err := conn.ExistsW(engine.AllocatorAlivePath(id))
		if err != nil {
			return nil, err
		}
		forward(aw)
		view[id] = AllocatorView{Zone: zone, Alive: alive}
	}
	return view, nil
}

// register keeps /paddock/proxies/<id> present with fresh figures.
func (p *Proxy) register(ctx context.Context, s *engine.Store) {
	started := time.Now().UTC()
	record := func() engine.ProxyRecord {
		state := "serving"
		if !s.Connected() {
			state = "serving-cached"
		}
		return engine.ProxyRecord{ID: p.cfg.ID, HTTPAddr: p.HTTPAddr(), HTTPSAddr: p.HTTPSAddr(), State: state,
			Routes: len(p.tbl.Load().routes), StartedAt: started, UpdatedAt: time.Now().UTC()}
	}
	var reg *engine.Ephemeral
	defer func() {
		if reg != nil {
			reg.Close()
		}
	}()
	t := time.NewTicker(p.cfg.RegisterInterval)
	defer t.Stop()
	sess, cancel := s.Subscribe()
	defer cancel()
	for {
		if s.Connected() {
			cctx, c := context.WithTimeout(ctx, 5*time.Second)
			var err error
			if reg == nil {
				reg, err = s.Register(cctx, engine.ProxyPath(p.cfg.ID), record())
				if err == nil {
					p.log.Info("proxy registered", "path", engine.ProxyPath(p.cfg.ID))
				}
			} else {
				err = reg.Update(cctx, record())
			}
			c()
			if err != nil && ctx.Err() == nil {
				p.log.Warn("proxy registration failed; retrying", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-sess:
		}
	}
}

func (p *Proxy) registerGauges() {
	p.cfg.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "paddock_proxy_cache_age_seconds",
		Help: "How old the routing table may be: 0 while ZooKeeper is connected, else seconds since it was last in step."},
		func() float64 { return p.cacheAge().Seconds() }))
}

// cacheAge is how long the table may have lagged ZooKeeper.
func (p *Proxy) cacheAge() time.Duration {
	if s := p.store.Load(); s != nil && s.Connected() {
		return 0
	}
	if since := p.zkDownSince.Load(); since != 0 {
		return time.Since(time.Unix(0, since))
	}
	p.mu.Lock()
	saved := p.snap.SavedAt
	p.mu.Unlock()
	if saved.IsZero() {
		return 0
	}
	return time.Since(saved)
}
