package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
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

func (p *Proxy) route(cc *clientConn) (o outcome, keep bool) {
	r := &cc.req
	// An error answer before the body was read closes the connection
	// (the unread body would be taken for the next request).
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
		p.writeError(cc, o.code, "illegal_argument_exception", reason, !keepAfterError)
		return o, keepAfterError
	}
	tbl := p.tbl.Load()
	rt := tbl.routes[tg.ID]
	if rt == nil {
		o.code = 404
		o.id = "_unknown"
		o.err = "unknown deployment"
		p.writeError(cc, o.code, "resource_not_found_exception", "deployment ["+tg.ID+"] not found: check the id (paddock deployment list), or wait a moment if it was just created", !keepAfterError)
		return o, keepAfterError
	}
	o.id = rt.id
	o.rm = rt.m
	if rt.paused {
		var code int
		rt, code = p.hold(tbl, tg.ID)
		if rt == nil {
			o.code = code
			switch code {
			case 404:
				p.writeError(cc, code, "resource_not_found_exception", "deployment ["+tg.ID+"] was removed while its traffic was paused", !keepAfterError)
			case 503:
				o.err = "paused too long"
				p.writeError(cc, code, "unavailable_shards_exception", fmt.Sprintf("deployment [%s] is switching nodes and stayed paused longer than %s: retry", tg.ID, p.cfg.PauseTimeout), !keepAfterError)
			}
			return o, keepAfterError
		}
	}
	ms := rt.members(tg.Kind)
	replayable := !r.hasBody()
	idempotent := (r.method == "GET" || r.method == "HEAD") && replayable
	var exclude *backend
	for {
		o.attempts++
		m := pick(ms, p.rr.Add(1), exclude)
		if m == nil {
			o.code = 503
			o.err = "no healthy backend"
			p.writeError(cc, o.code, "no_shard_available_action_exception", whyNone(tg.ID, tg.Kind, ms), !keepAfterError)
			return o, keepAfterError
		}
		o.upstream = m.b.addr
		code, keep, xe := p.forward(cc, m.b, replayable)
		if xe == nil {
			o.code = code
			return o, keep
		}
		o.err = xe.Error()
		bodySent := r.hasBody() // a failed exchange may have read part of it
		switch {
		case xe.started || xe.client:
			o.code = code
			if o.code == 0 {
				o.code = 499
			}
			return o, false
		case xe.timeout:
			o.code = 504
			p.writeError(cc, o.code, "timeout_exception", fmt.Sprintf("node %s of deployment [%s] did not answer within %s", m.b.addr, tg.ID, p.cfg.UpstreamTimeout), bodySent || r.close)
			return o, !bodySent && !r.close
		case idempotent && o.attempts < 2 && !xe.timeout:
			// Could not connect, or the connection broke before any
			// answer: another backend may serve it.
			exclude = m.b
			p.met.retries.Inc()
			continue
		case xe.connect:
			o.code = 503
			p.writeError(cc, o.code, "no_shard_available_action_exception", whyNone(tg.ID, tg.Kind, ms), !keepAfterError)
			return o, keepAfterError
		default:
			o.code = 502
			p.writeError(cc, o.code, "bad_gateway_exception", fmt.Sprintf("node %s of deployment [%s] failed: %v", m.b.addr, tg.ID, xe.err), true)
			return o, false
		}
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
	noBody := bodyless(r.method, rh.status)
	keep := !r.close && !p.isStopping() // shutting down: tell keep-alive clients
	// Framing towards the client.
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
	out = append(out, crlf...)
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
func (p *Proxy) writeError(cc *clientConn, code int, typ, reason string, close bool) {
	body := fmt.Appendf(nil, `{"error":{"root_cause":[{"type":%q,"reason":%q}],"type":%q,"reason":%q},"status":%d}`+"\n", typ, reason, typ, reason, code)
	bw := cc.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(code))
	bw.WriteByte(' ')
	bw.WriteString(statusText(code))
	bw.WriteString("\r\nContent-Type: application/json; charset=UTF-8\r\nX-Paddock-Proxy-Error: ")
	bw.WriteString(typ)
	bw.WriteString("\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(body)))
	if close {
		bw.WriteString("\r\nConnection: close")
	}
	bw.WriteString("\r\n\r\n")
	if cc.req.method != "HEAD" {
		bw.Write(body)
	}
}

func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
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
