package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"paddock/agents/agentkit"
	"paddock/engine"
	"paddock/stunnel"
)

// Proxy is one running proxy.
type Proxy struct {
	cfg    Config
	log    *slog.Logger
	access io.Writer
	met    *metrics
	pool   *pool

	tbl atomic.Pointer[table]
	// domain is the host name suffix of deployments.
	domain atomic.Pointer[string]
	rr     atomic.Uint32

	mu       sync.Mutex
	backends map[string]*backend
	snap     Snapshot
	version  int64
	saveCh   chan struct{}
	unknown  *routeMetrics
	store    atomic.Pointer[engine.Store]
	// zkDownSince is when the ZooKeeper session was lost (unix ns, 0 when up).
	zkDownSince atomic.Int64
	probeCtx    context.Context
	stopProb    context.CancelFunc
	probes      sync.WaitGroup

	// stopping closes when shutdown starts (held requests give up).
	stopping chan struct{}

	httpLn  net.Listener
	httpsLn net.Listener
}

// Run starts a proxy and serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	p, err := New(cfg)
	if err != nil {
		return err
	}
	return p.Serve(ctx)
}

// New binds the listeners and loads the disk cache, so the proxy can
// serve before ZooKeeper answers. Serve runs it.
func New(cfg Config) (*Proxy, error) {
	cfg.defaults()
	var nodeTLS *tls.Config
	if cfg.BackendLoader != nil {
		c, err := stunnel.NewClient(stunnel.ClientConfig{Options: stunnel.Options{Name: "nodes", Loader: cfg.BackendLoader,
			Allow: cfg.BackendAllow, HandshakeTimeout: cfg.ConnectTimeout, ConnectTimeout: cfg.ConnectTimeout,
			Metrics: stunnel.NewMetrics(cfg.Registry)}, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("proxy: client of the allocators' node tunnels: %w (check the proxy certificate under <state-dir>/tls)", err)
		}
		nodeTLS = c.ReloadingTLSConfig()
	}
	p := &Proxy{
		cfg:      cfg,
		log:      cfg.Logger.With("agent", "proxy", "proxy", cfg.ID),
		access:   cfg.AccessLog,
		met:      newMetrics(cfg.Registry),
		pool:     newPool(cfg.ConnectTimeout, cfg.BackendTLS, nodeTLS, cfg.MaxIdlePerBackend),
		backends: map[string]*backend{},
		saveCh:   make(chan struct{}, 1),
		stopping: make(chan struct{}),
	}
	p.unknown = p.met.forRoute("_unknown")
	p.setDomain(cfg.Domain)
	p.probeCtx, p.stopProb = context.WithCancel(context.Background())
	p.tbl.Store(&table{routes: map[string]*route{}, changed: make(chan struct{}), source: "empty", built: time.Now()})
	p.snap = Snapshot{Routes: map[string]engine.Route{}, Allocators: map[string]AllocatorView{}, Source: "empty"}
	if cfg.CacheFile != "" {
		snap, err := loadSnapshot(cfg.CacheFile)
		switch {
		case err == nil:
			snap.Source = "disk"
			if cfg.Domain == "" && snap.Domain != "" {
				p.setDomain(snap.Domain)
			}
			p.mu.Lock()
			p.snap = snap
			p.installLocked()
			p.mu.Unlock()
			p.log.Info("routing table loaded from disk cache", "file", cfg.CacheFile, "routes", len(snap.Routes), "saved_at", snap.SavedAt)
		case errors.Is(err, errNoCache):
		default:
			p.log.Warn("disk cache unreadable; starting empty until ZooKeeper answers", "file", cfg.CacheFile, "err", err)
		}
	}
	var err error
	if cfg.HTTPAddr == "" && cfg.HTTPSAddr == "" {
		return nil, agentkit.ConfigErrorf("neither --http-addr nor --https-addr: the proxy would serve nothing")
	}
	if cfg.HTTPAddr != "" {
		if p.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("proxy HTTP address %s: %w (choose another with --http-addr)", cfg.HTTPAddr, err)
		}
	}
	if cfg.HTTPSAddr != "" {
		tc := cfg.TLSConfig
		if tc == nil && cfg.TLSCertFile == "" && cfg.PublicCA != nil {
			pc, err := newPublicCerts(cfg.PublicCA, p.Domain, func(id string) bool { return p.tbl.Load().routes[id] != nil })
			if err != nil {
				p.closeHTTP()
				return nil, err
			}
			tc = pc.tlsConfig()
		}
		if tc == nil {
			if cfg.TLSCertFile == "" || cfg.TLSKeyFile == "" {
				p.closeHTTP()
				return nil, errors.New("HTTPS listener needs --tls-cert and --tls-key (or disable it with --https-addr \"\")")
			}
			cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
			if err != nil {
				p.closeHTTP()
				return nil, fmt.Errorf("proxy certificate %s / %s: %w (check the PEM files)", cfg.TLSCertFile, cfg.TLSKeyFile, err)
			}
			tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		ln, err := net.Listen("tcp", cfg.HTTPSAddr)
		if err != nil {
			p.closeHTTP()
			return nil, fmt.Errorf("proxy HTTPS address %s: %w (choose another with --https-addr)", cfg.HTTPSAddr, err)
		}
		p.httpsLn = tls.NewListener(ln, tc)
	}
	return p, nil
}

// setDomain sets the deployments' host name suffix ("" → localhost).
func (p *Proxy) setDomain(d string) {
	d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
	if d == "" {
		d = "localhost"
	}
	p.domain.Store(&d)
}

// Domain is the host name suffix the proxy routes under.
func (p *Proxy) Domain() string { return *p.domain.Load() }

// HTTPAddr is the bound plain address.
func (p *Proxy) HTTPAddr() string {
	if p.httpLn == nil {
		return ""
	}
	return p.httpLn.Addr().String()
}

// closeHTTP closes the plain listener, if there is one.
func (p *Proxy) closeHTTP() {
	if p.httpLn != nil {
		p.httpLn.Close()
	}
}

// HTTPSAddr is the bound TLS address ("" when off).
func (p *Proxy) HTTPSAddr() string {
	if p.httpsLn == nil {
		return ""
	}
	return p.httpsLn.Addr().String()
}

// Source says where the current table comes from: zookeeper, disk, empty.
func (p *Proxy) Source() string { return p.tbl.Load().source }

// Version is the routing table version.
func (p *Proxy) Version() int64 { return p.tbl.Load().version }

// Serve runs the listeners, the ZooKeeper sources, the registration and
// the disk cache writer until ctx ends, then drains in-flight requests.
func (p *Proxy) Serve(ctx context.Context) error {
	defer p.stopProb()
	st := p.cfg.Status
	st.Set("zookeeper", "not connected yet")
	var extra map[string]http.Handler
	if p.cfg.Pprof {
		extra = map[string]http.Handler{"/debug/pprof/": http.HandlerFunc(pprof.Index),
			"/debug/pprof/profile": http.HandlerFunc(pprof.Profile), "/debug/pprof/symbol": http.HandlerFunc(pprof.Symbol)}
	}
	if _, err := agentkit.Serve(ctx, p.cfg.MetricsAddr, p.cfg.Registry, st, p.log, extra); err != nil {
		p.closeHTTP()
		if p.httpsLn != nil {
			p.httpsLn.Close()
		}
		return err
	}
	p.registerGauges()
	// The plain listener: event loops (Config.EventLoops), which hand
	// the requests they do not serve to a goroutine-per-connection
	// server of the same listener; HTTPS: goroutine per connection.
	var servers []frontEnd
	if p.httpLn != nil {
		plain := newServer(p, p.httpLn, false)
		if n := p.cfg.loops(); n > 0 {
			ls, err := newLoopServer(p, p.httpLn, n, plain)
			if err != nil {
				p.log.Warn("event-loop front end unavailable; one goroutine per connection instead", "err", err)
			} else {
				servers = append(servers, ls)
				plain.accepting = false
			}
		}
		servers = append(servers, plain)
	}
	if p.httpsLn != nil {
		servers = append(servers, newServer(p, p.httpsLn, true))
	}
	errCh := make(chan error, len(servers))
	for _, srv := range servers {
		go func() {
			if err := srv.serve(); err != nil {
				errCh <- fmt.Errorf("proxy listener: %w", err)
			}
		}()
	}
	st.SetReady(true)
	p.log.Info("proxy serving", "http", p.HTTPAddr(), "https", p.HTTPSAddr(), "domain", p.cfg.Domain, "routes", len(p.tbl.Load().routes), "source", p.Source())

	var wg sync.WaitGroup
	bg, stopBG := context.WithCancel(ctx)
	wg.Add(3)
	go func() { defer wg.Done(); p.control(bg) }()
	go func() { defer wg.Done(); p.saver(bg) }()
	go func() { defer wg.Done(); p.reaper(bg) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-errCh:
	}
	st.SetReady(false)
	close(p.stopping)
	stopBG()
	wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), p.cfg.ShutdownGrace)
	defer cancel()
	// Loops first: they may still hand connections to the goroutine
	// server until they stop.
	for _, srv := range servers {
		if ls, ok := srv.(*loopServer); ok {
			ls.shutdown(sctx)
		}
	}
	var swg sync.WaitGroup
	for _, srv := range servers {
		if _, ok := srv.(*loopServer); ok {
			continue
		}
		swg.Add(1)
		go func() { defer swg.Done(); srv.shutdown(sctx) }()
	}
	swg.Wait()
	p.stopProb()
	p.probes.Wait()
	p.mu.Lock()
	for _, b := range p.backends {
		p.pool.drain(b)
	}
	p.mu.Unlock()
	p.log.Info("proxy stopped")
	return err
}

