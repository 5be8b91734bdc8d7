package director

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/prometheus/client_golang/prometheus"

	"paddock/agents/agentkit"
	"paddock/engine"
	"paddock/stunnel"
)

// Default ports (DESIGN.md).
const (
	DefaultTunnelAddr = ":2191"
	DefaultEnrollAddr = ":12343"
)

// DefaultCertTTL is the lifetime of the certificates the director signs;
// holders renew them at two thirds of it.
const DefaultCertTTL = 12 * time.Hour

// TunnelRoles are admitted through the ZooKeeper tunnel: every control
// plane role; node containers hold no certificate at all.
var TunnelRoles = engine.Roles

// Config configures the director.
type Config struct {
	// ID names this director (certificate identity director/<id>).
	ID string
	// StateDir holds the CA (director/ca.pem, director/ca.key 0600).
	StateDir string
	// Store options to reach ZooKeeper directly (the director runs beside
	// it, on loopback) with the director role's credential.
	Store engine.Options
	// Credentials are the ZooKeeper digest credentials the director hands
	// to joining hosts, per role (from `paddock init`'s state dir).
	Credentials engine.CredentialSet
	// SuperPassword is ZooKeeper's super user password: with it the
	// director grows and shrinks the ensemble (dynamic reconfig).
	SuperPassword string
	// ZooKeeper is the loopback address the tunnel forwards to.
	ZooKeeper string
	// TunnelAddr (mTLS, default :2191) and EnrollAddr (HTTPS, default
	// :12343); "-" disables one.
	TunnelAddr, EnrollAddr string
	// Hosts are extra DNS names / IPs of this director for its
	// certificate (the host name and loopback are always in).
	Hosts []string
	// CertTTL of signed certificates (default 12h).
	CertTTL time.Duration
	// MetricsAddr serves /metrics, /healthz, /readyz, /status.
	MetricsAddr string
	Logger      *slog.Logger
	// Ready, when set, receives the bound addresses once serving (tests).
	Ready func(Addrs)
}

// Addrs are the addresses the director bound.
type Addrs struct {
	Tunnel, Enroll, Metrics string
}

type metrics struct {
	enrollments *prometheus.CounterVec
	issued      *prometheus.CounterVec
}

// Director is a running director.
type Director struct {
	cfg    Config
	log    *slog.Logger
	ca     *stunnel.CA
	store  *engine.Store
	own    *stunnel.Loader
	m      metrics
	mu     sync.Mutex
	known  []string // ensemble client addresses, as last seen
	tunnel string
	// own certificate (leaf+CA) and key, and the current CRL.
	ownCert, ownKey []byte
	crl             []byte
	crlKey          string
	crlNext         time.Time
	crlNum          int64
}

// Run starts the director and returns when ctx ends (after draining).
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StateDir == "" {
		return errors.New("director needs a state dir (--state-dir) for its CA")
	}
	if cfg.ID == "" {
		h, _ := os.Hostname()
		cfg.ID = sanitizeID(h)
	}
	if cfg.CertTTL == 0 {
		cfg.CertTTL = DefaultCertTTL
	}
	if cfg.TunnelAddr == "" {
		cfg.TunnelAddr = DefaultTunnelAddr
	}
	if cfg.EnrollAddr == "" {
		cfg.EnrollAddr = DefaultEnrollAddr
	}
	if cfg.ZooKeeper == "" {
		cfg.ZooKeeper = "127.0.0.1:2181"
	}
	log := cfg.Logger.With("agent", "director", "id", cfg.ID)
	// Everything started below stops with this context, also when Run
	// returns early on an error.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ca, created, err := LoadOrCreateCA(cfg.StateDir)
	if err != nil {
		return err
	}
	if created {
		log.Info("created the platform CA", "dir", CADir(cfg.StateDir), "fingerprint", stunnel.Fingerprint(ca.Cert))
	}
	if cfg.Store.Logger == nil {
		cfg.Store.Logger = cfg.Logger
	}
	cfg.Store.Role = engine.RoleDirector
	s, err := engine.Connect(ctx, cfg.Store)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := PublishCA(ctx, s, ca); err != nil {
		return err
	}
	if err := s.Create(ctx, engine.PathTokens, nil); err != nil && !errors.Is(err, engine.ErrExists) {
		return fmt.Errorf("create %s: %w", engine.PathTokens, err)
	}
	if err := ensureCertPaths(ctx, s); err != nil {
		return err
	}
	reg := agentkit.NewRegistry()
	d := &Director{cfg: cfg, log: log, ca: ca, store: s}
	d.m.enrollments = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_director_enrollments_total",
		Help: "Enrollment and renewal requests by result."}, []string{"kind", "result"})
	d.m.issued = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_director_certificates_issued_total",
		Help: "Certificates signed, by role."}, []string{"role"})
	reg.MustRegister(d.m.enrollments, d.m.issued)

	if d.own, err = d.issueOwn(); err != nil {
		return err
	}
	if err := d.refreshCRL(ctx); err != nil {
		return fmt.Errorf("revocation list: %w", err)
	}
	st := agentkit.NewStatus()
	tm := stunnel.NewMetrics(reg)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	addrs := Addrs{}
	var statusers []stunnel.Statuser

	if cfg.TunnelAddr != "-" {
		srv, err := stunnel.NewServer(stunnel.ServerConfig{
			Options: stunnel.Options{Name: "zookeeper", Loader: d.own, Allow: stunnel.Allow{Roles: engine.RoleNames(TunnelRoles)},
				Metrics: tm, IdleTimeout: 0, DrainTimeout: 5 * time.Second},
			Target: stunnel.DialTarget(cfg.ZooKeeper), TargetDesc: cfg.ZooKeeper, Logger: cfg.Logger,
		})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", cfg.TunnelAddr)
		if err != nil {
			return fmt.Errorf("ZooKeeper tunnel: listen on %s: %w (choose another with --tunnel-addr)", cfg.TunnelAddr, err)
		}
		addrs.Tunnel = ln.Addr().String()
		d.tunnel = addrs.Tunnel
		statusers = append(statusers, srv)
		wg.Add(1)
		go func() { defer wg.Done(); errs <- srv.Serve(ctx, ln) }()
	}
	if cfg.EnrollAddr != "-" {
		ln, err := net.Listen("tcp", cfg.EnrollAddr)
		if err != nil {
			return fmt.Errorf("enrollment endpoint: listen on %s: %w (choose another with --enroll-addr)", cfg.EnrollAddr, err)
		}
		addrs.Enroll = ln.Addr().String()
		hs := &http.Server{Handler: d.handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
			TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, ClientAuth: tls.RequestClientCert,
				GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { c := d.own.Current().Cert; return &c, nil }}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := hs.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("enrollment endpoint: %w", err)
			}
		}()
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(sctx)
		}()
	}
	maddr, err := agentkit.Serve(ctx, cfg.MetricsAddr, reg, st, cfg.Logger, map[string]http.Handler{"/status": stunnel.StatusHandler(statusers...)})
	if err != nil {
		return err
	}
	addrs.Metrics = maddr
	wg.Add(2)
	go func() { defer wg.Done(); d.renewOwn(ctx) }()
	go func() { defer wg.Done(); d.crlLoop(ctx) }()
	st.SetReady(true)
	log.Info("director serving", "tunnel", addrs.Tunnel, "enroll", addrs.Enroll, "zookeeper", cfg.ZooKeeper,
		"ca_fingerprint", stunnel.Fingerprint(ca.Cert))
	if cfg.Ready != nil {
		cfg.Ready(addrs)
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errs:
	}
	wg.Wait()
	return first
}

