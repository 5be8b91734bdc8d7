package allocator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"paddock/engine"
	"paddock/stunnel"
)

// LogsBackend is the tunnel backend name (SNI LogsBackend.node.paddock)
// of the allocator's log endpoint; instance ids are 32 hex characters,
// so it names no node.
const LogsBackend = "logs"

// LogRoles may read logs through the tunnel: the admin role, which the
// API and the console hold after checking the operator's own authority.
// Node backends stay for proxies and the constructor only.
var LogRoles = []engine.Role{engine.RoleAdmin}

// LogReader is a runtime that can read a workload's log (Docker's
// json-file log, stdout and stderr together).
type LogReader interface {
	Logs(ctx context.Context, w Workload, o engine.LogOptions) (io.ReadCloser, error)
}

// previousTailLines is how much of a container's log is kept when the
// allocator removes it to create its successor.
const previousTailLines = 500

// logDir holds the previous containers' tails (<StateDir>/logs).
func (a *agent) logDir() string { return filepath.Join(a.cfg.StateDir, "logs") }

func (a *agent) previousTailPath(iid string) string {
	return filepath.Join(a.logDir(), "allocator-"+a.cfg.ID+"-"+iid+".previous.log")
}

// keepPreviousTail saves the last lines of a workload's log before the
// allocator removes it to create its successor (a recreate): the
// instance's log stays readable across containers.
func (a *agent) keepPreviousTail(ctx context.Context, w Workload) {
	lr, ok := a.rt.(LogReader)
	if !ok || w.Instance == "" {
		return
	}
	rc, err := lr.Logs(ctx, w, engine.LogOptions{Tail: previousTailLines})
	if err != nil {
		a.log.Debug("keep the previous container's log tail", "instance", w.Instance, "err", err)
		return
	}
	defer rc.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "--- previous container %s (version %s, ended %s) ---\n", short(w.ID), w.Version, time.Now().UTC().Format(time.RFC3339))
	if _, err := io.Copy(&b, io.LimitReader(rc, 4<<20)); err != nil {
		a.log.Debug("keep the previous container's log tail", "instance", w.Instance, "err", err)
	}
	if err := os.MkdirAll(a.logDir(), 0o700); err == nil {
		err = os.WriteFile(a.previousTailPath(w.Instance), []byte(b.String()), 0o600)
		if err != nil {
			a.log.Warn("keep the previous container's log tail", "instance", w.Instance, "err", err)
		}
	}
}

// logWorkloads maps instance id → its current workload, for the log
// endpoint (kept with the tunnel routes).
func (a *agent) logWorkload(iid string) (Workload, bool) {
	a.routesMu.RLock()
	defer a.routesMu.RUnlock()
	w, ok := a.workloads[iid]
	return w, ok
}

