package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
	"unsafe"
)

// outcome is what the access log and metrics record.
type outcome struct {
	code     int
	id       string
	upstream string
	rm       *routeMetrics
	attempts int
	err      string
	// client is the request's source when it differs from the
	// connection's peer (X-Forwarded-For from a trusted load balancer).
	client netip.Addr
}

// handle serves the request parsed into cc.req and reports whether the
// connection may serve another.
func (p *Proxy) handle(cc *clientConn, start time.Time) bool {
	o, keep := p.route(cc)
	if o.rm != nil {
		o.rm.inc(o.code)
	} else {
		p.unknown.inc(o.code)
	}
	if p.access != nil {
		p.logAccess(cc, o, time.Since(start), cc.req.method, cc.req.path())
	}
	return keep
}

// bstr views b as a string without copying; only for lookups and
// parsing that do not keep the string.
func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// reply is an error the proxy gives itself (no backend answered).
type reply struct {
	code   int
	typ    string
	reason string
	// close: the connection closes after it.
	close bool
}

// resolve finds the route of the request parsed into r. On failure it
// fills o and returns the answer to give. keepAfterError is whether an
// error answer may keep the connection (nothing of a body was read).
func (p *Proxy) resolve(tbl *table, r *request, peer netip.Addr, o *outcome) (*route, Target, *reply) {
	keepAfterError := !r.hasBody() && !r.close
	domain := *p.domain.Load()
	tg, err := ParseTarget(bstr(r.host), bstr(r.cluster), domain)
	if err != nil {
		o.code = 400
		reason := fmt.Sprintf("cannot tell the deployment from host [%s]: %v; address it as <deployment id>.%s or send the header %s: <deployment id>", r.host, err, domain, HeaderCluster)
		if errors.Is(err, errBadID) && len(r.cluster) > 0 {
			reason = fmt.Sprintf("malformed deployment id in %s: [%s]; ids are lowercase letters, digits and '-'", HeaderCluster, r.cluster)
		}
		if errors.Is(err, errNotOurs) {
			o.code = 404
		}
		o.err = reason
		return nil, tg, &reply{o.code, "illegal_argument_exception", reason, !keepAfterError}
	}
	if r.upgrade {
		o.code = 501
		o.err = "protocol upgrade refused"
		return nil, tg, &reply{501, "illegal_argument_exception", "the proxy does not pass protocol upgrades (Upgrade: " + string(r.upgradeTo) + "): send plain HTTP/1.1 requests", true}
	}
	rt := tbl.routes[tg.ID]
	if rt == nil {
		o.code = 404
		o.id = "_unknown"
		o.err = "unknown deployment"
		return nil, tg, &reply{404, "resource_not_found_exception", "deployment [" + tg.ID + "] not found: check the id (paddock deployment list), or wait a moment if it was just created", !keepAfterError}
	}
	o.id = rt.id
	o.rm = rt.m
	client := peer
	if len(p.cfg.TrustedProxies) > 0 {
		client = clientAddr(p.cfg.TrustedProxies, peer, r)
		if client != peer {
			o.client = client
		}
	}
	if rt.filter != nil && !rt.filter.allows(client) {
		o.code = 403
		o.err = "refused by traffic filter"
		return nil, tg, refuse(rt.id, client, rt.filter, r)
	}
	return rt, tg, nil
}

// heldAnswer is the answer to a request whose paused route did not
// resume (code from hold).
func (p *Proxy) heldAnswer(r *request, id string, code int, o *outcome) *reply {
	o.code = code
	close := r.hasBody() || r.close
	if code == 404 {
		return &reply{code, "resource_not_found_exception", "deployment [" + id + "] was removed while its traffic was paused", close}
	}
	o.err = "paused too long"
	return &reply{code, "unavailable_shards_exception", fmt.Sprintf("deployment [%s] is switching nodes and stayed paused longer than %s: retry", id, p.cfg.PauseTimeout), close}
}

