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
	for _, f := range []func(context.Context, *engine.Store){p.watchRoutes, p.watchAllocators, p.register, p.watchSession} {
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

// watchRoutes applies /paddock/routes from the store's TreeCache: each
// batch of changes becomes one new table version.
func (p *Proxy) watchRoutes(ctx context.Context, s *engine.Store) {
	tc := engine.NewTreeCache(s, engine.PathRoutes)
	changed := tc.Changed()
	done := make(chan struct{})
	go func() { defer close(done); _ = tc.Run(ctx) }()
	defer func() { <-done }()
	type parsed struct {
		mzxid int64
		r     engine.Route
	}
	seen := map[string]parsed{}
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		select {
		case <-tc.Ready():
		default:
			continue // keep the disk table until the first full load
		}
		kids := tc.Children(engine.PathRoutes)
		routes := make(map[string]engine.Route, len(kids))
		next := make(map[string]parsed, len(kids))
		same := len(kids) == len(seen)
		for _, k := range kids {
			n, ok := tc.Get(engine.RoutePath(k))
			if !ok {
				continue
			}
			if old, ok := seen[k]; ok && old.mzxid == n.Stat.Mzxid {
				routes[k], next[k] = old.r, old
				continue
			}
			same = false
			var r engine.Route
			if err := json.Unmarshal(n.Data, &r); err != nil {
				p.log.Error("route znode is not a route; deployment not routed", "path", n.Path, "err", err)
				continue
			}
			r.DeploymentID = k
			routes[k], next[k] = r, parsed{n.Stat.Mzxid, r}
		}
		seen = next
		if same && !first {
			continue
		}
		first = false
		p.mu.Lock()
		p.snap.Routes = routes
		p.snap.Source = "zookeeper"
		p.installLocked()
		p.mu.Unlock()
		p.requestSave()
	}
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