// serveLogs answers GET /logs/<instance>?tail=N&follow=true&since=10m:
// the previous container's kept tail (when there is one), then the
// current container's log, followed when asked.
func (a *agent) serveLogs(w http.ResponseWriter, r *http.Request) {
	iid := r.PathValue("instance")
	o, err := parseLogQuery(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	prev, _ := os.ReadFile(a.previousTailPath(filepath.Base(iid)))
	wl, ok := a.logWorkload(iid)
	if !ok && len(prev) == 0 {
		http.Error(w, fmt.Sprintf("allocator %s runs no instance %s", a.cfg.ID, iid), http.StatusNotFound)
		return
	}
	lr, canRead := a.rt.(LogReader)
	if ok && !canRead {
		http.Error(w, fmt.Sprintf("the %s runtime of allocator %s keeps no logs", a.rt.Name(), a.cfg.ID), http.StatusNotImplemented)
		return
	}
	var rc io.ReadCloser
	if ok {
		if rc, err = lr.Logs(r.Context(), wl, o); err != nil {
			http.Error(w, fmt.Sprintf("read the log of instance %s (container %s): %v", iid, short(wl.ID), err), http.StatusBadGateway)
			return
		}
		defer rc.Close()
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if len(prev) > 0 {
		_, _ = w.Write(lastLines(prev, tailOf(o)))
		if ok {
			fmt.Fprintf(w, "--- current container %s ---\n", short(wl.ID))
		}
	}
	if rc == nil {
		return
	}
	CopyFlushing(w, fl, rc)
}

// CopyFlushing copies src to w, flushing after every read (a followed
// log reaches the reader line by line).
func CopyFlushing(w io.Writer, fl http.Flusher, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

func tailOf(o engine.LogOptions) int {
	if o.Tail <= 0 {
		return engine.DefaultLogTail
	}
	return o.Tail
}

// lastLines returns the header line and the last n lines of a kept tail.
func lastLines(b []byte, n int) []byte {
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) <= n+1 {
		return b
	}
	out := lines[0] + strings.Join(lines[len(lines)-n:], "")
	return []byte(out)
}

// LogQuery renders options as the log endpoint's query string.
func LogQuery(o engine.LogOptions) string {
	q := "tail=" + strconv.Itoa(tailOf(o))
	if o.Follow {
		q += "&follow=true"
	}
	if o.Since > 0 {
		q += "&since=" + o.Since.String()
	}
	return q
}

func parseLogQuery(r *http.Request) (engine.LogOptions, error) {
	var o engine.LogOptions
	q := r.URL.Query()
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			return o, fmt.Errorf("tail must be a number of lines from 1 to 100000, got %q", v)
		}
		o.Tail = n
	}
	if v := q.Get("follow"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("follow must be true or false, got %q", v)
		}
		o.Follow = b
	}
	if v := q.Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return o, fmt.Errorf("since must be a positive duration such as 10m, got %q", v)
		}
		o.Since = d
	}
	return o, nil
}

// logEndpoint is the in-process HTTP server behind the tunnel's logs
// backend: connections reach it through net.Pipe, never a port.
type logEndpoint struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (a *agent) startLogEndpoint(ctx context.Context) *logEndpoint {
	e := &logEndpoint{conns: make(chan net.Conn), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /logs/{instance}", a.serveLogs)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() { _ = srv.Serve(e) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return e
}

// dial opens a connection to the endpoint.
func (e *logEndpoint) dial(ctx context.Context) (net.Conn, error) {
	c1, c2 := net.Pipe()
	select {
	case e.conns <- c2:
		return c1, nil
	case <-e.done:
	case <-ctx.Done():
	}
	c1.Close()
	c2.Close()
	return nil, errors.New("the allocator's log endpoint is closed")
}

func (e *logEndpoint) Accept() (net.Conn, error) {
	select {
	case c := <-e.conns:
		return c, nil
	case <-e.done:
		return nil, net.ErrClosed
	}
}

func (e *logEndpoint) Close() error {
	e.once.Do(func() { close(e.done) })
	return nil
}

func (e *logEndpoint) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "allocator-logs" }

// tunnelTarget routes a tunnelled connection: the logs backend for the
// roles of LogRoles, a node for the others (stunnel.SNIRouter).
func (a *agent) tunnelTarget(logs *logEndpoint) stunnel.TargetFunc {
	nodes := stunnel.SNIRouter(a.routeOf)
	return func(ctx context.Context, p stunnel.Peer) (net.Conn, error) {
		name, _ := stunnel.BackendFromSNI(p.ServerName)
		logRole := false
		for _, r := range LogRoles {
			logRole = logRole || p.Identity.Role == string(r)
		}
		if name == LogsBackend {
			if !logRole {
				return nil, fmt.Errorf("client %s may not read logs (roles %s only)", p.Identity, engine.RoleNames(LogRoles))
			}
			return logs.dial(ctx)
		}
		if logRole {
			return nil, fmt.Errorf("client %s may read logs only, not reach node %q", p.Identity, name)
		}
		if p.Identity.Role == string(engine.RoleAllocator) {
			// Admitted by peerAdmit: <instance>.<deployment>.peer.paddock.
			target, _, ok := stunnel.PeerFromSNI(p.ServerName)
			addr, running := a.routeOf(target)
			if !ok || !running {
				return nil, fmt.Errorf("allocator %s: no running peer instance %q here", p.Identity.ID, target)
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}
		return nodes(ctx, p)
	}
}