// noBackend is the answer when pick finds no backend.
func noBackend(r *request, tg Target, ms []*member, o *outcome) *reply {
	o.code = 503
	o.err = "no healthy backend"
	return &reply{503, "no_shard_available_action_exception", whyNone(tg.ID, tg.Kind, ms), r.hasBody() || r.close}
}

// afterFailure decides what follows a failed exchange with backend b:
// retry (on another backend, b excluded), an answer to give, or nil
// answer and no retry when only closing the client is left (o.code is
// then the status to log).
func (p *Proxy) afterFailure(r *request, tg Target, ms []*member, b *backend, xe *exchangeError, code int, o *outcome) (retry bool, a *reply) {
	o.err = xe.Error()
	bodySent := r.hasBody() // a failed exchange may have read part of it
	idempotent := (r.method == "GET" || r.method == "HEAD") && !r.hasBody()
	switch {
	case xe.started || xe.client:
		o.code = code
		if o.code == 0 {
			o.code = 499
		}
		return false, nil
	case xe.timeout:
		o.code = 504
		return false, &reply{504, "timeout_exception", fmt.Sprintf("node %s of deployment [%s] did not answer within %s", b.addr, tg.ID, p.cfg.UpstreamTimeout), bodySent || r.close}
	case idempotent && o.attempts < 2:
		// Could not connect, or the connection broke before any
		// answer: another backend may serve it.
		p.met.retries.Inc()
		return true, nil
	case xe.connect:
		return false, noBackend(r, tg, ms, o)
	default:
		o.code = 502
		return false, &reply{502, "bad_gateway_exception", fmt.Sprintf("node %s of deployment [%s] failed: %v", b.addr, tg.ID, xe.err), true}
	}
}

func (p *Proxy) route(cc *clientConn) (o outcome, keep bool) {
	r := &cc.req
	tbl := p.tbl.Load()
	rt, tg, a := p.resolve(tbl, r, cc.peer, &o)
	if a != nil {
		p.writeError(cc, a)
		return o, !a.close
	}
	if rt.paused {
		var code int
		rt, code = p.hold(tbl, tg.ID)
		if rt == nil {
			a := p.heldAnswer(r, tg.ID, code, &o)
			p.writeError(cc, a)
			return o, !a.close
		}
	}
	ms := rt.members(tg.Kind)
	replayable := !r.hasBody()
	var exclude *backend
	for {
		o.attempts++
		m := pick(ms, p.rr.Add(1), exclude)
		if m == nil {
			a := noBackend(r, tg, ms, &o)
			p.writeError(cc, a)
			return o, !a.close
		}
		o.upstream = m.b.addr
		code, keep, xe := p.forward(cc, m.b, replayable)
		if xe == nil {
			o.code = code
			return o, keep
		}
		retry, a := p.afterFailure(r, tg, ms, m.b, xe, code, &o)
		if retry {
			exclude = m.b
			continue
		}
		if a == nil {
			return o, false
		}
		p.writeError(cc, a)
		return o, !a.close
	}
}

// hold waits while a route is paused, up to PauseTimeout. It returns
// the live route, or nil and the status to answer.
func (p *Proxy) hold(tbl *table, id string) (*route, int) {
	p.met.held.Inc()
	defer p.met.held.Dec()
	timer := time.NewTimer(p.cfg.PauseTimeout)
	defer timer.Stop()
	for {
		select {
		case <-tbl.changed:
			tbl = p.tbl.Load()
			rt := tbl.routes[id]
			if rt == nil {
				return nil, 404
			}
			if !rt.paused {
				return rt, 0
			}
		case <-timer.C:
			return nil, 503
		case <-p.stopping:
			return nil, 503
		}
	}
}

