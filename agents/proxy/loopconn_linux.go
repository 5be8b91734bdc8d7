//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The event loop's client connections: a state machine per connection
// (head, send, response head, response body, close), over the shared
// parser and forwarding code (request.go, forward.go, handler.go).

// headComplete reports whether b holds a whole request head as
// readRequest reads it (up to two empty lines, the request line, header
// lines, an empty line), or enough for readRequest to refuse it.
func headComplete(b []byte) bool {
	i := 0
	for n := 0; ; n++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return false
		}
		empty := j == 0 || j == 1 && b[i] == '\r'
		i += j + 1
		if !empty {
			break
		}
		if n >= 2 {
			return true // readRequest refuses a third empty line
		}
	}
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return false
		}
		if j == 0 || j == 1 && b[i] == '\r' {
			return true
		}
		i += j + 1
	}
}

// respHeadComplete reports whether b holds a whole response head after
// any 1xx interim answers (readResponseHead skips those).
func respHeadComplete(b []byte) bool {
	for {
		i := 0
		status := b
		for {
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				return false
			}
			if j == 0 || j == 1 && b[i] == '\r' {
				i += j + 1
				break
			}
			i += j + 1
		}
		if len(status) < 12 || status[9] != '1' {
			return true
		}
		b = b[i:]
	}
}

// lconn is a client connection served by a loop.
type lconn struct {
	l      *evloop
	fd     int
	rd     fdReader
	br     *bufio.Reader
	out    []byte
	outOff int
	wready bool
	closed bool
	state  int
	first  bool

	req    request
	log    []byte
	stamp  stamp
	ip     string
	remote string
	// peer is the client's address (the socket's, or a PROXY header's);
	// needPP: a PROXY protocol v2 header is expected first.
	peer   netip.Addr
	needPP bool

	// rdl bounds the wait for the client's bytes (idle, head, body),
	// wdl each stall of output to it; unix ns, 0 for none.
	rdl     int64
	rdlHead bool
	wdl     int64
	// linger: after the answer, shut the write side and read what the
	// client still sends for a while before closing (closing with
	// unread bytes would reset the connection, and the client could
	// lose the answer; net/http and nginx linger too).
	linger bool

	// The request being served.
	start    time.Time
	o        outcome
	tg       Target
	ms       []*member
	exclude  *backend
	b        *backend // counted in b.outstanding
	be       *bconn
	sendLeft int64
	sent     time.Time
	rh       respHead
	keep     bool
	framing  int
	bodyLeft int64
	ck       chunkReader
}

func (c *lconn) pending() int { return len(c.out) - c.outOff }

func (c *lconn) onEvent(ev uint32) {
	noteEvents(ev, &c.rd, &c.wready)
	c.step()
}

// step moves the connection on as far as its sockets allow. Output is
// written when the connection has to wait (so a response head and body
// leave in one write), and again while writing lets it move on.
func (c *lconn) step() {
	for !c.closed {
		if c.advance() {
			continue
		}
		if c.closed || c.pending() == 0 {
			return
		}
		before := c.pending()
		if !c.flush() || c.pending() == before {
			return
		}
	}
}

// advance runs the current state; false when it waits.
func (c *lconn) advance() bool {
	switch c.state {
	case csHead:
		return c.pending() < outHigh && c.readHead()
	case csSend:
		return c.send()
	case csRespHead:
		return c.respHead()
	case csRespBody:
		return c.respBody()
	case csClose:
		if c.pending() > 0 {
			return false
		}
		if c.linger {
			c.startLinger()
			return true
		}
		c.close()
	case csLinger:
		c.drainLinger()
	}
	return false
}

// flush writes pending output; false when the connection failed.
func (c *lconn) flush() bool {
	if c.pending() == 0 {
		return true
	}
	before := c.outOff
	if err := writeOut(c.fd, &c.out, &c.outOff, &c.wready); err != nil {
		if c.state == csSend || c.state == csRespHead || c.state == csRespBody {
			c.exchangeFailed(&exchangeError{err: err, client: true}, c.rh.status)
		}
		c.close()
		return false
	}
	switch {
	case c.pending() == 0:
		c.wdl = 0
	case c.outOff != before || c.wdl == 0:
		c.wdl = c.l.now.Add(c.l.p.cfg.WriteTimeout).UnixNano()
	}
	return true
}

