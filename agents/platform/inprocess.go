package platform

import (
	"context"
	"errors"
	"fmt"
	"paddock/stunnel"
	"path/filepath"

	"paddock/agents/allocator"
	"paddock/agents/api"
	"paddock/agents/constructor"
	"paddock/agents/director"
	"paddock/agents/proxy"
	"paddock/engine"
)

// inProcess runs the director, constructor, API, proxy and allocators
// in this process: the same Config/Run as the standalone agents.
type inProcess struct {
	addrs    director.Addrs
	zl       *zkLink
	apiURL   chan string
	proxyID  string
	allocIDs []string
}

func (m *inProcess) outlives() bool { return false }

func (m *inProcess) claim(_ context.Context, r *run) error {
	lock, err := lockPid(r.dir)
	if errors.Is(err, errLocked) {
		st, _ := ReadStatus(r.dir)
		pid, _ := RunningPid(r.dir)
		return &AlreadyUpError{Pid: pid, Status: st}
	}
	if err != nil {
		return err
	}
	r.lock = lock
	return nil
}

func (m *inProcess) images(ctx context.Context, r *run) error { return r.ensureNodeImages(ctx) }

func (m *inProcess) director(ctx context.Context, r *run) error {
	r.rec.step("starting the director")
	creds := engine.CredentialSet{}
	for _, role := range engine.Roles {
		if c, err := engine.LoadCredential(engine.CredentialFile(r.dir, role)); err == nil {
			creds[role] = c
		}
	}
	super, err := zkSuperPassword(r.dir)
	if err != nil {
		return err
	}
	ready := make(chan director.Addrs, 1)
	log := r.log.With("agent", "director")
	r.svc.start("director", "director", func(ctx context.Context) error {
		return director.Run(ctx, director.Config{ID: "director-up", StateDir: r.dir,
			Store:       engine.Options{Servers: r.zk, Credential: creds[engine.RoleDirector], ConnectTimeout: r.cfg.Timeout, Logger: log},
			Credentials: creds, ZooKeeper: r.zk, SuperPassword: super,
			TunnelAddr: r.cfg.DirectorTunnelAddr, EnrollAddr: r.cfg.DirectorEnrollAddr, CertTTL: r.cfg.CertTTL,
			MetricsAddr: "127.0.0.1:0", Logger: r.log,
			Ready: func(a director.Addrs) {
				r.svc.ready("director", "tunnel "+a.Tunnel+", enroll "+a.Enroll, a.Metrics)
				select {
				case ready <- a:
				default:
				}
			},
		})
	})
	select {
	case m.addrs = <-ready:
		return nil
	case err := <-r.svc.errc:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: are its ports free? choose others with --director-tunnel-addr/--director-enroll-addr", timeout(ctx, "the director did not start"))
	}
}

// link issues the role certificates and moves up's own admin store to
// the tunnel; the direct one served the bootstrap only.
func (m *inProcess) link(ctx context.Context, r *run) error {
	l, err := r.linkAgents(r.svc.ctx, m.addrs)
	if err != nil {
		return err
	}
	m.zl = l
	if !l.tunnel {
		return nil
	}
	r.rec.set(func(st *Status) { st.Tunnel = l.servers })
	r.rec.step("agents reach ZooKeeper through the director's tunnel at %s", l.servers)
	admin, err := r.connect(ctx, engine.RoleAdmin, l, "api")
	if err != nil {
		return err
	}
	r.setAdmin(admin)
	return nil
}

