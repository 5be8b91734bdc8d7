package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// ServeHTTP routes one client request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := p.serve(w, r)
	if st.rm != nil {
		st.rm.inc(st.code)
	} else {
		p.unknown.inc(st.code)
	}
	if p.access != nil {
		p.logAccess(r, st, time.Since(start))
	}
}

// outcome is what the access log and metrics record.
type outcome struct {
	code     int
	id       string
	upstream string
	rm       *routeMetrics
	attempts int
	err      string
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) (o outcome) {
	var hdr string
	if v := r.Header[HeaderCluster]; len(v) > 0 {
		hdr = v[0]
	}
	tg, err := ParseTarget(r.Host, hdr, p.cfg.Domain)
	if err != nil {
		o.code = http.StatusBadRequest
		reason := fmt.Sprintf("cannot tell the deployment from host [%s]: %v; address it as <deployment id>.%s or send the header %s: <deployment id>", r.Host, err, p.cfg.Domain, HeaderCluster)
		if errors.Is(err, errBadID) && hdr != "" {
			reason = fmt.Sprintf("malformed deployment id in %s: [%s]; ids are lowercase letters, digits and '-'", HeaderCluster, hdr)
		}
		if errors.Is(err, errNotOurs) {
			o.code = http.StatusNotFound
		}
		o.err = reason
		writeError(w, o.code, "illegal_argument_exception", reason)
		return o
	}
	o.id = tg.ID
	tbl := p.tbl.Load()
	rt := tbl.routes[tg.ID]
	if rt == nil {
		o.code = http.StatusNotFound
		o.err = "unknown deployment"
		writeError(w, o.code, "resource_not_found_exception", "deployment ["+tg.ID+"] not found: check the id (paddock deployment list), or wait a moment if it was just created")
		return o
	}
	o.rm = rt.m
	if rt.paused {
		var code int
		rt, code = p.hold(r.Context(), tbl, tg.ID)
		if rt == nil {
			o.code = code
			switch code {
			case http.StatusNotFound:
				writeError(w, code, "resource_not_found_exception", "deployment ["+tg.ID+"] was removed while its traffic was paused")
			case http.StatusServiceUnavailable:
				o.err = "paused too long"
				writeError(w, code, "unavailable_shards_exception", fmt.Sprintf("deployment [%s] is switching nodes and stayed paused longer than %s: retry", tg.ID, p.cfg.PauseTimeout))
			default:
				o.err = "client gone while paused"
			}
			return o
		}
	}
	ms := rt.members(tg.Kind)
	replayable := r.Body == nil || r.Body == http.NoBody
	idempotent := (r.Method == http.MethodGet || r.Method == http.MethodHead) && replayable
	var exclude *backend
	for {
		o.attempts++
		m := pick(ms, p.rr.Add(1), exclude)
		if m == nil {
			o.code = http.StatusServiceUnavailable
			o.err = "no healthy backend"
			writeError(w, o.code, "no_shard_available_action_exception", whyNone(tg.ID, tg.Kind, ms))
			return o
		}
		o.upstream = m.b.addr
		code, xe := p.forward(w, r, m.b, replayable)
		if xe == nil {
			o.code = code
			return o
		}
		o.err = xe.Error()
		switch {
		case xe.started:
			o.code = code
			panic(http.ErrAbortHandler) // truncated answer: close the client connection
		case xe.timeout:
			o.code = http.StatusGatewayTimeout
			writeError(w, o.code, "timeout_exception", fmt.Sprintf("node %s of deployment [%s] did not answer within %s", m.b.addr, tg.ID, p.cfg.UpstreamTimeout))
			return o
		case xe.connect && idempotent && o.attempts < 2:
			exclude = m.b
			p.met.retries.Inc()
			continue
		case xe.connect:
			o.code = http.StatusServiceUnavailable
			writeError(w, o.code, "no_shard_available_action_exception", whyNone(tg.ID, tg.Kind, ms))
			return o
		default:
			o.code = http.StatusBadGateway
			writeError(w, o.code, "bad_gateway_exception", fmt.Sprintf("node %s of deployment [%s] failed: %v", m.b.addr, tg.ID, xe.err))
			return o
		}
	}
}