// forward sends the request to b and streams the answer back.
func (p *Proxy) forward(cc *clientConn, b *backend, replayable bool) (int, bool, *exchangeError) {
	b.outstanding.Add(1)
	defer b.outstanding.Add(-1)
	c, err := p.pool.get(context.Background(), b)
	if err != nil {
		p.connectFailed(b, err)
		return 0, false, &exchangeError{err: err, connect: true}
	}
	for {
		code, keep, xe := p.exchange(cc, c)
		if xe == nil || !xe.stale {
			return code, keep, xe
		}
		p.met.upErrors.WithLabelValues("stale").Inc()
		if !replayable {
			return 0, false, &exchangeError{err: fmt.Errorf("%w; the request body cannot be sent twice: retry the request", errStale)}
		}
		if c, err = p.pool.dial(context.Background(), b); err != nil {
			p.connectFailed(b, err)
			return 0, false, &exchangeError{err: err, connect: true}
		}
	}
}

func (p *Proxy) connectFailed(b *backend, err error) {
	p.met.upErrors.WithLabelValues("connect").Inc()
	if b.markDown("connect: " + shortErr(err)) {
		p.startProbe(b)
	}
}

// exchange runs one request/response on c, then pools or closes c.
func (p *Proxy) exchange(cc *clientConn, c *upConn) (int, bool, *exchangeError) {
	r := &cc.req
	to := p.cfg.UpstreamTimeout
	_ = c.nc.SetDeadline(time.Now().Add(to))
	writeRequestHead(c.bw, r, cc.ip, cc.tls)
	if r.hasBody() {
		if r.expect {
			cc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := cc.bw.Flush(); err != nil {
				p.pool.close(c)
				return 0, false, &exchangeError{err: err, client: true}
			}
		}
		_ = cc.nc.SetReadDeadline(time.Now().Add(p.cfg.ReadTimeout))
		// Before each wait for more of the client's body: send what
		// we have on, and give the backend a fresh write deadline.
		more := func() error {
			_ = c.nc.SetWriteDeadline(time.Now().Add(to))
			return c.bw.Flush()
		}
		var err error
		if r.chunked {
			err = copyChunked(c.bw, cc.br, more)
		} else {
			err = copyExact(c.bw, cc.br, r.contentLength, more)
		}
		if err != nil {
			p.pool.close(c)
			var se srcError
			if errors.As(err, &se) {
				return 0, false, &exchangeError{err: fmt.Errorf("reading the request body: %w", err), client: true}
			}
			return 0, false, p.upstreamFailed(c.b, err)
		}
	}
	if err := c.bw.Flush(); err != nil {
		p.pool.close(c)
		if c.reused && !isTimeout(err) {
			return 0, false, &exchangeError{err: err, stale: true}
		}
		return 0, false, p.upstreamFailed(c.b, err)
	}
	sent := time.Now()
	if r.hasBody() {
		_ = c.nc.SetReadDeadline(sent.Add(to)) // the wait starts now
	}
	if _, err := c.br.Peek(1); err != nil {
		p.pool.close(c)
		if c.reused && !isTimeout(err) {
			return 0, false, &exchangeError{err: err, stale: true}
		}
		return 0, false, p.upstreamFailed(c.b, err)
	}
	rh, out, err := readResponseHead(c.br, cc.out[:0])
	cc.out = out
	if err != nil {
		p.pool.close(c)
		return 0, false, p.upstreamFailed(c.b, err)
	}
	p.met.upstream.Observe(time.Since(sent).Seconds())
	out, keep, noBody := p.frameResponse(out, r, &rh)
	cc.out = out
	if _, err := cc.bw.Write(out); err != nil {
		p.pool.close(c)
		return rh.status, false, &exchangeError{err: err, client: true}
	}
	if noBody {
		p.pool.put(c, !rh.close)
		return rh.status, keep, nil
	}
	// Before each wait for more of the backend's body: send what we
	// have to the client, and give the backend a fresh read deadline
	// (UpstreamTimeout bounds each wait, not the whole stream).
	flush := func() error {
		now := time.Now()
		_ = c.nc.SetReadDeadline(now.Add(to))
		cc.refreshWriteDeadline(now, p.cfg.WriteTimeout)
		return cc.bw.Flush()
	}
	switch {
	case rh.contentLength >= 0 && !rh.chunked:
		err = copyExact(cc.bw, c.br, rh.contentLength, flush)
	case rh.chunked && r.minor == 1:
		err = copyChunked(cc.bw, c.br, flush)
	case rh.chunked:
		err = dechunk(cc.bw, c.br)
		rh.close = true
	default:
		err = copyUntilEOF(cc.bw, c.br, flush)
		rh.close = true
	}
	if err != nil {
		p.pool.close(c)
		var se srcError
		if errors.As(err, &se) {
			p.met.upErrors.WithLabelValues("body").Inc()
			return rh.status, false, &exchangeError{err: err, started: true}
		}
		return rh.status, false, &exchangeError{err: err, client: true}
	}
	p.pool.put(c, !rh.close)
	return rh.status, keep, nil
}