func (m *inProcess) agents(ctx context.Context, r *run) error {
	l := m.zl
	r.rec.step("starting the constructor")
	cons, err := r.connect(ctx, engine.RoleConstructor, l, "constructor")
	if err != nil {
		return err
	}
	r.onShutdown(func() { cons.Close() })
	r.svc.start("constructor", "constructor", func(ctx context.Context) error {
		return constructor.Run(ctx, constructor.Config{Store: cons, ID: "constructor-up", MetricsAddr: "127.0.0.1:0",
			NodeLoader: l.loader(engine.RoleConstructor), Logger: r.log,
			Ready: func(metrics string) { r.svc.ready("constructor", "", metrics) }})
	})

	r.rec.step("starting the API")
	m.apiURL = make(chan string, 1)
	admin := r.admin
	r.svc.start("api", "api", func(ctx context.Context) error {
		return api.Run(ctx, api.Config{Store: admin, Addr: fmt.Sprintf("127.0.0.1:%d", r.cfg.APIPort), MetricsAddr: "127.0.0.1:0",
			Logger: r.log, NodeLoader: l.loader(engine.RoleAdmin), CertDir: director.TLSDir(r.dir),
			OnListen: func(h, _ string) {
				r.svc.ready("api", h, "")
				select {
				case m.apiURL <- "http://" + h:
				default:
				}
			}})
	})

	r.rec.step("starting the proxy")
	proxyCred, err := engine.LoadCredential(engine.CredentialFile(r.dir, engine.RoleProxy))
	if err != nil {
		return err
	}
	m.proxyID = "proxy-up"
	plog := r.log.With("agent", "proxy")
	// HTTPS with a certificate per deployment host from the platform CA
	// (this process holds it: the director runs here).
	var httpsAddr string
	var publicCA *stunnel.CA
	if r.cfg.ProxyHTTPSPort >= 0 {
		if publicCA, _, err = director.LoadOrCreateCA(r.dir); err != nil {
			return fmt.Errorf("the platform CA for the proxy's HTTPS: %w", err)
		}
		httpsAddr = fmt.Sprintf("127.0.0.1:%d", r.cfg.ProxyHTTPSPort)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", r.cfg.ProxyPort)
	if r.cfg.ProxyPort < 0 {
		httpAddr = "" // HTTPS only
	}
	r.svc.start("proxy", "proxy", func(ctx context.Context) error {
		return proxy.Run(ctx, proxy.Config{ID: m.proxyID, HTTPAddr: httpAddr,
			HTTPSAddr: httpsAddr, PublicCA: publicCA,
			Domain: r.pcfg.Domain, CacheFile: filepath.Join(r.dir, "proxy-routes.json"), MetricsAddr: "127.0.0.1:0",
			Logger: r.log,
			// mTLS to the allocators' node tunnels with the proxy's certificate.
			BackendLoader: l.loader(engine.RoleProxy),
			Connect: func(ctx context.Context) (*engine.Store, error) {
				return engine.Connect(ctx, l.options(engine.RoleProxy, proxyCred, plog))
			}})
	})

	allocCred, err := engine.LoadCredential(engine.CredentialFile(r.dir, engine.RoleAllocator))
	if err != nil {
		return err
	}
	labels := map[string]string{LabelUp: r.rec.get().Label}
	for k, v := range r.cfg.Labels {
		labels[k] = v
	}
	ids, zones := r.cfg.allocatorIDs()
	m.allocIDs = ids
	for i, id := range ids {
		r.rec.step("starting allocator %s in %s (%s)", id, zones[i], engine.FormatSize(r.cfg.AllocatorMemoryMB))
		alog := r.log.With("agent", "allocator", "allocator", id)
		acfg := allocator.Config{ID: id, Zone: zones[i], CapacityMB: r.cfg.AllocatorMemoryMB, StateDir: filepath.Join(r.dir, "allocators", id),
			SnapshotDir: filepath.Join(r.dir, "snapshots"), Runtime: r.cfg.Runtime, NodeBinary: r.nodeBin, Labels: labels,
			MetricsAddr: "127.0.0.1:0", Logger: r.log, Version: r.cfg.Version,
			ZK:      l.options(engine.RoleAllocator, allocCred, alog),
			OnReady: func(metrics string) { r.svc.ready(id, "", metrics) },
			// Each allocator fronts its nodes with an mTLS tunnel that
			// admits proxies (and the constructor); several share this
			// host, so each takes a free loopback port.
			TunnelLoader: l.loader(engine.RoleAllocator), TunnelListen: "127.0.0.1:0",
		}
		r.svc.start(id, "allocator", func(ctx context.Context) error { return allocator.Run(ctx, acfg) })
	}
	return nil
}

func (m *inProcess) waitReady(ctx context.Context, r *run) error {
	select {
	case u := <-m.apiURL:
		r.rec.set(func(st *Status) { st.APIURL = u })
	case err := <-r.svc.errc:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: see %s", timeout(ctx, "the API did not start"), filepath.Join(r.dir, LogFile))
	}
	rec, err := waitProxyRecord(ctx, r.admin, m.proxyID, r.svc.errc)
	if err != nil {
		return fmt.Errorf("%w: are its ports free? choose them with --proxy-port and --proxy-https-port", err)
	}
	r.svc.ready("proxy", rec.HTTPAddr, "")
	r.rec.set(func(st *Status) {
		if rec.HTTPAddr != "" {
			st.ProxyURL = "http://" + rec.HTTPAddr
		}
		if rec.HTTPSAddr != "" {
			st.ProxyHTTPSURL = "https://" + rec.HTTPSAddr
			st.CAFile = filepath.Join(director.CADir(r.dir), "ca.pem")
		}
	})
	if _, err := waitAllocators(ctx, r.admin, m.allocIDs, r.svc.errc); err != nil {
		return err
	}
	for _, id := range m.allocIDs {
		r.svc.ready(id, "", "")
	}
	return nil
}

// serve waits for ctx (SIGINT/SIGTERM) or a service failing.
func (m *inProcess) serve(ctx context.Context, r *run) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-r.svc.errc:
		r.log.Error("a platform service failed; stopping", "err", err)
		return err
	}
}
