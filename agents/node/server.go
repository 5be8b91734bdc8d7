package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"paddock/agents/node/meta"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"paddock/agents/node/dsl"
	"paddock/agents/node/eserr"
	"paddock/agents/node/shard"
)

// Kinds a node can serve as.
const (
	KindElasticsearch = "elasticsearch"
	KindKibana        = "kibana"
)

// HealthPath is the readiness/health endpoint the allocator probes.
const HealthPath = "/_paddock/health"

// ProductHeader is what Elastic's clients check on every response.
const ProductHeader = "X-Elastic-Product"

// MaxContentLength is http.max_content_length: larger bodies are a 413.
const MaxContentLength = 100 << 20

// Config configures a node.
type Config struct {
	// Name is the node name (the instance id when run by an allocator).
	Name string
	// ClusterName is the cluster name (the deployment id).
	ClusterName string
	// Version is the version the node reports (baked into the image).
	Version string
	// Kind is elasticsearch (default) or kibana.
	Kind string
	// DataDir holds node.db and indices/ (created if missing).
	DataDir string
	// SnapshotRoot is where fs repository locations must live. A location
	// "/snapshots/x" is read as <SnapshotRoot>/x, so the same requests
	// work inside a container (root /snapshots) and outside.
	SnapshotRoot string
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// PeerClient forwards replicated writes (default: 5s timeout client
	// whose transport reaches <instance>.peer.paddock copies through
	// PeerEgress).
	PeerClient *http.Client
	// PeerEgress is the unix socket of the allocator's egress (the
	// allocator mounts it at ContainerEgressSocket): copies whose URL
	// host ends in PeerHostSuffix are reached through it. "": none.
	PeerEgress string
	// SecurityFile is the credentials file (default: SecurityFileName
	// in DataDir). While it is absent and RequireSecurity is false, the
	// node serves without authentication.
	SecurityFile string
	// RequireSecurity refuses every request (401) until the credentials
	// file exists: nodes run by an allocator are never open.
	RequireSecurity bool
}

// Server is a node: an http.Handler over its indices.
type Server struct {
	cfg    Config
	log    *slog.Logger
	db     *store
	start  time.Time
	routes *router

	imu     sync.RWMutex
	indices map[string]*shard.Shard
	// closed (under imu): Close has closed the indices; a request still
	// in flight may not open a new one (its files would stay locked).
	closed bool
	// meta holds aliases and index templates.
	meta *meta.Registry

	scrolls *dsl.Scrolls
	snaps   *snapshots
	// dv bounds the doc values the indices' searches keep decoded.
	dv *dsl.DocValuesBudget

	client *http.Client
	egress *egressDialer

	sec  *security
	keys *apiKeyStore

	repl *repl

	metricsHandler http.Handler // MetricsPath
}

// NewServer opens the node's data directory and returns the node. Close
// releases the data files.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Kind == "" {
		cfg.Kind = KindElasticsearch
	}
	if cfg.Kind != KindElasticsearch && cfg.Kind != KindKibana {
		return nil, fmt.Errorf("unknown node kind %q: use elasticsearch or kibana", cfg.Kind)
	}
	if cfg.Name == "" {
		h, _ := os.Hostname()
		cfg.Name = h
	}
	if cfg.ClusterName == "" {
		cfg.ClusterName = "paddock"
	}
	if cfg.Version == "" {
		cfg.Version = "8.17.0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.DataDir == "" {
		return nil, errors.New("node data directory is empty: pass --data-dir")
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "indices"), 0o755); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w (mount a writable volume there)", cfg.DataDir, err)
	}
	db, err := openStore(filepath.Join(cfg.DataDir, "node.db"))
	if err != nil {
		return nil, err
	}
	reg, err := meta.Open(filepath.Join(cfg.DataDir, "index-meta.json"))
	if err != nil {
		db.close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("node", cfg.Name), db: db, start: time.Now(), client: cfg.PeerClient,
		indices: map[string]*shard.Shard{}, meta: reg, snaps: newSnapshots(),
		dv: dsl.NewDocValuesBudget(dsl.DefaultDocValuesBytes)}
	s.scrolls = dsl.NewScrollsHeldBy(s.scrollHolder)
	s.egress = &egressDialer{socket: cfg.PeerEgress}
	if s.client == nil {
		s.client = &http.Client{Timeout: 5 * time.Second, Transport: peerTransport(s.egress)}
	}
	s.repl = newRepl(s.client)
	if s.cfg.SecurityFile == "" {
		s.cfg.SecurityFile = filepath.Join(cfg.DataDir, SecurityFileName)
	}
	s.keys = &apiKeyStore{db: db.db}
	s.sec = newSecurity(s.cfg.SecurityFile, cfg.RequireSecurity, s.keys)
	if err := s.sec.refresh(true); err != nil {
		s.Close()
		return nil, err
	}
	s.metricsHandler = s.newMetricsHandler()
	s.routes = s.buildRoutes()
	if err := s.openIndices(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.loadRouting(); err != nil {
		s.Close()
		return nil, fmt.Errorf("read the replication routing: %w", err)
	}
	return s, nil
}