func (c *lconn) enterHead(first bool) {
	c.state = csHead
	c.first = first
	wait := c.l.p.cfg.IdleTimeout
	if first {
		wait = c.l.p.cfg.ReadHeaderTimeout
	}
	c.rdl = c.l.now.Add(wait).UnixNano()
	c.rdlHead = first
	if c.l.stopping && c.br.Buffered() == 0 {
		c.state = csClose
	}
}

// readHead waits for a whole request head and serves it.
func (c *lconn) readHead() bool {
	cfg := &c.l.p.cfg
	if c.needPP && !c.readProxy() {
		return false
	}
	for {
		n := c.br.Buffered()
		buf, _ := c.br.Peek(n)
		if headComplete(buf) {
			break
		}
		if n > 0 && !c.rdlHead {
			c.rdl = c.l.now.Add(cfg.ReadHeaderTimeout).UnixNano()
			c.rdlHead = true
		}
		if n >= cfg.MaxHeaderBytes {
			c.start = c.l.now
			c.badHead(errHeadTooLarge)
			return true
		}
		if n == c.br.Size() {
			c.detach("large-head", false)
			return false
		}
		if _, err := c.br.Peek(n + 1); err != nil {
			if err != errWouldBlock {
				c.close() // closed, or failed, before a whole head
			}
			return false
		}
	}
	c.start = c.l.now
	if err := readRequest(c.br, &c.req, cfg.MaxHeaderBytes); err != nil {
		var he *headError
		if !errors.As(err, &he) {
			he = errBadRequest("malformed request head").(*headError)
		}
		c.badHead(he)
		return true
	}
	c.rdl, c.rdlHead = 0, false
	c.dispatch()
	return true
}

// readProxy takes the PROXY v2 header the connection begins with. It
// reports false while more bytes are needed, or when it closed the
// connection (no valid header, or a peer that may not send one).
func (c *lconn) readProxy() bool {
	p := c.l.p
	for {
		n := c.br.Buffered()
		buf, _ := c.br.Peek(n)
		ap, size, err := parseProxyV2(buf)
		if errors.Is(err, errPPShort) {
			if _, err := c.br.Peek(n + 1); err != nil {
				if err != errWouldBlock {
					c.close()
				}
				return false
			}
			continue
		}
		if err != nil {
			p.met.proxyProto.WithLabelValues("refused").Inc()
			p.log.Debug("connection refused: no valid PROXY header", "client", c.remote, "err", err)
			c.close()
			return false
		}
		if !p.ppAccepted(c.peer) {
			p.met.proxyProto.WithLabelValues("untrusted").Inc()
			p.log.Warn("PROXY header from a peer outside --trusted-proxies; connection closed", "client", c.remote)
			c.close()
			return false
		}
		p.met.proxyProto.WithLabelValues("ok").Inc()
		_, _ = c.br.Discard(size)
		c.needPP = false
		if ap.IsValid() {
			c.peer, c.ip, c.remote = ap.Addr(), ap.Addr().String(), ap.String()
		}
		return true
	}
}

// startLinger shuts the write side and reads the rest for up to a
// second.
func (c *lconn) startLinger() {
	_ = unix.Shutdown(c.fd, unix.SHUT_WR)
	c.state = csLinger
	c.rdl = c.l.now.Add(time.Second).UnixNano()
	c.br.Reset(&c.rd)
}

func (c *lconn) drainLinger() {
	var buf [4 << 10]byte
	for i := 0; i < 16; i++ {
		if _, err := c.rd.Read(buf[:]); err != nil {
			if err != errWouldBlock {
				c.close()
			}
			return
		}
	}
	c.close() // more than 64 KiB: enough
}

func (c *lconn) badHead(he *headError) {
	p := c.l.p
	c.out = appendError(c.out, &reply{he.status, "illegal_argument_exception", he.msg, true}, false)
	c.state = csClose
	c.linger = true
	c.wdl = c.l.now.Add(time.Second).UnixNano()
	p.unknown.inc(he.status)
	if p.access != nil {
		p.writeAccess(&c.log, &c.stamp, outcome{code: he.status, err: he.msg}, time.Since(c.start), "-", nil, c.remote)
	}
}

