package allocator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paddock/agents/node"
	"paddock/engine"
	"paddock/stunnel"
)

// The peer egress (docs/architecture.md, "Node tunnels"): node-to-node
// traffic leaves a node only through its own allocator. Each node
// container gets a unix socket of its own (the host directory
// <state-dir>/egress/<instance> bind-mounted read-only at
// /run/paddock), so the allocator knows which instance, and so which
// deployment, every connection comes from, and nothing but that
// container (and the host) can reach it. The node asks with an HTTP
// CONNECT for <peer instance>.peer.paddock with the peer's allocator
// tunnel in X-Paddock-Via; the allocator opens an mTLS connection
// there with its allocator certificate and the SNI
// <peer>.<caller's deployment>.peer.paddock (stunnel.PeerSNI), answers
// 200 and forwards bytes. The receiving allocator admits allocator
// certificates only with that SNI and only to an instance of that
// deployment (peerAdmit).

// egressDirName is under the allocator's state dir.
const egressDirName = "egress"

// maxUnixPath is the longest unix socket path Linux accepts.
const maxUnixPath = 107

// egress serves the per-instance sockets.
type egress struct {
	dir    string
	ctx    context.Context
	client *stunnel.Client
	log    *slog.Logger
	m      *egressMetrics

	mu sync.Mutex
	ls map[string]*egressListener // instance id → its socket
}

type egressListener struct {
	dep    string
	ln     net.Listener
	cancel context.CancelFunc
	done   chan struct{}
}

type egressMetrics struct {
	conns   *prometheus.CounterVec
	active  prometheus.Gauge
	bytes   *prometheus.CounterVec
	sockets prometheus.Gauge
	refused *prometheus.CounterVec
}

func newEgressMetrics(reg prometheus.Registerer) *egressMetrics {
	m := &egressMetrics{
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_allocator_egress_connections_total",
			Help: "Node-to-node connections asked of the egress, by result (ok, bad_request, unreachable, refused)."}, []string{"result"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_allocator_egress_active_connections",
			Help: "Node-to-node connections the egress forwards now."}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_allocator_egress_bytes_total",
			Help: "Bytes the egress forwarded, by direction (out: from this host's nodes, in: to them)."}, []string{"direction"}),
		sockets: prometheus.NewGauge(prometheus.GaugeOpts{Name: "paddock_allocator_egress_sockets",
			Help: "Egress sockets open (one per node container)."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_allocator_peer_refused_total",
			Help: "Node-to-node connections this allocator's tunnel refused, by reason (cross_deployment, unknown_instance, not_peer)."}, []string{"reason"}),
	}
	reg.MustRegister(m.conns, m.active, m.bytes, m.sockets, m.refused)
	return m
}