// issueOwn signs the director's own certificate (tunnel and enrollment
// server) in memory.
func (d *Director) issueOwn() (*stunnel.Loader, error) {
	certPEM, keyPEM, err := d.signOwn()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.ownCert, d.ownKey = certPEM, keyPEM
	d.mu.Unlock()
	return stunnel.NewPEMLoader(certPEM, keyPEM, d.ca.CertPEM, nil)
}

func (d *Director) signOwn() ([]byte, []byte, error) {
	key, keyPEM, err := stunnel.GenerateKey()
	if err != nil {
		return nil, nil, err
	}
	dns, ips := hostSANs(d.cfg.Hosts)
	leaf, err := d.ca.Issue(key.Public(), stunnel.Leaf{Identity: stunnel.Identity{Role: "director", ID: d.cfg.ID},
		DNSNames: dns, IPs: ips, TTL: d.cfg.CertTTL})
	if err != nil {
		return nil, nil, err
	}
	// The chain carries the CA so that joining hosts can match the
	// fingerprint pinned in their token.
	return append(leaf, d.ca.CertPEM...), keyPEM, nil
}

// renewOwn re-signs the director's certificate at two thirds of its life.
func (d *Director) renewOwn(ctx context.Context) {
	for {
		m := d.own.Current()
		wait := time.Until(renewAt(m.Leaf.NotBefore, m.Leaf.NotAfter))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		_, err := backoff.Retry(ctx, func() (struct{}, error) {
			certPEM, keyPEM, err := d.signOwn()
			if err != nil {
				return struct{}{}, err
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			if err := d.own.SetPEM(certPEM, keyPEM, d.ca.CertPEM, d.crl); err != nil {
				return struct{}{}, err
			}
			d.ownCert, d.ownKey = certPEM, keyPEM
			return struct{}{}, nil
		}, backoff.WithBackOff(backoff.NewConstantBackOff(time.Minute)), backoff.WithMaxElapsedTime(0),
			backoff.WithNotify(func(err error, next time.Duration) {
				d.log.Error("renewing the director certificate failed; retrying", "err", err, "in", next)
			}))
		if err != nil {
			return // ctx ended
		}
		d.log.Info("director certificate renewed", "not_after", d.own.Current().Leaf.NotAfter)
	}
}

// renewAt is when a certificate should be renewed: two thirds of its life.
func renewAt(nb, na time.Time) time.Time { return nb.Add(na.Sub(nb) * 2 / 3) }

func hostSANs(extra []string) ([]string, []net.IP) {
	dns := []string{"localhost"}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if h, err := os.Hostname(); err == nil && h != "" {
		dns = append(dns, h)
	}
	for _, h := range extra {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else if h != "" {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

func sanitizeID(s string) string {
	b := []byte(s)
	out := b[:0]
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
			out = append(out, c)
		case c >= 'A' && c <= 'Z':
			out = append(out, c+32)
		case c == '.' || c == '_':
			out = append(out, '-')
		}
	}
	if len(out) == 0 {
		return "director"
	}
	return string(out)
}