// frontEnd serves a listener.
type frontEnd interface {
	serve() error
	shutdown(ctx context.Context)
}

// install builds a new table from p.snap and swaps it in. Call with p.mu.
func (p *Proxy) installLocked() {
	old := p.tbl.Load()
	p.version++
	zonesDown := zoneState(p.snap.Allocators)
	t := &table{routes: make(map[string]*route, len(p.snap.Routes)), version: p.version, source: p.snap.Source,
		built: time.Now(), changed: make(chan struct{}), zonesDown: zonesDown}
	used := map[string]*backend{}
	filters := buildFilters(p.snap.Filters, func(set, source string, err error) {
		p.log.Error("traffic filter rule does not parse; left out (the rule set allows less)", "ruleset", set, "source", source, "err", err)
	})
	for id, r := range p.snap.Routes {
		rt := &route{id: id, paused: r.State == engine.RoutePaused, gen: r.Generation, m: p.met.forRoute(id), filter: filters[id]}
		for _, be := range r.Backends {
			if be.Address == "" {
				continue
			}
			b := newBackend(be.Address, be.TLS, be.InstanceID)
			if have, ok := p.backends[b.key]; ok {
				b = have
			}
			used[b.key] = b
			m := &member{b: b, instance: be.InstanceID, zone: be.Zone, allocator: be.Allocator,
				avoid: avoidBackend(be, p.snap.Allocators, zonesDown)}
			switch be.Kind {
			case kindKB:
				rt.kb = append(rt.kb, m)
			case kindES, "":
				rt.es = append(rt.es, m)
			}
		}
		t.routes[id] = rt
	}
	for id := range old.routes {
		if _, ok := t.routes[id]; !ok {
			p.met.forget(id)
		}
	}
	var drained []*backend
	for k, b := range p.backends {
		if _, ok := used[k]; !ok {
			drained = append(drained, b)
		}
	}
	p.backends = used
	p.tbl.Store(t)
	close(old.changed)
	for _, b := range drained {
		n := p.pool.drain(b)
		p.met.drained.Inc()
		p.log.Info("backend drained: no route names it any more", "backend", b.addr, "idle_closed", n)
	}
	p.met.routes.Set(float64(len(t.routes)))
	p.met.tableVer.Set(float64(t.version))
}