func newEgress(ctx context.Context, cfg Config, log *slog.Logger, m *egressMetrics) (*egress, error) {
	dir := filepath.Join(cfg.StateDir, egressDirName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("peer egress directory %s: %w (is --state-dir writable?)", dir, err)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	c, err := stunnel.NewClient(stunnel.ClientConfig{Options: stunnel.Options{Name: "allocator-" + cfg.ID + "-egress", Loader: cfg.TunnelLoader,
		Allow: stunnel.Allow{Roles: engine.RoleNames([]engine.Role{engine.RoleAllocator})}, Metrics: cfg.TunnelMetrics}, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("peer egress: %w", err)
	}
	return &egress{dir: dir, ctx: ctx, client: c, log: log.With("part", "egress"), m: m, ls: map[string]*egressListener{}}, nil
}

// prepare makes sure instance iid of deployment dep has its socket and
// returns the host directory to mount at /run/paddock.
func (e *egress) prepare(iid, dep string) (string, error) {
	if iid == "" || strings.ContainsAny(iid, "/.") || dep == "" {
		return "", fmt.Errorf("peer egress: bad instance %q or deployment %q", iid, dep)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	dir := filepath.Join(e.dir, iid)
	if l := e.ls[iid]; l != nil {
		if l.dep == dep {
			return dir, nil
		}
		e.closeLocked(iid)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("peer egress directory %s: %w", dir, err)
	}
	sock := filepath.Join(dir, filepath.Base(node.ContainerEgressSocket))
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("remove the stale egress socket %s: %w", sock, err)
	}
	ln, err := listenUnix(dir, sock)
	if err != nil {
		return "", fmt.Errorf("peer egress: listen on %s: %w", sock, err)
	}
	// Nodes run as a numeric non-root user; the directory is theirs
	// alone (one container mounts it).
	if err := os.Chmod(sock, 0o666); err != nil {
		ln.Close()
		return "", fmt.Errorf("peer egress: chmod %s: %w", sock, err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	l := &egressListener{dep: dep, ln: ln, cancel: cancel, done: make(chan struct{})}
	e.ls[iid] = l
	e.m.sockets.Set(float64(len(e.ls)))
	go e.serve(ctx, l, iid)
	return dir, nil
}

// listenUnix listens on sock (in dir). A path over Linux's limit for
// socket names (a deep --state-dir) is bound through the directory's
// descriptor (/proc/self/fd/N/<name>), and the listener then leaves
// the file to its caller to remove.
func listenUnix(dir, sock string) (net.Listener, error) {
	if len(sock) <= maxUnixPath {
		return net.Listen("unix", sock)
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	ln, err := net.Listen("unix", fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), filepath.Base(sock)))
	if err != nil {
		return nil, err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	return ln, nil
}

// sync keeps a socket for exactly the instances of live (id →
// deployment): after a restart the containers still running get theirs
// again; an instance gone loses it.
func (e *egress) sync(live map[string]string) {
	e.mu.Lock()
	var gone []string
	for iid := range e.ls {
		if _, ok := live[iid]; !ok {
			gone = append(gone, iid)
		}
	}
	for _, iid := range gone {
		e.closeLocked(iid)
		_ = os.RemoveAll(filepath.Join(e.dir, iid))
	}
	var missing []string
	for iid, dep := range live {
		if l := e.ls[iid]; l == nil || l.dep != dep {
			missing = append(missing, iid)
		}
	}
	e.mu.Unlock()
	for _, iid := range missing {
		if _, err := e.prepare(iid, live[iid]); err != nil {
			e.log.Warn("peer egress socket not served: this node cannot reach its peers", "instance", iid, "err", err)
		}
	}
}

func (e *egress) closeLocked(iid string) {
	if l := e.ls[iid]; l != nil {
		l.cancel()
		l.ln.Close()
		delete(e.ls, iid)
		e.m.sockets.Set(float64(len(e.ls)))
	}
}

// close stops every socket and waits for their accept loops.
func (e *egress) close() {
	e.mu.Lock()
	var ls []*egressListener
	for iid, l := range e.ls {
		ls = append(ls, l)
		e.closeLocked(iid)
	}
	e.mu.Unlock()
	for _, l := range ls {
		<-l.done
	}
}

func (e *egress) serve(ctx context.Context, l *egressListener, iid string) {
	defer close(l.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				e.log.Warn("peer egress socket stopped", "instance", iid, "err", err)
			}
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.handle(ctx, c, iid, l.dep)
		}()
	}
}

// handle serves one CONNECT from instance src of deployment dep.
func (e *egress) handle(ctx context.Context, c net.Conn, src, dep string) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		e.m.conns.WithLabelValues("bad_request").Inc()
		c.Close()
		return
	}
	fail := func(result string, code int, msg string) {
		e.m.conns.WithLabelValues(result).Inc()
		fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", code, http.StatusText(code), len(msg), msg)
		c.Close()
	}
	host, _, err := net.SplitHostPort(req.Host)
	if err != nil {
		host = req.Host
	}
	target, ok := strings.CutSuffix(host, node.PeerHostSuffix)
	via := req.Header.Get(node.ViaHeader)
	if req.Method != http.MethodConnect || !ok || target == "" || strings.Contains(target, ".") || via == "" {
		fail("bad_request", http.StatusBadRequest, fmt.Sprintf("the egress forwards only CONNECT <instance>%s with %s: <allocator tunnel>, got %s %s", node.PeerHostSuffix, node.ViaHeader, req.Method, req.Host))
		return
	}
	if _, _, err := net.SplitHostPort(via); err != nil {
		fail("bad_request", http.StatusBadRequest, fmt.Sprintf("%s %q is not host:port", node.ViaHeader, via))
		return
	}
	tc, err := e.client.DialSNI(ctx, via, stunnel.PeerSNI(target, dep))
	if err != nil {
		result, code := "unreachable", http.StatusBadGateway
		if r := stunnel.Reason(err); r == stunnel.ReasonRefusedByPeer || r == stunnel.ReasonNotAllowed {
			result, code = "refused", http.StatusForbidden
		}
		e.log.Warn("peer egress: the peer's allocator tunnel did not take the connection", "instance", src, "deployment", dep, "peer", target, "via", via, "err", err)
		fail(result, code, err.Error())
		return
	}
	if _, err := fmt.Fprint(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		e.m.conns.WithLabelValues("unreachable").Inc()
		tc.Close()
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	e.m.conns.WithLabelValues("ok").Inc()
	e.m.active.Inc()
	defer e.m.active.Dec()
	var in net.Conn = c
	if br.Buffered() > 0 {
		in = &readerConn{Conn: c, r: br}
	}
	stunnel.Pipe(in, tc, 0, e.m.bytes.WithLabelValues("out"), e.m.bytes.WithLabelValues("in"), ctx.Done())
}

// readerConn reads what a bufio.Reader holds first.
type readerConn struct {
	net.Conn
	r *bufio.Reader
}

func (r *readerConn) Read(p []byte) (int, error) { return r.r.Read(p) }

// CloseWrite half-closes the unix socket (stunnel.Pipe's EOF path).
func (r *readerConn) CloseWrite() error {
	if cw, ok := r.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// peerAdmit is the tunnel's check of certificates against the SNI
// (after the handshake's certificate check): allocator certificates
// (node to node traffic) only with <instance>.<deployment>.peer.paddock,
// other roles never with it.
func (a *agent) peerAdmit(p stunnel.Peer) error {
	_, _, peer := stunnel.PeerFromSNI(p.ServerName)
	allocatorRole := p.Identity.Role == string(engine.RoleAllocator)
	switch {
	case allocatorRole && !peer:
		a.egressM.refused.WithLabelValues("not_peer").Inc()
		return fmt.Errorf("allocator %s sent server name %q: allocator certificates reach nodes only as peers (<instance>.<deployment>.peer.paddock)", p.Identity.ID, p.ServerName)
	case !allocatorRole && peer:
		a.egressM.refused.WithLabelValues("not_peer").Inc()
		return fmt.Errorf("%s sent the peer server name %q: only allocators' egress may", p.Identity, p.ServerName)
	}
	return nil
}

// peerAdmitName checks a peer SNI on the ClientHello: the instance must
// run here, for the deployment the calling allocator names (the
// deployment of the node it calls for). Other names pass to the
// certificate checks.
func (a *agent) peerAdmitName(serverName string) error {
	target, dep, ok := stunnel.PeerFromSNI(serverName)
	if !ok {
		return nil
	}
	a.routesMu.RLock()
	w, known := a.workloads[target]
	_, running := a.routes[target]
	a.routesMu.RUnlock()
	if !known || !running {
		a.egressM.refused.WithLabelValues("unknown_instance").Inc()
		return fmt.Errorf("no running instance %s here (asked for deployment %s)", target, dep)
	}
	if w.Deployment != dep {
		a.egressM.refused.WithLabelValues("cross_deployment").Inc()
		a.log.Warn("NODE-TO-NODE CONNECTION ACROSS DEPLOYMENTS REFUSED", "from_deployment", dep,
			"instance", target, "instance_deployment", w.Deployment)
		return fmt.Errorf("instance %s is not of deployment %s: nodes reach only their own deployment's copies", target, dep)
	}
	return nil
}
