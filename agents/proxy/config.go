package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paddock/agents/agentkit"
	"paddock/engine"
	"paddock/stunnel"
)

// Config is a proxy's configuration. Zero durations take the defaults.
type Config struct {
	// ID names the proxy under /paddock/proxies/<id>.
	ID string
	// HTTPAddr is the plain listener (":9200"); ":0" picks a free port.
	HTTPAddr string
	// HTTPSAddr is the TLS listener (":9243"); empty disables it.
	HTTPSAddr string
	// TLSCertFile and TLSKeyFile hold the 9243 certificate (PEM).
	TLSCertFile string
	TLSKeyFile  string
	// TLSConfig, when set, replaces the files (tests, the director).
	TLSConfig *tls.Config
	// PublicCA, without TLSConfig or files, is the platform CA (with its
	// key): the HTTPS listener mints a certificate per deployment host
	// name from it (publiccert.go). `paddock up` sets it.
	PublicCA *stunnel.CA
	// BackendLoader holds this proxy's proxy-role certificate, the
	// platform CA and CRL (director.TLSFiles(stateDir, "proxy"); the
	// proxy role's AgentTLS.Loader renews it). Backends whose
	// Backend.TLS is true (allocator node tunnels, :9400) are dialled
	// with mutual TLS: the loader's current certificate is presented,
	// the server must be a certificate of the CA admitted by
	// BackendAllow, and the SNI is stunnel.BackendSNI(InstanceID) so the
	// tunnel picks the node. Reloads apply to new connections at once;
	// pooled connections live on. Wins over BackendTLS.
	BackendLoader *stunnel.Loader
	// BackendAllow admits tunnel servers (default: role allocator).
	BackendAllow stunnel.Allow
	// BackendTLS, without BackendLoader, is a fixed client config for
	// TLS backends (verified as it says; SNI from the address when it
	// names none): for backends outside the platform's PKI.
	BackendTLS *tls.Config
	// Domain: deployments are <id>.<Domain>. Empty follows the
	// platform's domain (/paddock/config, kept in the disk cache),
	// "localhost" until it is known.
	Domain string

	// Store is an open store of the proxy role. When nil, Connect is
	// called (and retried in the background) so that a proxy started
	// while ZooKeeper is down serves from its disk cache.
	Store   *engine.Store
	Connect func(ctx context.Context) (*engine.Store, error)

	// TrustedProxies are the load balancers whose X-Forwarded-For is
	// believed (the rightmost untrusted entry is the client), and whose
	// PROXY protocol headers are (all peers when empty).
	TrustedProxies []netip.Prefix
	// ProxyProtocol: every connection begins with a PROXY protocol v2
	// header (HAProxy send-proxy-v2, AWS NLB) whose source address is
	// the client's. Connections without one are closed.
	ProxyProtocol bool

	// CacheFile persists the routing table (empty: no disk cache).
	CacheFile string

	// MetricsAddr serves /metrics, /healthz, /readyz (empty: none).
	MetricsAddr string
	// Pprof adds /debug/pprof/ to the metrics endpoint.
	Pprof    bool
	Registry *prometheus.Registry
	Status   *agentkit.Status
	Logger   *slog.Logger
	// AccessLog gets one JSON line per request (nil: no access log),
	// in slog's JSON shape. Wrap files with NewBufferedWriter: a write
	// syscall per request costs a sixth of the throughput. Writes are
	// concurrent: the writer must be safe for that (BufferedWriter is).
	AccessLog io.Writer

	// EventLoops is the number of epoll event loops serving the plain
	// listener (0: one per GOMAXPROCS; negative: none, one goroutine per
	// connection instead). Linux only; elsewhere always goroutines.
	EventLoops int

	// ConnectTimeout bounds a dial to a backend (default 2s).
	ConnectTimeout time.Duration
	// UpstreamTimeout bounds each wait on a backend: for the answer's
	// head after the request was sent (past it the client gets 504 and
	// the backend is marked down until a probe answers), and each stall
	// of a body in either direction (default 60s).
	UpstreamTimeout time.Duration
	// PauseTimeout bounds how long a request waits on a paused route
	// (default 30s); past it the client gets 503.
	PauseTimeout time.Duration
	// ProbeInterval is the period of probes of a down backend (1s).
	ProbeInterval time.Duration
	// Client side timeouts against slow clients: ReadHeaderTimeout
	// bounds a request head (10s; past it the connection closes, after
	// a 408 when the head was begun), ReadTimeout a request body (5m),
	// WriteTimeout each response and each stall of a streamed one
	// (10m; refreshed when half used, so between 5 and 10 minutes),
	// IdleTimeout a keep-alive connection between requests (90s).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// MaxHeaderBytes bounds request heads (default 64 KiB; past it 431).
	MaxHeaderBytes int
	// MaxIdlePerBackend bounds each keep-alive pool (default 512).
	MaxIdlePerBackend int
	// BackendIdleTimeout closes pooled connections unused this long
	// (default 30s), before backends time them out themselves.
	BackendIdleTimeout time.Duration
	// ShutdownGrace is how long in-flight requests may finish on
	// shutdown (default 10s).
	ShutdownGrace time.Duration
	// RegisterInterval refreshes the registration record (10s).
	RegisterInterval time.Duration
}

// loops is the number of event loops to run.
func (c *Config) loops() int {
	if c.EventLoops < 0 {
		return 0
	}
	if c.EventLoops == 0 {
		return runtime.GOMAXPROCS(0)
	}
	return c.EventLoops
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ConnectTimeout, 2*time.Second)
	def(&c.UpstreamTimeout, 60*time.Second)
	def(&c.PauseTimeout, 30*time.Second)
	def(&c.ProbeInterval, time.Second)
	def(&c.ReadHeaderTimeout, 10*time.Second)
	def(&c.ReadTimeout, 5*time.Minute)
	def(&c.WriteTimeout, 10*time.Minute)
	def(&c.IdleTimeout, 90*time.Second)
	def(&c.ShutdownGrace, 10*time.Second)
	def(&c.RegisterInterval, 10*time.Second)
	def(&c.BackendIdleTimeout, 30*time.Second)
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if c.MaxIdlePerBackend <= 0 {
		c.MaxIdlePerBackend = 512
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Registry == nil {
		c.Registry = agentkit.NewRegistry()
	}
	if c.Status == nil {
		c.Status = agentkit.NewStatus()
	}
	if c.BackendAllow.Empty() {
		c.BackendAllow = stunnel.Allow{Roles: []string{"allocator"}}
	}
	if c.ID == "" {
		c.ID = "proxy-" + engine.RandomToken(4)
	}
}
