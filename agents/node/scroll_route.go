package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"paddock/agents/node/dsl"
)

// Scrolls across copies. A scroll context lives on the copy that ran the
// first page, and its id names that copy (dsl.ScrollHolder). The proxy
// spreads a deployment's reads over its in-sync copies, so a next page or
// a clear can reach another copy: it forwards the request to the holder,
// once (a forwarded request is never forwarded again). A holder that is
// gone from the routing answers as Elasticsearch does when the node that
// held a context left: search_context_missing_exception.

// scrollHolder is the name this copy puts in its scroll ids.
func (s *Server) scrollHolder() string {
	if s.repl != nil {
		if rt := s.repl.routing(); rt != nil && rt.Self != "" {
			return rt.Self
		}
	}
	return s.cfg.Name
}

// scrollHolderURL is the URL of the copy holding scroll id when it is
// another copy of this group, "" when the request runs here.
func (s *Server) scrollHolderURL(r *http.Request, id string) string {
	if r.Header.Get(ForwardedHeader) != "" || s.repl == nil {
		return ""
	}
	rt := s.repl.routing()
	h := dsl.ScrollHolder(id)
	if rt == nil || h == "" || h == rt.Self {
		return ""
	}
	return rt.url(h)
}

// forwardScroll sends a scroll request, whose body was already read, to
// the copy at url and copies its answer.
func (s *Server) forwardScroll(w http.ResponseWriter, r *http.Request, url string, body []byte) error {
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return s.proxy(w, r, url)
}

// clearScrolls frees the contexts named (all of them when all): those
// held here at once, the others on their holders, and with _all (from a
// client, not forwarded) those of every other copy too. It returns how
// many were freed.
func (s *Server) clearScrolls(r *http.Request, ids []string, all bool) int {
	var local []string
	remote := map[string][]string{}
	for _, id := range ids {
		if id == "_all" || s.scrolls.Has(id) {
			local = append(local, id)
		} else if url := s.scrollHolderURL(r, id); url != "" {
			remote[url] = append(remote[url], id)
		} else {
			local = append(local, id)
		}
	}
	freed := 0
	switch {
	case all:
		freed = s.scrolls.Clear(nil)
	case len(local) > 0: // Clear(nil) would free every context
		freed = s.scrolls.Clear(local)
	}
	if all && r.Header.Get(ForwardedHeader) == "" && s.repl != nil {
		if rt := s.repl.routing(); rt != nil {
			for _, c := range rt.Copies {
				if c.ID != rt.Self && c.URL != "" {
					remote[rt.url(c.ID)] = []string{"_all"}
				}
			}
		}
	}
	if len(remote) == 0 {
		return freed
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for url, ids := range remote {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := s.clearRemote(ctx, r, url, ids)
			mu.Lock()
			freed += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	return freed
}

// clearRemote asks the copy at url to free ids, as the client (or the
// platform when the client is), and returns how many it freed (0 when it
// cannot be reached: its contexts expire with their keep-alive).
func (s *Server) clearRemote(ctx context.Context, r *http.Request, url string, ids []string) int {
	b, _ := json.Marshal(map[string][]string{"scroll_id": ids})
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url+"/_search/scroll", bytes.NewReader(b))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	if a := r.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	if p := PrincipalOf(r.Context()); p == nil || p.Platform() {
		s.sec.platform().SetAuth(req)
	}
	req.Header.Set(ForwardedHeader, s.cfg.Name)
	resp, err := s.repl.client.Do(req)
	if err != nil {
		s.log.Warn("clear scroll on another copy failed: its contexts expire with their keep-alive", "copy", url, "err", err)
		return 0
	}
	defer resp.Body.Close()
	var ans struct {
		NumFreed int `json:"num_freed"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ans)
	return ans.NumFreed
}