// dispatch serves the request parsed into c.req.
func (c *lconn) dispatch() {
	p := c.l.p
	r := &c.req
	c.o = outcome{}
	switch {
	case r.minor == 0:
		c.detach("http/1.0", true)
		return
	case r.expect:
		c.detach("expect", true)
		return
	case r.chunked:
		c.detach("chunked-body", true)
		return
	}
	rt, tg, a := p.resolve(p.tbl.Load(), r, c.peer, &c.o)
	if a != nil {
		c.answer(a)
		return
	}
	if rt.paused {
		c.detach("paused", true)
		return
	}
	c.tg, c.ms, c.exclude = tg, rt.members(tg.Kind), nil
	c.attempt()
}

// attempt sends the request to a backend.
func (c *lconn) attempt() {
	l := c.l
	c.o.attempts++
	l.rr++
	m := pick(c.ms, l.rr, c.exclude)
	if m == nil {
		c.answer(noBackend(&c.req, c.tg, c.ms, &c.o))
		return
	}
	c.o.upstream = m.b.addr
	c.b = m.b
	m.b.outstanding.Add(1)
	be, err := l.getConn(m.b)
	if err != nil {
		c.connectFailed(err)
		return
	}
	c.startSend(be)
}

func (c *lconn) startSend(be *bconn) {
	l := c.l
	r := &c.req
	c.be = be
	be.owner = c
	if !be.b.tls {
		be.out = appendRequestHead(be.out, r, c.ip, false)
	} else {
		be.scratch = appendRequestHead(be.scratch[:0], r, c.ip, false)
		be.queue(be.scratch)
	}
	c.sendLeft = max(r.contentLength, 0)
	if c.sendLeft > 0 && int64(c.br.Buffered()) < c.sendLeft {
		c.rdl = l.now.Add(l.p.cfg.ReadTimeout).UnixNano()
	}
	if !be.connecting {
		be.dl = l.now.Add(l.p.cfg.UpstreamTimeout).UnixNano()
	}
	c.state = csSend
}

// send passes the request body to the backend and flushes.
func (c *lconn) send() bool {
	be := c.be
	for c.sendLeft > 0 {
		if be.pending() > outHigh {
			if !c.beFlush() {
				return true
			}
			if be.pending() > outHigh {
				return false
			}
		}
		n := c.br.Buffered()
		if n == 0 {
			if _, err := c.br.Peek(1); err != nil {
				if err == errWouldBlock {
					c.beFlush()
					return false
				}
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				c.exchangeFailed(&exchangeError{err: fmt.Errorf("reading the request body: %w", err), client: true}, 0)
				return true
			}
			continue
		}
		k := int(min(int64(n), c.sendLeft))
		b, _ := c.br.Peek(k)
		be.queue(b)
		c.br.Discard(k)
		c.sendLeft -= int64(k)
	}
	if !c.beFlush() {
		return true
	}
	if be.connecting || be.pending() > 0 {
		return false
	}
	c.rdl = 0
	c.sent = c.l.now
	be.dl = c.l.now.Add(c.l.p.cfg.UpstreamTimeout).UnixNano()
	c.state = csRespHead
	return true
}

// beFlush writes the backend's pending bytes; false when the exchange
// failed (and was dealt with).
func (c *lconn) beFlush() bool {
	be := c.be
	if be.connErr != nil {
		c.connectFailed(be.connErr)
		return false
	}
	if be.connecting {
		return true
	}
	before := be.outOff
	if err := writeOut(be.fd, &be.out, &be.outOff, &be.wready); err != nil {
		if be.reused && be.got == 0 {
			c.stale(err)
		} else {
			c.exchangeFailed(c.l.p.upstreamFailed(be.b, err), 0)
		}
		return false
	}
	if be.outOff != before {
		be.dl = c.l.now.Add(c.l.p.cfg.UpstreamTimeout).UnixNano()
	}
	return true
}

