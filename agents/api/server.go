package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paddock/agents/agentkit"
	"paddock/agents/allocator"
	"paddock/engine"
	"paddock/engine/service"
	"paddock/stunnel"
)

// Default listen addresses.
const (
	DefaultAddr    = "127.0.0.1:12400"
	DefaultTLSAddr = "127.0.0.1:12443"
)

// RequestTimeout bounds the time one request may wait on ZooKeeper.
const RequestTimeout = 15 * time.Second

// Config configures the API agent.
type Config struct {
	// Store is connected as the admin role (the API's ZooKeeper identity).
	Store *engine.Store
	// Addr is the HTTP listen address ("" disables HTTP).
	Addr string
	// TLSAddr with CertFile and KeyFile serves HTTPS ("" disables it).
	TLSAddr           string
	CertFile, KeyFile string
	// MetricsAddr serves /metrics /healthz /readyz ("" disables).
	MetricsAddr string
	// NodeLoader is this host's admin-role certificate: with it the API
	// reads instances' logs from their allocators' node tunnels
	// (GET /deployments/{id}/logs); without it that endpoint answers 503.
	NodeLoader *stunnel.Loader
	// CertDir holds this host's role certificates, which the doctor
	// checks for expiry (<state-dir>/tls; "" skips that check).
	CertDir string
	Logger  *slog.Logger
	// Registry (default: a new agentkit registry).
	Registry *prometheus.Registry
	// OnListen is called with the bound addresses once serving (tests,
	// `paddock up`).
	OnListen func(httpAddr, httpsAddr string)
}

// server is the HTTP layer over the service.
type server struct {
	svc     *service.Service
	log     *slog.Logger
	metrics *metrics
	docJSON []byte
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_api_requests_total",
			Help: "API requests by route, method and status code."}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paddock_api_request_duration_seconds",
			Help: "API request latency by route.", Buckets: prometheus.DefBuckets}, []string{"route"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return m
}

// cacheReadCounters count the reads of one deployment (GET, activity)
// the service's watch cache answered and those that went to ZooKeeper
// (the cache was stale, or lacked the deployment).
func cacheReadCounters(svc *service.Service) []prometheus.Collector {
	const name, help = "paddock_api_cache_reads_total", "Reads of one deployment (GET, activity) answered from the API's watch cache (source=cache) or from ZooKeeper (source=zookeeper)."
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{"source": "cache"}},
			func() float64 { served, _ := svc.CacheReadStats(); return float64(served) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{"source": "zookeeper"}},
			func() float64 { _, missed := svc.CacheReadStats(); return float64(missed) }),
	}
}

// NewHandler returns the API's HTTP handler over svc (tests and `paddock
// up` mount it directly).
func NewHandler(svc *service.Service, log *slog.Logger, reg prometheus.Registerer) (http.Handler, error) {
	if log == nil {
		log = slog.Default()
	}
	doc, err := openAPIJSON()
	if err != nil {
		return nil, err
	}
	s := &server{svc: svc, log: log.With("agent", "api"), metrics: newMetrics(reg), docJSON: doc}
	if reg != nil {
		reg.MustRegister(newHeadroomCollector(svc, s.log))
		reg.MustRegister(cacheReadCounters(svc)...)
	}
	mux := http.NewServeMux()
	for _, rt := range routes() {
		mux.Handle(rt.method+" "+Prefix+rt.path, s.wrap(rt))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			s.metrics.requests.WithLabelValues("unknown", r.Method, "405").Inc()
			w.Header().Set("Allow", strings.Join(allow, ", "))
			s.writeError(w, r, &service.Error{Kind: service.KindInvalid, Code: "method.not_allowed",
				Message: fmt.Sprintf("method %s is not allowed on %s (allowed: %s): see %s/api-docs", r.Method, r.URL.Path, strings.Join(allow, ", "), Prefix)})
			return
		}
		s.metrics.requests.WithLabelValues("unknown", r.Method, "404").Inc()
		s.writeError(w, r, apiErr(service.KindNotFound, "route.not_found",
			fmt.Sprintf("no such endpoint %s %s: see %s/api-docs", r.Method, r.URL.Path, Prefix)))
	})
	return mux, nil
}

// allowedMethods lists every method a route of mux serves r's path with (the
// Allow header of a 405).
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pat := mux.Handler(r2); pat != "/" && pat != "" {
			allow = append(allow, m)
		}
	}
	return allow
}

// wrap authenticates, authorises, limits the body, runs the handler and
// records metrics.
func (s *server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		var p service.Principal
		defer func() {
			d := time.Since(start)
			s.metrics.requests.WithLabelValues(rt.path, r.Method, strconv.Itoa(rec.status)).Inc()
			s.metrics.duration.WithLabelValues(rt.path).Observe(d.Seconds())
			// Never the Authorization header: only who it authenticated.
			s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
				"principal", string(p.Actor()), "duration", d)
		}()
		r.Body = http.MaxBytesReader(rec, r.Body, MaxBodyBytes+1)
		// No request waits on ZooKeeper for ever: past the deadline it is
		// answered 503 (retry). A stream (logs) lasts as long as its
		// client; its own ZooKeeper reads are bounded by the service.
		if !streamingRoutes[rt.path] {
			ctx, cancel := context.WithTimeout(r.Context(), RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		if rt.access != accessPublic {
			var err error
			if p, err = s.authenticate(r.Context(), r); err != nil {
				s.writeError(rec, r, err)
				return
			}
			if !allowed(p.Role, rt.access) {
				s.writeError(rec, r, forbidden(p, rt.access))
				return
			}
		}
		status, body, err := rt.handle(s, r, p)
		if err != nil {
			s.writeError(rec, r, err)
			return
		}
		if e, ok := body.(withETag); ok {
			rec.Header().Set("ETag", e.etag)
			body = e.v
		}
		if ls, ok := body.(logStream); ok {
			defer ls.rc.Close()
			rec.Header().Set("Content-Type", "text/plain; charset=utf-8")
			rec.Header().Set("X-Content-Type-Options", "nosniff")
			rec.WriteHeader(status)
			ls.copyTo(rec, w)
			return
		}
		if raw, ok := body.([]byte); ok {
			rec.Header().Set("Content-Type", "application/json")
			rec.WriteHeader(status)
			_, _ = rec.Write(raw)
			return
		}
		writeJSON(rec, status, body)
	})
}