// hold waits while a route is paused, up to PauseTimeout. It returns
// the live route, or nil and the status to answer.
func (p *Proxy) hold(ctx context.Context, tbl *table, id string) (*route, int) {
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
				return nil, http.StatusNotFound
			}
			if !rt.paused {
				return rt, 0
			}
		case <-timer.C:
			return nil, http.StatusServiceUnavailable
		case <-ctx.Done():
			return nil, 499
		}
	}
}

// forward sends one request to b and streams the answer back.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, b *backend, replayable bool) (int, *exchangeError) {
	b.outstanding.Add(1)
	defer b.outstanding.Add(-1)
	c, err := p.pool.get(r.Context(), b)
	if err != nil {
		p.connectFailed(b, err)
		return 0, &exchangeError{err: err, connect: true}
	}
	for {
		code, xe := p.exchange(w, r, c)
		if xe == nil || !xe.stale {
			return code, xe
		}
		p.met.upErrors.WithLabelValues("stale").Inc()
		if !replayable {
			return 0, &exchangeError{err: fmt.Errorf("%w; the request body cannot be sent twice: retry the request", errStale)}
		}
		if c, err = p.pool.dial(r.Context(), b); err != nil {
			p.connectFailed(b, err)
			return 0, &exchangeError{err: err, connect: true}
		}
	}
}

func (p *Proxy) connectFailed(b *backend, err error) {
	p.met.upErrors.WithLabelValues("connect").Inc()
	if b.markDown("connect: " + shortErr(err)) {
		p.startProbe(b)
	}
}

// exchange runs one request/response on c and returns c to the pool or
// closes it.
func (p *Proxy) exchange(w http.ResponseWriter, r *http.Request, c *upConn) (int, *exchangeError) {
	to := p.cfg.UpstreamTimeout
	_ = c.nc.SetDeadline(time.Now().Add(to))
	if err := writeRequest(c, r, clientIP(r.RemoteAddr), r.TLS != nil); err != nil {
		p.pool.close(c)
		if c.reused && !isTimeout(err) {
			return 0, &exchangeError{err: err, stale: true}
		}
		return 0, p.upstreamFailed(c.b, err)
	}
	sent := time.Now()
	if _, err := c.br.Peek(1); err != nil {
		p.pool.close(c)
		if c.reused && !isTimeout(err) {
			return 0, &exchangeError{err: err, stale: true}
		}
		return 0, p.upstreamFailed(c.b, err)
	}
	h := w.Header()
	rh, err := readResponseHead(c.br, h)
	if err != nil {
		p.pool.close(c)
		clear(h)
		return 0, p.upstreamFailed(c.b, err)
	}
	p.met.upstream.Observe(time.Since(sent).Seconds())
	if c.b.down.Load() {
		c.b.markUp()
	}
	noBody := bodyless(r.Method, rh.status)
	if rh.contentLength >= 0 && (!rh.chunked || noBody) {
		h["Content-Length"] = []string{strconv.FormatInt(rh.contentLength, 10)}
	}
	w.WriteHeader(rh.status)
	if noBody {
		p.pool.put(c, !rh.close)
		return rh.status, nil
	}
	reusable, clientErr, err := copyBody(w, c, rh, to)
	if err != nil {
		p.pool.close(c)
		if clientErr {
			return rh.status, nil // the client left; nothing to tell it
		}
		p.met.upErrors.WithLabelValues("body").Inc()
		return rh.status, &exchangeError{err: err, started: true}
	}
	p.pool.put(c, reusable)
	return rh.status, nil
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
func writeError(w http.ResponseWriter, code int, typ, reason string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=UTF-8")
	h.Set("X-Paddock-Proxy-Error", typ)
	w.WriteHeader(code)
	fmt.Fprintf(w, `{"error":{"root_cause":[{"type":%q,"reason":%q}],"type":%q,"reason":%q},"status":%d}`+"\n", typ, reason, typ, reason, code)
}

func (p *Proxy) logAccess(r *http.Request, o outcome, d time.Duration) {
	p.access.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("deployment", o.id),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", o.code),
		slog.String("upstream", o.upstream),
		slog.Int64("duration_us", d.Microseconds()),
		slog.String("client", r.RemoteAddr),
		slog.Int("attempts", o.attempts),
		slog.String("error", o.err),
	)
}