// respHead waits for the response head and starts the client's answer.
func (c *lconn) respHead() bool {
	be := c.be
	p := c.l.p
	for {
		n := be.br.Buffered()
		buf, _ := be.br.Peek(n)
		if respHeadComplete(buf) {
			break
		}
		if n == be.br.Size() {
			c.exchangeFailed(p.upstreamFailed(be.b, errors.New("response head from backend larger than 16 KiB")), 0)
			return true
		}
		if _, err := be.br.Peek(n + 1); err != nil {
			if err == errWouldBlock {
				return false
			}
			if n == 0 && be.reused {
				c.stale(err)
				return true
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			c.exchangeFailed(p.upstreamFailed(be.b, err), 0)
			return true
		}
		be.got++
	}
	rh, out, err := readResponseHead(be.br, c.out)
	if err != nil {
		c.out = out[:len(c.out)]
		c.exchangeFailed(p.upstreamFailed(be.b, err), 0)
		return true
	}
	p.met.upstream.Observe(c.l.now.Sub(c.sent).Seconds())
	c.rh = rh
	var noBody bool
	c.out, c.keep, noBody = p.frameResponse(out, &c.req, &c.rh)
	if noBody {
		c.finish(!rh.close)
		return true
	}
	switch {
	case rh.contentLength >= 0 && !rh.chunked:
		c.framing, c.bodyLeft = bodyLength, rh.contentLength
	case rh.chunked:
		c.framing = bodyChunked
		c.ck = chunkReader{}
	default:
		c.framing = bodyEOF
	}
	c.state = csRespBody
	return true
}

// respBody passes the response body to the client.
func (c *lconn) respBody() bool {
	be := c.be
	had := len(c.out)
	defer func() {
		if c.be == be && len(c.out) != had {
			// Bytes came: UpstreamTimeout bounds each stall, not the body.
			be.dl = c.l.now.Add(c.l.p.cfg.UpstreamTimeout).UnixNano()
		}
	}()
	for {
		if c.pending() > outHigh {
			return false // the client reads first (step flushes)
		}
		var done bool
		var err error
		switch c.framing {
		case bodyLength:
			if c.bodyLeft == 0 {
				done = true
				break
			}
			if n := be.br.Buffered(); n > 0 {
				k := int(min(int64(n), c.bodyLeft))
				b, _ := be.br.Peek(k)
				c.out = append(c.out, b...)
				be.br.Discard(k)
				c.bodyLeft -= int64(k)
				continue
			}
			if _, err = be.br.Peek(1); err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
		case bodyChunked:
			done, err = c.ck.pass(be.br, &c.out)
		case bodyEOF:
			if n := be.br.Buffered(); n > 0 {
				b, _ := be.br.Peek(n)
				c.out = append(c.out, b...)
				be.br.Discard(n)
				continue
			}
			if _, err = be.br.Peek(1); err == io.EOF {
				c.rh.close = true
				done, err = true, nil
			}
		}
		if done {
			c.finish(!c.rh.close)
			return true
		}
		switch err {
		case nil:
			continue
		case errWouldBlock:
			return false
		}
		c.l.p.met.upErrors.WithLabelValues("body").Inc()
		c.exchangeFailed(&exchangeError{err: srcError{err}, started: true}, c.rh.status)
		return true
	}
}

// stale: a pooled connection failed before any answer (the backend
// closed it while idle); a request without body goes again on a fresh
// connection.
func (c *lconn) stale(err error) {
	p := c.l.p
	p.met.upErrors.WithLabelValues("stale").Inc()
	b := c.b
	c.be.owner = nil
	c.be.close()
	c.be = nil
	if c.req.hasBody() {
		c.exchangeFailed(&exchangeError{err: fmt.Errorf("%w (%v); the request body cannot be sent twice: retry the request", errStale, err)}, 0)
		return
	}
	be, err := c.l.dial(b)
	if err != nil {
		c.connectFailed(err)
		return
	}
	c.startSend(be)
}

func (c *lconn) connectFailed(err error) {
	c.l.p.connectFailed(c.b, err)
	c.exchangeFailed(&exchangeError{err: err, connect: true}, 0)
}

// backendTimeout: the backend's deadline passed.
func (c *lconn) backendTimeout() {
	be := c.be
	p := c.l.p
	switch {
	case be.connecting:
		c.connectFailed(fmt.Errorf("dial tcp %s: %w", be.b.addr, os.ErrDeadlineExceeded))
	case c.state == csRespBody:
		p.met.upErrors.WithLabelValues("body").Inc()
		c.exchangeFailed(&exchangeError{err: srcError{os.ErrDeadlineExceeded}, started: true}, c.rh.status)
	default:
		c.exchangeFailed(p.upstreamFailed(be.b, os.ErrDeadlineExceeded), 0)
	}
	c.step()
}

// exchangeFailed ends a failed exchange: retry, an answer, or closing.
func (c *lconn) exchangeFailed(xe *exchangeError, code int) {
	p := c.l.p
	if c.be != nil {
		c.be.owner = nil
		c.be.close()
		c.be = nil
	}
	b := c.b
	if b != nil {
		b.outstanding.Add(-1)
		c.b = nil
	}
	if b == nil {
		b = &backend{}
	}
	retry, a := p.afterFailure(&c.req, c.tg, c.ms, b, xe, code, &c.o)
	switch {
	case retry:
		c.exclude = b
		c.attempt()
	case a == nil:
		c.record()
		c.state = csClose
		if xe.client {
			c.out, c.outOff = c.out[:0], 0
		}
	default:
		c.answer(a)
	}
}

// answer gives the client one of the proxy's own answers.
func (c *lconn) answer(a *reply) {
	c.out = appendError(c.out, a, c.req.method == "HEAD")
	c.keep = !a.close
	c.linger = a.close
	c.finish(false)
}

// finish ends the request: the backend connection back to the pool (or
// closed), metrics, the access log line, then the next request.
func (c *lconn) finish(reusable bool) {
	if be := c.be; be != nil {
		c.be = nil
		be.owner = nil
		be.dl = 0
		if reusable && be.br.Buffered() == 0 {
			c.l.putConn(be)
		} else {
			be.close()
		}
	}
	if c.b != nil {
		c.b.outstanding.Add(-1)
		c.b = nil
	}
	if c.o.code == 0 {
		c.o.code = c.rh.status
	}
	c.record()
	c.rh = respHead{}
	if !c.keep || c.l.stopping {
		c.state = csClose
		return
	}
	c.enterHead(false)
}

func (c *lconn) record() {
	p := c.l.p
	if c.o.rm != nil {
		c.o.rm.inc(c.o.code)
	} else {
		p.unknown.inc(c.o.code)
	}
	if p.access != nil {
		p.writeAccess(&c.log, &c.stamp, c.o, time.Since(c.start), c.req.method, c.req.path(), c.remote)
	}
}

// timers applies the client's deadlines.
func (c *lconn) timers(now int64) {
	if c.wdl > 0 && now > c.wdl {
		c.close() // the client does not read its answers
		return
	}
	if c.rdl == 0 || now <= c.rdl {
		return
	}
	c.rdl = 0
	switch c.state {
	case csLinger:
		c.close()
	case csHead:
		if c.br.Buffered() > 0 {
			c.out = append(c.out, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"...)
			c.state = csClose
			c.linger = true
			c.wdl = c.l.now.Add(time.Second).UnixNano()
			c.step()
			return
		}
		c.close()
	case csSend:
		c.exchangeFailed(&exchangeError{err: fmt.Errorf("reading the request body: %w", os.ErrDeadlineExceeded), client: true}, 0)
		c.step()
	}
}

// detach hands the connection over to the goroutine-per-connection
// server, with the request just parsed when parsed is set.
func (c *lconn) detach(reason string, parsed bool) {
	l := c.l
	l.p.met.handoffs.WithLabelValues(reason).Inc()
	var req request
	if parsed {
		req = c.req
		c.req = request{}
	}
	buffered := bytes.Clone(c.peekAll())
	out := bytes.Clone(c.out[c.outOff:])
	from := origin{peer: c.peer, ip: c.ip, remote: c.remote}
	fd := c.fd
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	l.fds[fd] = nil
	c.closed = true
	f := os.NewFile(uintptr(fd), "client")
	nc, err := net.FileConn(f) // a duplicate, in Go's poller
	f.Close()
	c.release()
	if err != nil {
		l.p.log.Warn("event loop: handing a connection over failed; closing it", "err", err, "client", c.remote)
		return
	}
	if !parsed {
		// The head is still in buffered: the server parses it.
		l.s.gs.adopt(nc, buffered, out, nil, from)
		return
	}
	l.s.gs.adopt(nc, buffered, out, &req, from)
}

func (c *lconn) peekAll() []byte {
	b, _ := c.br.Peek(c.br.Buffered())
	return b
}

func (c *lconn) close() {
	if c.closed {
		return
	}
	c.closed = true
	if c.be != nil {
		c.be.owner = nil
		c.be.close()
		c.be = nil
	}
	if c.b != nil {
		c.b.outstanding.Add(-1)
		c.b = nil
	}
	c.l.fds[c.fd] = nil
	unix.Close(c.fd)
	c.release()
}

// release returns a closed (or handed over) connection to the free list.
func (c *lconn) release() {
	l := c.l
	c.br.Reset(&c.rd)
	c.out, c.outOff = c.out[:0], 0
	if cap(c.out) > 64<<10 {
		c.out = nil
	}
	if cap(c.req.buf) > 64<<10 {
		c.req = request{}
	}
	c.ms, c.exclude, c.o = nil, nil, outcome{}
	c.wdl, c.rdl = 0, 0
	c.linger = false
	if len(l.free) < 1024 {
		l.free = append(l.free, c)
	}
	l.addConns(-1)
	if l.s.active.Add(-1) == 0 {
		select {
		case l.s.idle <- struct{}{}:
		default:
		}
	}
}

// chunkReader passes a chunked body through verbatim, resuming where
// the bytes at hand end (copyChunked's non-blocking twin).
type chunkReader struct {
	left    int64 // bytes of the current chunk still to pass
	inData  bool  // within a chunk's data (or its CRLF when left == 0)
	trailer bool  // after the last chunk: trailer lines up to an empty one
	ov      chunkOverhead
}

// pass moves what br holds to out; done at the end of the body.
func (k *chunkReader) pass(br *bufio.Reader, out *[]byte) (bool, error) {
	for {
		if k.inData {
			if k.left > 0 {
				n := br.Buffered()
				if n == 0 {
					if _, err := br.Peek(1); err != nil {
						return false, eofUnexpected(err)
					}
					continue
				}
				m := int(min(int64(n), k.left))
				b, _ := br.Peek(m)
				*out = append(*out, b...)
				br.Discard(m)
				k.left -= int64(m)
				continue
			}
			line, err := chunkLine(br)
			if err != nil {
				return false, err
			}
			if len(line) != 0 {
				return false, errors.New("malformed chunk end")
			}
			*out = append(*out, crlf...)
			k.inData = false
			continue
		}
		line, err := chunkLine(br)
		if err != nil {
			return false, err
		}
		if k.trailer {
			if len(line) > 0 && !validTrailer(line) {
				return false, errors.New("malformed trailer line")
			}
			*out = append(append(*out, line...), crlf...)
			if len(line) == 0 {
				return true, nil
			}
			continue
		}
		n, err := parseChunkSize(line)
		if err != nil {
			return false, err
		}
		if err := k.ov.add(len(line), n); err != nil {
			return false, err
		}
		if n == 0 {
			*out = append(*out, lastChunk...)
			k.trailer = true
			continue
		}
		*out = strconv16(*out, n)
		k.left, k.inData = n, true
	}
}

func strconv16(out []byte, n int64) []byte {
	var hb [20]byte
	i := len(hb)
	for {
		i--
		hb[i] = hexDigit[n&0xf]
		n >>= 4
		if n == 0 {
			break
		}
	}
	return append(append(out, hb[i:]...), crlf...)
}

// chunkLine returns a whole line of br without its end, or
// errWouldBlock when it has not all arrived (nothing is consumed then).
func chunkLine(br *bufio.Reader) ([]byte, error) {
	for {
		b, _ := br.Peek(br.Buffered())
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return crlfLine(br)
		}
		if len(b) >= 4<<10 {
			return nil, errors.New("chunk line longer than 4 KiB")
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			return nil, eofUnexpected(err)
		}
	}
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
