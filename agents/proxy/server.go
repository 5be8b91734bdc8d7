package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// server is the proxy's HTTP/1.1 front end: one goroutine per client
// connection, a request head parsed in place, keep-alive, pipelining
// served in order, and the timeouts that keep slow clients from holding
// the proxy (header, body, idle, write).
type server struct {
	p        *Proxy
	ln       net.Listener
	tls      bool
	mu       sync.Mutex
	conns    map[*clientConn]struct{}
	closing  atomic.Bool
	wg       sync.WaitGroup
	connPool sync.Pool
	// accepting is false when event loops accept on ln: the server only
	// serves the connections they hand over.
	accepting bool
}

// clientConn is one client connection and its reusable buffers.
type clientConn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	req    request
	out    []byte // response head being built
	log    []byte // access log line being built
	stamp  stamp
	remote string
	ip     string
	// peer is the client's address: the socket's, or a PROXY header's.
	peer netip.Addr
	// ppDone: the PROXY header was read (or is not expected).
	ppDone bool
	tls    bool
	// wdl is the connection's current write deadline.
	wdl time.Time
	// idle is set while waiting for the next request (shutdown closes
	// idle connections at once).
	idle atomic.Bool
}

func newServer(p *Proxy, ln net.Listener, isTLS bool) *server {
	return &server{p: p, ln: ln, tls: isTLS, conns: map[*clientConn]struct{}{}, accepting: true}
}

// serve accepts until the listener closes.
func (s *server) serve() error {
	if !s.accepting {
		return nil
	}
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				delay = min(max(delay*2, 5*time.Millisecond), time.Second)
				s.p.log.Warn("accept failed; retrying", "err", err, "in", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if cc := s.track(nc); cc != nil {
			go s.serveConn(cc)
		}
	}
}

func (s *server) get(nc net.Conn) *clientConn {
	cc, _ := s.connPool.Get().(*clientConn)
	if cc == nil {
		cc = &clientConn{br: bufio.NewReaderSize(nil, 16<<10), bw: bufio.NewWriterSize(nil, 16<<10)}
	}
	cc.nc = nc
	cc.br.Reset(nc)
	cc.bw.Reset(nc)
	cc.remote = nc.RemoteAddr().String()
	cc.ip = clientIP(cc.remote)
	cc.peer = peerOf(nc.RemoteAddr())
	cc.ppDone = !s.p.cfg.ProxyProtocol
	cc.tls = s.tls
	cc.idle.Store(false)
	cc.wdl = time.Time{}
	return cc
}

// shutdown stops accepting, closes idle connections, lets active ones
// finish their request until ctx ends, then closes the rest.
func (s *server) shutdown(ctx context.Context) {
	s.closing.Store(true)
	s.ln.Close()
	s.mu.Lock()
	for cc := range s.conns {
		if cc.idle.Load() {
			_ = cc.nc.SetReadDeadline(time.Unix(1, 0))
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for cc := range s.conns {
			cc.nc.Close()
		}
		s.mu.Unlock()
		<-done
	}
}

// track registers a new connection (shutdown waits for it); nil when
// the server is closing (the connection is closed).
func (s *server) track(nc net.Conn) *clientConn {
	cc := s.get(nc)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		nc.Close()
		return nil
	}
	s.conns[cc] = struct{}{}
	s.wg.Add(1)
	return cc
}

// adopt serves a connection the event loop hands over with a request it
// does not serve itself (see loopServer): out holds answer bytes not yet
// written to the client, buffered the bytes read past req; req, when
// not nil, is the request head already parsed, served first (nil: the
// head is still in buffered).
func (s *server) adopt(nc net.Conn, buffered, out []byte, req *request, from origin) {
	if len(buffered) > 0 {
		nc = &prefixConn{Conn: nc, prefix: buffered}
	}
	cc := s.track(nc)
	if cc == nil {
		return
	}
	cc.peer, cc.ip, cc.remote, cc.ppDone = from.peer, from.ip, from.remote, true
	if req != nil {
		cc.req = *req
	}
	go func() {
		if len(out) > 0 {
			_ = nc.SetWriteDeadline(time.Now().Add(s.p.cfg.WriteTimeout))
			if _, err := nc.Write(out); err != nil {
				nc.Close()
			}
		}
		s.serveConnFrom(cc, req != nil)
	}()
}

// origin is where a handed-over connection comes from.
type origin struct {
	peer       netip.Addr
	ip, remote string
}

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

func (s *server) serveConn(cc *clientConn) { s.serveConnFrom(cc, false) }

