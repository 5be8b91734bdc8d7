package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Kinds a node can serve as.
const (
	KindElasticsearch = "elasticsearch"
	KindKibana        = "kibana"
)

// HealthPath is the readiness/health endpoint the allocator probes.
const HealthPath = "/_paddock/health"

// ReplicaHeader marks a write forwarded by a peer: it is applied locally
// and not forwarded again (no loops).
const ReplicaHeader = "X-Paddock-Replica"

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
	// DataDir holds node.db (created if missing).
	DataDir string
	// SnapshotRoot is where fs repository locations must live. A location
	// "/snapshots/x" is read as <SnapshotRoot>/x, so the same requests
	// work inside a container (root /snapshots) and outside.
	SnapshotRoot string
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// PeerClient forwards replicated writes (default: 5s timeout client).
	PeerClient *http.Client
}

// Server is a node: an http.Handler over its bbolt store.
type Server struct {
	cfg   Config
	log   *slog.Logger
	db    *store
	start time.Time

	peersMu sync.RWMutex
	peers   []string
	client  *http.Client
}

// NewServer opens the node's data directory and returns the node. Close
// releases the data file.
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
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w (mount a writable volume there)", cfg.DataDir, err)
	}
	db, err := openStore(filepath.Join(cfg.DataDir, "node.db"))
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("node", cfg.Name), db: db, start: time.Now(), client: cfg.PeerClient}
	if s.client == nil {
		s.client = &http.Client{Timeout: 5 * time.Second}
	}
	s.peers = db.peers()
	return s, nil
}

// Close releases the data file.
func (s *Server) Close() error { return s.db.close() }

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
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	return nil
}

// esError is an Elasticsearch-shaped error.
type esError struct {
	Status int
	Type   string
	Reason string
	Index  string
}

func (e *esError) Error() string { return e.Type + ": " + e.Reason }

func errf(status int, typ, format string, args ...any) *esError {
	return &esError{Status: status, Type: typ, Reason: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	var e *esError
	if !errors.As(err, &e) {
		e = errf(http.StatusInternalServerError, "exception", "%v", err)
	}
	cause := map[string]any{"type": e.Type, "reason": e.Reason}
	if e.Index != "" {
		cause["index"] = e.Index
	}
	body := map[string]any{"type": e.Type, "reason": e.Reason, "root_cause": []any{cause}}
	if e.Index != "" {
		body["index"] = e.Index
	}
	writeJSON(w, e.Status, map[string]any{"error": body, "status": e.Status})
}

// ServeHTTP routes the Elasticsearch-compatible subset.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.Trim(r.URL.Path, "/")
	var parts []string
	if p != "" {
		parts = strings.Split(p, "/")
	}
	if err := s.route(w, r, parts); err != nil {
		writeErr(w, err)
	}
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, parts []string) error {
	m := r.Method
	if len(parts) == 0 {
		if m != http.MethodGet && m != http.MethodHead {
			return methodNotAllowed(r)
		}
		return s.root(w)
	}
	switch parts[0] {
	case "_paddock":
		return s.paddockRoute(w, r, parts[1:])
	case "api":
		if s.cfg.Kind == KindKibana && len(parts) == 2 && parts[1] == "status" && m == http.MethodGet {
			return s.kibanaStatus(w)
		}
		return errf(http.StatusNotFound, "resource_not_found_exception", "no handler for [%s %s]", m, r.URL.Path)
	}
	if s.cfg.Kind == KindKibana {
		return errf(http.StatusNotFound, "resource_not_found_exception", "this is a kibana node: no handler for [%s %s]", m, r.URL.Path)
	}
	switch parts[0] {
	case "_cluster":
		if len(parts) == 2 && parts[1] == "health" && m == http.MethodGet {
			return s.clusterHealth(w)
		}
	case "_bulk":
		if len(parts) == 1 && (m == http.MethodPost || m == http.MethodPut) {
			return s.bulk(w, r, "")
		}
	case "_snapshot":
		return s.snapshotRoute(w, r, parts[1:])
	case "_cat":
		if len(parts) == 2 && parts[1] == "indices" && m == http.MethodGet {
			return s.catIndices(w, r)
		}
	case "_count":
		if len(parts) == 1 && (m == http.MethodGet || m == http.MethodPost) {
			return s.count(w, r, "")
		}
	case "_search":
		if len(parts) == 1 && (m == http.MethodGet || m == http.MethodPost) {
			return s.search(w, r, "")
		}
	case "_refresh", "_flush":
		return s.ack(w, r, map[string]any{"_shards": map[string]int{"total": 1, "successful": 1, "failed": 0}})
	default:
		return s.indexRoute(w, r, parts)
	}
	return errf(http.StatusNotFound, "resource_not_found_exception", "no handler for [%s %s]", m, r.URL.Path)
}

func methodNotAllowed(r *http.Request) error {
	return errf(http.StatusMethodNotAllowed, "method_not_allowed", "Incorrect HTTP method for uri [%s] and method [%s]", r.URL.Path, r.Method)
}

