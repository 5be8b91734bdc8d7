package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// Request classes for a replicated node: writes and metadata changes
// run on the primary (forwarded there from any other copy); reads run
// on any in-sync copy (forwarded to the primary from others).

// onPrimary wraps a write: on a non-primary it is forwarded to the
// primary and the primary's answer returned.
func (s *Server) onPrimary(h handler) handler { return s.forwarding(true, h) }

// inSyncRead wraps a read: served here when this copy is in sync.
func (s *Server) inSyncRead(h handler) handler { return s.forwarding(false, h) }

func (s *Server) forwarding(write bool, h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, p params) error {
		if url, err := s.forwardTo(r, write); err != nil {
			return err
		} else if url != "" {
			return s.proxy(w, r, url)
		}
		return h(w, r, p)
	}
}

// metaWrite wraps a metadata change: run on the primary, then pushed to
// the copies before it is acknowledged.
func (s *Server) metaWrite(h handler) handler {
	return s.onPrimary(func(w http.ResponseWriter, r *http.Request, p params) error {
		if !s.replicated() {
			return h(w, r, p)
		}
		bw := &bufferedWriter{header: http.Header{}, status: http.StatusOK}
		err := h(bw, r, p)
		s.metadataChanged()
		s.pushMetadata(r.Context())
		if err != nil {
			return err
		}
		for k, v := range bw.header {
			w.Header()[k] = v
		}
		w.WriteHeader(bw.status)
		_, _ = w.Write(bw.body.Bytes())
		return nil
	})
}

// restoreWrite wraps a snapshot restore: a metadata write whose
// restored indices are then fully copied to every other copy before the
// restore is acknowledged (a copy that fails it is reported and the
// answer held, as for a write). The platform's restore
// (paddock_replace) into a node that left its group runs on that node:
// it is a new copy whose recovery fell back to snapshot and restore,
// and forwarding it to the group's primary would replace the serving
// copies' indices with the (older) snapshot.
func (s *Server) restoreWrite(h handler) handler {
	grouped := s.restoreInGroup(h)
	return func(w http.ResponseWriter, r *http.Request, p params) error {
		if r.URL.Query().Get("paddock_replace") == "true" && s.repl.leftGroup() {
			return h(w, r.WithContext(context.WithValue(r.Context(), restoreHereKey{}, true)), p)
		}
		return grouped(w, r, p)
	}
}

// restoreHereKey marks a restore that writes this node's shards alone
// (restoreWrite).
type restoreHereKey struct{}

func restoresHere(ctx context.Context) bool {
	v, _ := ctx.Value(restoreHereKey{}).(bool)
	return v
}

func (s *Server) restoreInGroup(h handler) handler {
	return s.metaWrite(func(w http.ResponseWriter, r *http.Request, p params) error {
		if !s.replicated() {
			return h(w, r, p)
		}
		bw := &bufferedWriter{header: http.Header{}, status: http.StatusOK}
		if err := h(bw, r, p); err != nil {
			return err
		}
		var ans struct {
			Snapshot struct {
				Indices []string `json:"indices"`
			} `json:"snapshot"`
		}
		_ = json.Unmarshal(bw.body.Bytes(), &ans)
		if err := s.copyIndicesToAll(r.Context(), ans.Snapshot.Indices); err != nil {
			return err
		}
		for k, v := range bw.header {
			w.Header()[k] = v
		}
		w.WriteHeader(bw.status)
		_, _ = w.Write(bw.body.Bytes())
		return nil
	})
}

// everywhere wraps a request that every copy runs (refresh): run here,
// then on the other copies.
func (s *Server) everywhere(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, p params) error {
		if err := h(w, r, p); err != nil || r.Header.Get(ForwardedHeader) != "" {
			return err
		}
		rt := s.repl.routing()
		if rt == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		done := make(chan struct{}, len(rt.Copies))
		for _, c := range rt.Copies {
			if c.ID == rt.Self {
				done <- struct{}{}
				continue
			}
			go func(url string) {
				defer func() { done <- struct{}{} }()
				req, err := http.NewRequestWithContext(ctx, r.Method, url+r.URL.RequestURI(), nil)
				if err != nil {
					return
				}
				s.sec.platform().SetAuth(req)
				req.Header.Set(ForwardedHeader, rt.Self)
				if resp, err := s.repl.client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}(c.URL)
		}
		for range rt.Copies {
			<-done
		}
		return nil
	}
}

type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header         { return b.header }
func (b *bufferedWriter) WriteHeader(code int)        { b.status = code }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.body.Write(p) }

// forwardTo is the primary's URL when this request must run there, ""
// when it runs here.
func (s *Server) forwardTo(r *http.Request, write bool) (string, error) {
	p := s.repl
	p.mu.Lock()
	role, rt := p.roleLocked(), p.rt
	p.mu.Unlock()
	switch role {
	case RoleStandalone, RolePrimary:
		return "", nil
	case RoleReplica:
		if !write {
			return "", nil
		}
	}
	if r.Header.Get(ForwardedHeader) != "" || rt.Primary == rt.Self {
		return "", unavailable("[%s] is %s and cannot serve this request (no primary to forward it to in term %d): retry", rt.Self, role, rt.Term)
	}
	url := rt.url(rt.Primary)
	if url == "" {
		return "", unavailable("primary [%s] of term %d has no address: retry", rt.Primary, rt.Term)
	}
	return url, nil
}

// proxy forwards the request to another copy (the primary, or the
// holder of a scroll), with the client's own credentials, and copies its
// answer.
func (s *Server) proxy(w http.ResponseWriter, r *http.Request, base string) error {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), r.Body)
	if err != nil {
		return err
	}
	req.ContentLength = r.ContentLength
	for k, v := range r.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Authorization":
			continue
		}
		req.Header[k] = v
	}
	if PrincipalOf(r.Context()) == nil || PrincipalOf(r.Context()).Platform() {
		// Security off, or the platform itself: forward as the platform.
		s.sec.platform().SetAuth(req)
	}
	req.Header.Set(ForwardedHeader, s.cfg.Name)
	resp, err := s.repl.client.Do(req)
	if err != nil {
		return unavailable("forward to %s: %v: retry", base, err)
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return nil
}
