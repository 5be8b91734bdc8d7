// Package agentkit is what every agent shares: its own Prometheus
// registry and the HTTP status endpoint (/metrics, /healthz, /readyz) on
// --metrics-addr. It owns nothing else.
package agentkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Status is an agent's health, served on /healthz (JSON) and /readyz.
type Status struct {
	mu     sync.RWMutex
	ready  bool
	checks map[string]string // name → "" when ok, else the problem
}

// NewStatus returns a not-yet-ready status.
func NewStatus() *Status { return &Status{checks: map[string]string{}} }

// SetReady marks the agent ready (serving) or not.
func (s *Status) SetReady(r bool) {
	s.mu.Lock()
	s.ready = r
	s.mu.Unlock()
}

// Set records a named check: problem "" means healthy.
func (s *Status) Set(name, problem string) {
	s.mu.Lock()
	s.checks[name] = problem
	s.mu.Unlock()
}

// Snapshot returns readiness and checks.
func (s *Status) Snapshot() (bool, map[string]string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]string, len(s.checks))
	for k, v := range s.checks {
		out[k] = v
	}
	return s.ready, out
}

// NewRegistry returns a registry with Go and process collectors. Each
// agent has its own so several can share a process (paddock up).
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Serve runs the status endpoint on addr until ctx ends. An empty addr
// serves nothing. It returns the bound address through bound (may be nil)
// so tests can pass ":0".
func Serve(ctx context.Context, addr string, reg *prometheus.Registry, st *Status, log *slog.Logger, extra map[string]http.Handler) (string, error) {
	if addr == "" {
		return "", nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("metrics address %s: %w (choose another with --metrics-addr)", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ready, checks := st.Snapshot()
		code := http.StatusOK
		status := "ok"
		for _, p := range checks {
			if p != "" {
				status = "degraded"
			}
		}
		if !ready {
			status, code = "starting", http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(healthBody(status, checks))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if ready, _ := st.Snapshot(); !ready {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	for p, h := range extra {
		mux.Handle(p, h)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("status endpoint stopped", "err", err)
		}
	}()
	return ln.Addr().String(), nil
}

// healthBody is /healthz's JSON: {"status": …, "checks": {name: "ok" or
// what is wrong}} (encoding/json escapes, never Go's).
func healthBody(status string, checks map[string]string) any {
	out := make(map[string]string, len(checks))
	for k, v := range checks {
		out[k] = orOK(v)
	}
	return struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}{status, out}
}

func orOK(v string) string {
	if v == "" {
		return "ok"
	}
	return v
}