func (s *Server) ack(w http.ResponseWriter, r *http.Request, v any) error {
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) root(w http.ResponseWriter) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"name":         s.cfg.Name,
		"cluster_name": s.cfg.ClusterName,
		"cluster_uuid": s.db.uuid(),
		"version": map[string]any{
			"number":       s.cfg.Version,
			"build_flavor": "paddock",
			"build_type":   "scratch",
		},
		"tagline": "You Know, for Search",
	})
	return nil
}

func (s *Server) kibanaStatus(w http.ResponseWriter) error {
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

func (s *Server) clusterHealth(w http.ResponseWriter) error {
	n := len(s.Peers()) + 1
	idx, err := s.db.indices()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"cluster_name":          s.cfg.ClusterName,
		"status":                "green",
		"timed_out":             false,
		"number_of_nodes":       n,
		"number_of_data_nodes":  n,
		"active_primary_shards": len(idx),
		"active_shards":         len(idx) * n,
		"relocating_shards":     0,
		"initializing_shards":   0,
		"unassigned_shards":     0,
	})
	return nil
}

// paddockRoute: /_paddock/health, /_paddock/peers.
func (s *Server) paddockRoute(w http.ResponseWriter, r *http.Request, parts []string) error {
	if len(parts) == 1 && parts[0] == "health" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		if err := s.db.ping(); err != nil {
			return errf(http.StatusServiceUnavailable, "node_not_ready", "data store unavailable: %v", err)
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"status": "green", "name": s.cfg.Name, "kind": s.cfg.Kind, "version": s.cfg.Version,
			"uptime_seconds": int(time.Since(s.start).Seconds()),
		})
		return nil
	}
	if len(parts) == 1 && parts[0] == "peers" {
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, map[string]any{"peers": s.Peers()})
			return nil
		case http.MethodPut, http.MethodPost:
			var body struct {
				Peers []string `json:"peers"`
			}
			if err := decodeBody(r, &body); err != nil {
				return err
			}
			for _, p := range body.Peers {
				if !strings.HasPrefix(p, "http://") && !strings.HasPrefix(p, "https://") {
					return errf(http.StatusBadRequest, "illegal_argument_exception", "peer %q must be an http:// or https:// URL", p)
				}
			}
			if err := s.SetPeers(body.Peers); err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true, "peers": s.Peers()})
			return nil
		}
	}
	return errf(http.StatusNotFound, "resource_not_found_exception", "no handler for [%s %s]", r.Method, r.URL.Path)
}

// Peers returns the replication peers.
func (s *Server) Peers() []string {
	s.peersMu.RLock()
	defer s.peersMu.RUnlock()
	return append([]string(nil), s.peers...)
}

// SetPeers replaces the replication peers (kept across restarts).
func (s *Server) SetPeers(peers []string) error {
	clean := make([]string, 0, len(peers))
	for _, p := range peers {
		if p = strings.TrimRight(strings.TrimSpace(p), "/"); p != "" {
			clean = append(clean, p)
		}
	}
	if err := s.db.setPeers(clean); err != nil {
		return err
	}
	s.peersMu.Lock()
	s.peers = clean
	s.peersMu.Unlock()
	return nil
}

// replicate forwards a write to every peer unless it came from one.
// It returns the number of peers that failed.
func (s *Server) replicate(r *http.Request, method, path string, body []byte) (ok, failed int) {
	if r.Header.Get(ReplicaHeader) != "" {
		return 0, 0
	}
	peers := s.Peers()
	if len(peers) == 0 {
		return 0, 0
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, p := range peers {
		wg.Add(1)
		go func(p string) {
			defer wg.Done()
			// Forwarded writes carry explicit ids, so a retry is
			// idempotent: retry a transient failure (a peer busy
			// starting, a reset connection) before reporting the shard
			// failed.
			// The whole replication of one write is bounded (2 s), so
			// a partitioned peer costs a write at most that.
			rctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			var err error
			for attempt, backoff := 0, 50*time.Millisecond; attempt < 4; attempt, backoff = attempt+1, backoff*3 {
				if err = s.forward(rctx, p, method, path, body); err == nil || rctx.Err() != nil {
					break
				}
				select {
				case <-time.After(backoff):
				case <-rctx.Done():
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				s.log.Warn("replication to peer failed", "peer", p, "path", path, "err", err)
				return
			}
			ok++
		}(p)
	}
	wg.Wait()
	return ok, failed
}

func (s *Server) forward(ctx context.Context, peer, method, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, peer+path, strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set(ReplicaHeader, s.cfg.Name)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("peer answered %s", resp.Status)
	}
	return nil
}

func shards(peersOK, peersFailed int) map[string]int {
	return map[string]int{"total": 1 + peersOK + peersFailed, "successful": 1 + peersOK, "failed": peersFailed}
}

const maxBody = 64 << 20

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, errf(http.StatusBadRequest, "parse_exception", "read request body: %v", err)
	}
	if len(b) > maxBody {
		return nil, errf(http.StatusRequestEntityTooLarge, "content_too_long_exception", "request body larger than %d bytes", maxBody)
	}
	return b, nil
}

func decodeBody(r *http.Request, v any) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errf(http.StatusBadRequest, "parse_exception", "request body is not valid JSON: %v", err)
	}
	return nil
}
