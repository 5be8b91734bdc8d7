package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"paddock/stunnel"
)

// backend is one node address, shared by every table version that names
// it, so its health, outstanding count and connection pool survive
// routing-table swaps. A backend no table names any more is drained:
// idle connections close at once, busy ones when their request ends.
type backend struct {
	key  string // address, plus "+tls/<instance>" for tunnel addresses
	addr string
	tls  bool
	// instance is the instance id a tunnel backend routes to (its SNI).
	instance string
	// ap is addr when it is a literal IP address and port (the event
	// loops dial those themselves).
	ap netip.AddrPort
	// gone is set when the backend is drained (event loops close their
	// idle connections to it).
	gone atomic.Bool

	outstanding atomic.Int64
	down        atomic.Bool
	// failures counts consecutive connection failures and timeouts.
	failures atomic.Int32

	mu      sync.Mutex
	idle    []*upConn
	closed  bool
	probing bool
	downWhy string
	downAt  time.Time
	// tlsConfig is the client config of a tunnel backend (lazily built).
	tlsConfig *tls.Config
}

// upConn is one keep-alive connection to a backend.
type upConn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	b      *backend
	reused bool
	idleAt time.Time
}

// newBackend names a node: a plain address, or (isTLS) an allocator
// tunnel address and the instance behind it. Several instances share a
// tunnel address, and each gets its own keep-alive pool: a tunnel
// connection is routed to one instance by the SNI of its handshake.
func newBackend(addr string, isTLS bool, instance string) *backend {
	key := addr
	if isTLS {
		key += "+tls/" + instance
	}
	ap, _ := netip.ParseAddrPort(addr)
	return &backend{key: key, addr: addr, tls: isTLS, instance: instance, ap: ap}
}

// pool is the dialing side shared by backends.
type pool struct {
	dialer    net.Dialer
	tlsConfig *tls.Config
	// nodeTLS is the reloading mTLS client config of the allocator
	// tunnels (Config.BackendLoader); it wins over tlsConfig.
	nodeTLS     *tls.Config
	maxIdle     int
	bufSize     int
	readerPool  sync.Pool
	writerPool  sync.Pool
	onStateFunc func(b *backend, down bool, why string)
}

func newPool(connectTimeout time.Duration, tlsConfig, nodeTLS *tls.Config, maxIdle int) *pool {
	p := &pool{dialer: net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}, tlsConfig: tlsConfig, nodeTLS: nodeTLS,
		maxIdle: maxIdle, bufSize: 16 << 10}
	return p
}

// get returns an idle connection or dials a new one.
func (p *pool) get(ctx context.Context, b *backend) (*upConn, error) {
	b.mu.Lock()
	if n := len(b.idle); n > 0 {
		c := b.idle[n-1]
		b.idle[n-1] = nil
		b.idle = b.idle[:n-1]
		b.mu.Unlock()
		c.reused = true
		return c, nil
	}
	b.mu.Unlock()
	return p.dial(ctx, b)
}

func (p *pool) dial(ctx context.Context, b *backend) (*upConn, error) {
	nc, err := p.dialer.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if b.tls {
		tc := tls.Client(nc, p.tlsFor(b))
		hctx, cancel := context.WithTimeout(ctx, p.dialer.Timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	c := &upConn{nc: nc, b: b}
	if r, ok := p.readerPool.Get().(*bufio.Reader); ok {
		r.Reset(nc)
		c.br = r
	} else {
		c.br = bufio.NewReaderSize(nc, p.bufSize)
	}
	if w, ok := p.writerPool.Get().(*bufio.Writer); ok {
		w.Reset(nc)
		c.bw = w
	} else {
		c.bw = bufio.NewWriterSize(nc, p.bufSize)
	}
	return c, nil
}

// tlsFor is the client TLS config of a tunnel backend. With a
// BackendLoader: the reloading mTLS config (current proxy certificate,
// the server verified as an allocator of the platform CA at every
// handshake) sending BackendSNI(instance), so the allocator's tunnel
// picks the node. Else BackendTLS with the server name taken from the
// address when it names none.
func (p *pool) tlsFor(b *backend) *tls.Config {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tlsConfig != nil {
		return b.tlsConfig
	}
	if p.nodeTLS != nil {
		cfg := p.nodeTLS.Clone()
		cfg.ServerName = stunnel.BackendSNI(b.instance)
		b.tlsConfig = cfg
		return cfg
	}
	cfg := p.tlsConfig
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		host, _, err := net.SplitHostPort(b.addr)
		if err != nil {
			host = b.addr
		}
		cfg.ServerName = host
	}
	b.tlsConfig = cfg
	return cfg
}

// put returns a connection after a complete exchange; reusable false
// (or a drained backend, or a full pool) closes it.
func (p *pool) put(c *upConn, reusable bool) {
	b := c.b
	if reusable {
		b.mu.Lock()
		if !b.closed && len(b.idle) < p.maxIdle {
			c.idleAt = time.Now()
			b.idle = append(b.idle, c)
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
	}
	p.close(c)
}

func (p *pool) close(c *upConn) {
	c.nc.Close()
	c.br.Reset(nil)
	c.bw.Reset(nil)
	p.readerPool.Put(c.br)
	p.writerPool.Put(c.bw)
}

// reap closes connections idle longer than maxIdle: the pool is LIFO,
// so the oldest sit at the bottom, and a backend's own idle timeout
// would otherwise turn them stale.
func (p *pool) reap(b *backend, maxIdle time.Duration) int {
	cutoff := time.Now().Add(-maxIdle)
	b.mu.Lock()
	n := 0
	for n < len(b.idle) && b.idle[n].idleAt.Before(cutoff) {
		n++
	}
	old := append([]*upConn(nil), b.idle[:n]...)
	b.idle = append(b.idle[:0], b.idle[n:]...)
	b.mu.Unlock()
	for _, c := range old {
		p.close(c)
	}
	return n
}

// drain closes a backend no route names any more.
func (p *pool) drain(b *backend) int {
	b.gone.Store(true)
	b.mu.Lock()
	b.closed = true
	idle := b.idle
	b.idle = nil
	b.mu.Unlock()
	for _, c := range idle {
		p.close(c)
	}
	return len(idle)
}

// idleCount is the number of pooled connections (tests, metrics).
func (b *backend) idleCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.idle)
}

// markDown records a connection failure or timeout. It returns true when
// the backend went from up to down (the caller starts a probe).
func (b *backend) markDown(why string) bool {
	b.failures.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.downWhy = why
	if b.down.Load() || b.closed {
		return false
	}
	b.down.Store(true)
	b.downAt = time.Now()
	if b.probing {
		return false
	}
	b.probing = true
	return true
}

func (b *backend) markUp() {
	b.failures.Store(0)
	b.mu.Lock()
	b.down.Store(false)
	b.downWhy = ""
	b.mu.Unlock()
}

func (b *backend) reason() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.downWhy
}

func (b *backend) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}