// reaper closes backend connections idle past BackendIdleTimeout.
func (p *Proxy) reaper(ctx context.Context) {
	t := time.NewTicker(max(p.cfg.BackendIdleTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		bs := make([]*backend, 0, len(p.backends))
		for _, b := range p.backends {
			bs = append(bs, b)
		}
		p.mu.Unlock()
		for _, b := range bs {
			p.pool.reap(b, p.cfg.BackendIdleTimeout)
		}
	}
}

// startProbe probes a down backend until it answers or is drained.
func (p *Proxy) startProbe(b *backend) {
	p.met.down.WithLabelValues("down").Inc()
	p.log.Warn("backend marked down", "backend", b.addr, "reason", b.reason())
	p.probes.Add(1)
	go func() {
		defer p.probes.Done()
		t := time.NewTicker(p.cfg.ProbeInterval)
		defer t.Stop()
		for {
			select {
			case <-p.probeCtx.Done():
				return
			case <-t.C:
			}
			if b.isClosed() {
				b.mu.Lock()
				b.probing = false
				b.mu.Unlock()
				return
			}
			if err := p.probe(p.probeCtx, b); err != nil {
				b.mu.Lock()
				b.downWhy = "probe: " + shortErr(err)
				b.mu.Unlock()
				continue
			}
			b.mu.Lock()
			b.probing = false
			b.mu.Unlock()
			b.markUp()
			p.met.down.WithLabelValues("up").Inc()
			p.log.Info("backend up again", "backend", b.addr)
			return
		}
	}()
}

// probe sends GET / on a fresh connection: any HTTP answer is "up".
func (p *Proxy) probe(ctx context.Context, b *backend) error {
	c, err := p.pool.dial(ctx, b)
	if err != nil {
		return err
	}
	defer p.pool.close(c)
	to := min(p.cfg.UpstreamTimeout, 5*time.Second)
	_ = c.nc.SetDeadline(time.Now().Add(to))
	c.bw.WriteString("GET / HTTP/1.1\r\nHost: paddock-proxy-probe\r\nUser-Agent: paddock-proxy\r\nConnection: close\r\n\r\n")
	if err := c.bw.Flush(); err != nil {
		return err
	}
	_, _, err = readResponseHead(c.br, nil)
	return err
}