// streamingRoutes answer with a stream that lasts as long as the client
// (no RequestTimeout).
var streamingRoutes = map[string]bool{"/deployments/{id}/logs": true}

// logStream makes wrap copy a text stream to the client, flushing as it
// goes.
type logStream struct{ rc io.ReadCloser }

func (l logStream) copyTo(w io.Writer, orig http.ResponseWriter) {
	fl, _ := orig.(http.Flusher)
	allocator.CopyFlushing(w, fl, l.rc)
}

// withETag makes wrap send an ETag header (the resource version, for
// If-Match) with the body.
type withETag struct {
	v    any
	etag string
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Run serves the API until ctx ends, then shuts down gracefully.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Store == nil {
		return errors.New("api: no store: connect as the admin role first")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	reg := cfg.Registry
	if reg == nil {
		reg = agentkit.NewRegistry()
	}
	// Lists and placement checks read a watch cache (reads of one
	// deployment still go to ZooKeeper); it stops with ctx.
	cache := service.NewCache(cfg.Store)
	go func() {
		if err := cache.Run(ctx); err != nil {
			log.Warn("api cache stopped; reads go to ZooKeeper", "err", err)
		}
	}()
	opts := []service.Option{service.WithLogger(log), service.WithCache(cache), service.WithCertDir(cfg.CertDir)}
	if cfg.NodeLoader != nil {
		lc, err := allocator.NewLogClient(cfg.NodeLoader, log)
		if err != nil {
			return err
		}
		opts = append(opts, service.WithNodeLogs(lc))
	}
	svc := service.New(cfg.Store, opts...)
	h, err := NewHandler(svc, log, reg)
	if err != nil {
		return err
	}
	if cfg.Addr == "" && cfg.TLSAddr == "" {
		return errors.New("api: neither --addr nor --tls-addr given: nothing to serve")
	}
	var cert tls.Certificate
	if cfg.TLSAddr != "" {
		if cfg.CertFile == "" || cfg.KeyFile == "" {
			return errors.New("api: --tls-addr needs --tls-cert and --tls-key")
		}
		if cert, err = tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile); err != nil {
			return fmt.Errorf("api: TLS certificate %s / key %s: %w", cfg.CertFile, cfg.KeyFile, err)
		}
	}
	st := agentkit.NewStatus()
	if _, err := agentkit.Serve(ctx, cfg.MetricsAddr, reg, st, log, nil); err != nil {
		return err
	}
	var servers []*http.Server
	closeAll := func() {
		for _, srv := range servers {
			_ = srv.Close()
		}
	}
	errc := make(chan error, 2)
	var httpAddr, httpsAddr string
	if cfg.Addr != "" {
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return fmt.Errorf("api: listen on %s: %w (choose another with --addr)", cfg.Addr, err)
		}
		httpAddr = ln.Addr().String()
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
		servers = append(servers, srv)
		go func() { errc <- srv.Serve(ln) }()
	}
	if cfg.TLSAddr != "" {
		ln, err := tls.Listen("tcp", cfg.TLSAddr, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		if err != nil {
			closeAll()
			return fmt.Errorf("api: listen on %s: %w (choose another with --tls-addr)", cfg.TLSAddr, err)
		}
		httpsAddr = ln.Addr().String()
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
		servers = append(servers, srv)
		go func() { errc <- srv.Serve(ln) }()
	}
	st.SetReady(true)
	log.Info("api serving", "http", httpAddr, "https", httpsAddr)
	if cfg.OnListen != nil {
		cfg.OnListen(httpAddr, httpsAddr)
	}
	zkDone := make(chan struct{})
	go watchStore(ctx, cfg.Store, st, zkDone)
	pruneDone := make(chan struct{})
	go pruneRequests(ctx, svc, log, pruneDone)
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("api: server stopped: %w", err)
		}
	}
	st.SetReady(false)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.Shutdown(sctx)
	}
	<-zkDone
	<-pruneDone
	log.Info("api stopped")
	return runErr
}

// pruneRequests forgets create request ids older than
// service.RequestTTL, every ten minutes (several APIs may do it at once:
// deletes are by version and a lost race is harmless).
func pruneRequests(ctx context.Context, svc *service.Service, log *slog.Logger, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		if n, err := svc.PruneRequests(ctx, service.RequestTTL); err != nil && ctx.Err() == nil {
			log.Warn("pruning request ids failed; retrying in 10 minutes", "err", err)
		} else if n > 0 {
			log.Info("request ids pruned", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// watchStore reports the ZooKeeper session on the health endpoint.
func watchStore(ctx context.Context, store *engine.Store, st *agentkit.Status, done chan<- struct{}) {
	defer close(done)
	ch, cancel := store.Subscribe()
	defer cancel()
	for {
		if store.Connected() {
			st.Set("zookeeper", "")
		} else {
			st.Set("zookeeper", "no ZooKeeper session: requests answer 503 until it is back")
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}