// Close releases the data files.
func (s *Server) Close() error {
	s.repl.stop()
	s.repl.wg.Wait()
	s.snaps.close()
	s.imu.Lock()
	defer s.imu.Unlock()
	s.closed = true
	var first error
	for name, sh := range s.indices {
		if err := sh.Close(); err != nil && first == nil {
			first = fmt.Errorf("close index [%s]: %w", name, err)
		}
	}
	s.indices = map[string]*shard.Shard{}
	s.scrolls.Close()
	if err := s.db.close(); err != nil && first == nil {
		first = err
	}
	return first
}

// Config returns the node's configuration.
func (s *Server) Config() Config { return s.cfg }

// Serve serves the node on ln until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	lctx, lcancel := context.WithTimeout(context.Background(), 2*time.Second)
	s.Leave(lctx)
	lcancel()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

func errf(status int, typ, format string, args ...any) *eserr.Error {
	return eserr.New(status, typ, format, args...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(ProductHeader, "Elasticsearch")
	if r.Method == http.MethodHead {
		// Answers to HEAD carry the status only.
		w = headWriter{w}
	}
	r, err := s.guard(w, r)
	if err == nil {
		err = s.routes.serve(w, r)
	}
	if err != nil {
		e := eserr.From(err)
		if e.Status >= 500 {
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		eserr.Write(w, e)
	}
}

type headWriter struct{ http.ResponseWriter }

func (h headWriter) Write(b []byte) (int, error) { return len(b), nil }

func methodNotAllowed(r *http.Request, allowed []string) error {
	return errf(http.StatusMethodNotAllowed, "method_not_allowed_exception", "Incorrect HTTP method for uri [%s] and method [%s], allowed: [%s]",
		r.URL.RequestURI(), r.Method, strings.Join(allowed, ", "))
}

func (s *Server) root(w http.ResponseWriter, r *http.Request, _ params) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"name":         s.cfg.Name,
		"cluster_name": s.cfg.ClusterName,
		"cluster_uuid": s.db.uuid(),
		"version": map[string]any{
			"number":                              s.cfg.Version,
			"build_flavor":                        "default",
			"build_type":                          "docker",
			"build_hash":                          "paddock",
			"build_date":                          "2025-01-01T00:00:00.000Z",
			"build_snapshot":                      false,
			"lucene_version":                      "9.12.0",
			"minimum_wire_compatibility_version":  "7.17.0",
			"minimum_index_compatibility_version": "7.0.0",
		},
		"tagline": "You Know, for Search",
	})
	return nil
}

func (s *Server) kibanaStatus(w http.ResponseWriter, r *http.Request, _ params) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"name":    s.cfg.Name,
		"uuid":    s.db.uuid(),
		"version": map[string]any{"number": s.cfg.Version, "build_flavor": "paddock"},
		"status": map[string]any{
			"overall": map[string]any{"level": "available", "summary": "All services are available"},
		},
	})
	return nil
}

// Health is the cluster health as this node sees it: a primary per
// index here, and as many replicas as there are peers to hold them.
type Health struct {
	Status                                             string
	Nodes, Primaries, Active, Initializing, Unassigned int
	ActivePercent                                      float64
}

func (s *Server) health(ctx context.Context, expr string) (Health, error) {
	names, err := s.resolve(expr, true)
	if err != nil {
		return Health{}, err
	}
	if g := s.group(ctx); g != nil {
		return s.routedHealth(g, names), nil
	}
	copies := 0 // standalone: no copy holds its replicas
	h := Health{Status: "green", Nodes: copies + 1, ActivePercent: 100}
	for _, name := range names {
		sh := s.index(name)
		if sh == nil {
			continue
		}
		st := sh.Settings()
		h.Primaries += st.Shards
		replicas := min(st.Replicas, copies)
		h.Active += st.Shards * (1 + replicas)
		h.Unassigned += st.Shards * (st.Replicas - replicas)
	}
	if h.Unassigned > 0 {
		h.Status = "yellow"
	}
	if h.Active+h.Unassigned > 0 {
		h.ActivePercent = 100 * float64(h.Active) / float64(h.Active+h.Unassigned)
	}
	return h, nil
}