// frameResponse completes the client's response head built by
// readResponseHead in out (framing headers, Connection, the final CRLF)
// and says whether the client connection stays open and whether a body
// follows.
func (p *Proxy) frameResponse(out []byte, r *request, rh *respHead) ([]byte, bool, bool) {
	noBody := bodyless(r.method, rh.status)
	keep := !r.close && !p.isStopping() // shutting down: tell keep-alive clients
	var nb [20]byte
	switch {
	case noBody:
		if rh.contentLength >= 0 {
			out = append(append(append(out, hdrCL...), strconv.AppendInt(nb[:0], rh.contentLength, 10)...), crlf...)
		}
	case rh.contentLength >= 0 && !rh.chunked:
		out = append(append(append(out, hdrCL...), strconv.AppendInt(nb[:0], rh.contentLength, 10)...), crlf...)
	case rh.chunked && r.minor == 1:
		out = append(out, hdrChunked...)
	default: // until EOF, or chunked to an HTTP/1.0 client
		keep = false
	}
	if !keep {
		out = append(out, hdrConnClose...)
	} else if r.minor == 0 {
		out = append(out, hdrConnKA...)
	}
	return append(out, crlf...), keep, noBody
}

func (p *Proxy) isStopping() bool {
	select {
	case <-p.stopping:
		return true
	default:
		return false
	}
}

func (p *Proxy) upstreamFailed(b *backend, err error) *exchangeError {
	if isTimeout(err) {
		p.met.upErrors.WithLabelValues("timeout").Inc()
		if b.markDown("no answer within " + p.cfg.UpstreamTimeout.String()) {
			p.startProbe(b)
		}
		return &exchangeError{err: err, timeout: true}
	}
	p.met.upErrors.WithLabelValues("protocol").Inc()
	return &exchangeError{err: err}
}

func clientIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

func shortErr(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// writeError answers with an Elasticsearch-shaped error body.
func (p *Proxy) writeError(cc *clientConn, a *reply) {
	cc.bw.Write(appendError(cc.bw.AvailableBuffer(), a, cc.req.method == "HEAD"))
}

// appendError appends an error response (head and Elasticsearch-shaped
// body; no body to a HEAD request) to dst.
func appendError(dst []byte, a *reply, head bool) []byte {
	body := fmt.Appendf(nil, `{"error":{"root_cause":[{"type":%q,"reason":%q}],"type":%q,"reason":%q},"status":%d}`+"\n", a.typ, a.reason, a.typ, a.reason, a.code)
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(a.code), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(a.code)...)
	dst = append(dst, "\r\nContent-Type: application/json; charset=UTF-8\r\nX-Paddock-Proxy-Error: "...)
	dst = append(dst, a.typ...)
	dst = append(dst, "\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	if a.close {
		dst = append(dst, "\r\nConnection: close"...)
	}
	dst = append(dst, "\r\n\r\n"...)
	if !head {
		dst = append(dst, body...)
	}
	return dst
}

func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 431:
		return "Request Header Fields Too Large"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Error"
}