// serveConnFrom serves cc until it closes; parsed: cc.req holds a
// request head already read (a connection adopted from the event loop).
func (s *server) serveConnFrom(cc *clientConn, parsed bool) {
	p := s.p
	defer func() {
		if v := recover(); v != nil {
			p.log.Error("panic serving a client connection", "panic", v, "client", cc.remote)
		}
		cc.nc.Close()
		s.mu.Lock()
		delete(s.conns, cc)
		s.mu.Unlock()
		s.wg.Done()
		cc.nc = nil
		cc.br.Reset(nil)
		cc.bw.Reset(nil)
		if cap(cc.req.buf) <= 64<<10 {
			s.connPool.Put(cc)
		}
	}()
	cfg := &p.cfg
	if !cc.ppDone && !p.readProxy(cc) {
		return
	}
	if tc, ok := cc.nc.(*tls.Conn); ok {
		_ = tc.SetDeadline(time.Now().Add(cfg.ReadHeaderTimeout))
		if err := tc.Handshake(); err != nil {
			p.log.Debug("TLS handshake failed", "client", cc.remote, "err", err)
			return
		}
		_ = tc.SetWriteDeadline(time.Time{})
	}
	first := !parsed
	for {
		if parsed {
			parsed = false
			start := time.Now()
			cc.refreshWriteDeadline(start, cfg.WriteTimeout)
			keep := p.handle(cc, start)
			if err := cc.bw.Flush(); err != nil || !keep || s.closing.Load() {
				return
			}
			continue
		}
		if cc.br.Buffered() == 0 {
			wait := cfg.IdleTimeout
			if first {
				wait = cfg.ReadHeaderTimeout
			}
			cc.idle.Store(true)
			if s.closing.Load() {
				return
			}
			_ = cc.nc.SetReadDeadline(time.Now().Add(wait))
			_, err := cc.br.Peek(1)
			cc.idle.Store(false)
			if err != nil {
				return // closed, idle too long, or shutting down
			}
		}
		// The head usually arrives whole with its first byte; only a
		// partial one needs the (tighter) header deadline.
		if !first && !headBuffered(cc.br) {
			_ = cc.nc.SetReadDeadline(time.Now().Add(cfg.ReadHeaderTimeout))
		}
		start := time.Now()
		if err := readRequest(cc.br, &cc.req, cfg.MaxHeaderBytes); err != nil {
			var he *headError
			if errors.As(err, &he) {
				p.answerBadRequest(cc, he, start)
			} else if isTimeout(err) {
				s.writeSimple(cc, 408, "Request Timeout")
			}
			return
		}
		cc.refreshWriteDeadline(start, cfg.WriteTimeout)
		keep := p.handle(cc, start)
		if err := cc.bw.Flush(); err != nil || !keep || s.closing.Load() {
			return
		}
		first = false
	}
}

// readProxy reads the PROXY header a connection begins with (under
// TLS, from the raw connection) and takes its source address. It
// reports whether the connection may be served.
func (p *Proxy) readProxy(cc *clientConn) bool {
	cc.ppDone = true
	raw := cc.nc
	if tc, ok := raw.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	ap, err := readProxyHeader(raw, p.cfg.ReadHeaderTimeout)
	if err != nil {
		p.met.proxyProto.WithLabelValues("refused").Inc()
		p.log.Debug("connection refused: no valid PROXY header", "client", cc.remote, "err", err)
		return false
	}
	if !p.ppAccepted(cc.peer) {
		p.met.proxyProto.WithLabelValues("untrusted").Inc()
		p.log.Warn("PROXY header from a peer outside --trusted-proxies; connection closed", "client", cc.remote)
		return false
	}
	p.met.proxyProto.WithLabelValues("ok").Inc()
	if ap.IsValid() {
		cc.peer, cc.ip, cc.remote = ap.Addr(), ap.Addr().String(), ap.String()
	}
	return true
}

// refreshWriteDeadline moves the write deadline when half of it is
// used: each response (and each stall of a streamed one) gets between
// d/2 and d to be written.
func (cc *clientConn) refreshWriteDeadline(now time.Time, d time.Duration) {
	if now.After(cc.wdl.Add(-d / 2)) {
		cc.wdl = now.Add(d)
		_ = cc.nc.SetWriteDeadline(cc.wdl)
	}
}

// headBuffered reports whether a whole request head is in the buffer.
func headBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.Contains(b, crlfcrlf) || bytes.Contains(b, lflf)
}

var (
	crlfcrlf = []byte("\r\n\r\n")
	lflf     = []byte("\n\n")
)

func (s *server) writeSimple(cc *clientConn, code int, text string) {
	_ = cc.nc.SetWriteDeadline(time.Now().Add(time.Second))
	cc.bw.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
	cc.bw.Flush()
}

// answerBadRequest answers a malformed request head and closes.
func (p *Proxy) answerBadRequest(cc *clientConn, he *headError, start time.Time) {
	_ = cc.nc.SetWriteDeadline(time.Now().Add(time.Second))
	p.writeError(cc, &reply{he.status, "illegal_argument_exception", he.msg, true})
	cc.bw.Flush()
	p.unknown.inc(he.status)
	if p.access != nil {
		p.logAccess(cc, outcome{code: he.status, err: he.msg}, time.Since(start), "-", nil)
	}
}