func (s *Server) now() time.Time { return time.Now() }

// formatPercent prints a percentage as _cat does ("100.0%").
func formatPercent(p float64) string { return strconv.FormatFloat(p, 'f', 1, 64) + "%" }

// clusterHealth: GET /_cluster/health[/{index}], with wait_for_status
// (up to timeout, 30s by default; 408 with timed_out when not reached).
func (s *Server) clusterHealth(w http.ResponseWriter, r *http.Request, p params) error {
	q := r.URL.Query()
	want := q.Get("wait_for_status")
	if want != "" && rank(want) == 0 {
		return eserr.BadRequest("unknown wait_for_status [%s]: use green, yellow or red", want)
	}
	timeout := 30 * time.Second
	if v := q.Get("timeout"); v != "" {
		d, err := shard.ParseDuration(v)
		if err != nil {
			return eserr.BadRequest("failed to parse setting [timeout] with value [%s] as a time value: use a number and a unit such as 30s or 500ms", v)
		}
		timeout = d
	}
	deadline := time.Now().Add(timeout)
	var h Health
	timedOut := false
	for {
		var err error
		if h, err = s.health(r.Context(), p["index"]); err != nil {
			return err
		}
		if want == "" || rank(h.Status) >= rank(want) {
			break
		}
		if !time.Now().Before(deadline) {
			timedOut = true
			break
		}
		// Health changes only with peers and indices; look again soon.
		select {
		case <-r.Context().Done():
			return r.Context().Err()
		case <-time.After(min(100*time.Millisecond, time.Until(deadline))):
		}
	}
	code := http.StatusOK
	if timedOut {
		code = http.StatusRequestTimeout
	}
	writeJSON(w, code, map[string]any{
		"cluster_name":                     s.cfg.ClusterName,
		"status":                           h.Status,
		"timed_out":                        timedOut,
		"number_of_nodes":                  h.Nodes,
		"number_of_data_nodes":             h.Nodes,
		"active_primary_shards":            h.Primaries,
		"active_shards":                    h.Active,
		"relocating_shards":                0,
		"initializing_shards":              h.Initializing,
		"unassigned_shards":                h.Unassigned,
		"unassigned_primary_shards":        0,
		"delayed_unassigned_shards":        0,
		"number_of_pending_tasks":          0,
		"number_of_in_flight_fetch":        0,
		"task_max_waiting_in_queue_millis": 0,
		"active_shards_percent_as_number":  h.ActivePercent,
	})
	return nil
}

func rank(status string) int {
	switch status {
	case "green":
		return 3
	case "yellow":
		return 2
	case "red":
		return 1
	}
	return 0
}

func (s *Server) paddockHealth(w http.ResponseWriter, r *http.Request, _ params) error {
	if err := s.db.ping(); err != nil {
		return errf(http.StatusServiceUnavailable, "node_not_ready", "data store unavailable: %v", err)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status": "green", "name": s.cfg.Name, "kind": s.cfg.Kind, "version": s.cfg.Version,
		"uptime_seconds": int(time.Since(s.start).Seconds()),
	})
	return nil
}

func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxContentLength {
		return nil, tooLong(r.ContentLength)
	}
	// Sized from Content-Length when known: io.ReadAll grows from 512
	// bytes by copying, two to three times a bulk body's size.
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(r.Body, MaxContentLength+1))
	if err != nil {
		return nil, errf(http.StatusBadRequest, "parse_exception", "read request body: %v", err)
	}
	b := buf.Bytes()
	if b == nil {
		b = []byte{} // as io.ReadAll answers an empty body
	}
	if len(b) > MaxContentLength {
		return nil, tooLong(int64(len(b)))
	}
	return b, nil
}

func tooLong(n int64) error {
	return errf(http.StatusRequestEntityTooLarge, "content_too_long_exception",
		"request content length [%d] is larger than the maximum allowed content length (http.max_content_length) [%d]", n, MaxContentLength)
}

// decodeBody decodes a JSON body into v (an empty body leaves v as is).
func decodeBody(r *http.Request, v any) error {
	_, err := readJSON(r, v)
	return err
}

// readJSON reads the body and decodes it into v, returning the bytes
// too (writes forward them to the peers as received).
func readJSON(r *http.Request, v any) ([]byte, error) {
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	return b, decodeJSON(b, v)
}

func decodeJSON(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return errf(http.StatusBadRequest, "parse_exception", "request body is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errf(http.StatusBadRequest, "parse_exception", "request body has data after its end")
	}
	return nil
}
