package dsl

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"sync"
	"time"

	"paddock/agents/node/eserr"
)

// MaxOpenScrolls is search.max_open_scroll_context.
const MaxOpenScrolls = 500

// Scrolls holds the open scroll contexts of a node. A context keeps point-
// in-time readers on its indices and a cursor per index, and is freed when
// its keep-alive passes without a Next, by Clear, or by Close.
type Scrolls struct {
	mu     sync.Mutex
	ctxs   map[string]*scrollCtx
	holder func() string
}

type scrollCtx struct {
	mu      sync.Mutex // one page at a time
	shards  []*shard
	req     *Request
	cursors [][]string
	timer   *time.Timer
	closed  bool
}

// NewScrolls returns an empty set of scroll contexts.
func NewScrolls() *Scrolls { return NewScrollsHeldBy(nil) }

// NewScrollsHeldBy returns an empty set of scroll contexts whose ids name
// the copy that holds them, holder() at the time each scroll starts. A
// deployment's proxy spreads reads over its in-sync copies, so the next
// page of a scroll can reach a copy that does not hold the context: that
// copy reads the holder from the id (ScrollHolder) and forwards the
// request there, as an Elasticsearch node routes a scroll id to the node
// named in it.
func NewScrollsHeldBy(holder func() string) *Scrolls {
	return &Scrolls{ctxs: map[string]*scrollCtx{}, holder: holder}
}

// A scroll id is base64url(holder NUL 18 random bytes); without a holder,
// 24 random bytes.
func newScrollID(holder string) string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	if holder != "" {
		b = append(append([]byte(holder), 0), b[:18]...)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// ScrollHolder is the copy named in a scroll id, "" when the id names
// none (an id from a node without a holder, or not an id at all).
func ScrollHolder(id string) string {
	b, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return ""
	}
	h, _, ok := bytes.Cut(b, []byte{0})
	if !ok || len(h) == 0 || len(h) > 128 {
		return ""
	}
	for _, c := range h {
		if c < 0x21 || c > 0x7e {
			return ""
		}
	}
	return string(h)
}

// Has reports whether the context id is open here.
func (s *Scrolls) Has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ctxs[id]
	return ok
}

// Start runs the first page of a scroll search (req.Scroll > 0) and keeps
// its context for req.Scroll. The response carries _scroll_id.
func (s *Scrolls) Start(ctx context.Context, targets []Target, req *Request) (any, error) {
	start := time.Now()
	if req.Scroll <= 0 {
		return nil, eserr.BadRequest("a scroll search needs a [scroll] keep-alive")
	}
	s.mu.Lock()
	n := len(s.ctxs)
	s.mu.Unlock()
	if n >= MaxOpenScrolls {
		return nil, eserr.New(http.StatusTooManyRequests, "exception",
			"Trying to create too many scroll contexts. Must be less than or equal to: [%d]. "+
				"This limit can be set by changing the [search.max_open_scroll_context] setting.", MaxOpenScrolls)
	}
	shards, err := openShards(targets, req, true)
	if err != nil {
		return nil, err
	}
	sc := &scrollCtx{shards: shards, req: req, cursors: make([][]string, len(shards))}
	resp, err := sc.page(ctx, true, start)
	if err != nil {
		closeShards(shards)
		return nil, err
	}
	holder := ""
	if s.holder != nil {
		holder = s.holder()
	}
	id := newScrollID(holder)
	s.mu.Lock()
	s.ctxs[id] = sc
	sc.timer = time.AfterFunc(req.Scroll, func() { s.free(id) })
	s.mu.Unlock()
	resp.ScrollID = id
	return resp, nil
}

// page returns the next size hits after each shard's cursor; the first
// page also has the aggregations.
func (sc *scrollCtx) page(ctx context.Context, first bool, start time.Time) (*response, error) {
	var m *merged
	var err error
	if first {
		m, err = run(ctx, sc.shards, sc.req, 0, sc.req.Size, nil, true)
	} else {
		m, err = runCursors(ctx, sc.shards, sc.req, sc.req.Size, sc.cursors)
	}
	if err != nil {
		return nil, err
	}
	for _, h := range m.hits {
		sc.cursors[h.s.pos] = h.s.cursor(h.d)
	}
	req := sc.req
	if !first && len(req.Aggs) > 0 {
		r := *req
		r.Aggs = nil
		req = &r
	}
	return render(ctx, req, sc.shards, m, start)
}

// runCursors is run with per-shard cursors, where a shard without a
// cursor starts from its beginning.
func runCursors(ctx context.Context, shards []*shard, req *Request, size int, cursors [][]string) (*merged, error) {
	m := &merged{}
	for i, s := range shards {
		r, err := s.collect(ctx, req, size, 0, cursors[i], nil)
		if err != nil {
			return nil, err
		}
		m.total += r.total
		if r.maxScore > m.maxScore {
			m.maxScore = r.maxScore
		}
		for _, d := range r.hits {
			m.hits = append(m.hits, mergedHit{s: s, d: d})
		}
	}
	sortMerged(m, shards)
	m.hits = m.hits[:min(size, len(m.hits))]
	return m, nil
}

// Next returns the next page of a scroll and extends its keep-alive
// (keepAlive 0 keeps the previous one). An unknown or expired id is a 404.
func (s *Scrolls) Next(ctx context.Context, id string, keepAlive time.Duration) (any, error) {
	start := time.Now()
	s.mu.Lock()
	sc, ok := s.ctxs[id]
	if ok {
		if keepAlive <= 0 {
			keepAlive = sc.req.Scroll
		}
		sc.timer.Reset(keepAlive)
	}
	s.mu.Unlock()
	if !ok {
		return nil, missingScroll(id)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.closed {
		return nil, missingScroll(id)
	}
	resp, err := sc.page(ctx, false, start)
	if err != nil {
		return nil, err
	}
	resp.ScrollID = id
	return resp, nil
}

func missingScroll(id string) error {
	return eserr.New(http.StatusNotFound, "search_context_missing_exception", "No search context found for id [%s]", id)
}

func (s *Scrolls) free(id string) bool {
	s.mu.Lock()
	sc, ok := s.ctxs[id]
	delete(s.ctxs, id)
	s.mu.Unlock()
	if !ok {
		return false
	}
	sc.timer.Stop()
	sc.mu.Lock()
	sc.closed = true
	closeShards(sc.shards)
	sc.mu.Unlock()
	return true
}

// Clear frees scroll contexts by id ("_all" or no ids: every one) and
// returns how many it freed.
func (s *Scrolls) Clear(ids []string) int {
	all := len(ids) == 0
	for _, id := range ids {
		if id == "_all" {
			all = true
		}
	}
	if all {
		s.mu.Lock()
		ids = ids[:0:0]
		for id := range s.ctxs {
			ids = append(ids, id)
		}
		s.mu.Unlock()
	}
	n := 0
	for _, id := range ids {
		if s.free(id) {
			n++
		}
	}
	return n
}

// Open returns the number of open scroll contexts.
func (s *Scrolls) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ctxs)
}

// Close frees every scroll context.
func (s *Scrolls) Close() { s.Clear(nil) }

// ClearResponse is the answer to DELETE _search/scroll: 200 when
// something was freed or everything was asked, 404 otherwise.
func ClearResponse(freed int, all bool) (status int, body any) {
	status = http.StatusOK
	if freed == 0 && !all {
		status = http.StatusNotFound
	}
	return status, map[string]any{"succeeded": true, "num_freed": freed}
}

// ParseScroll reads a _search/scroll request: the scroll id and keep-alive
// from the body ({"scroll_id": ..., "scroll": "1m"}), the URL parameters,
// or a bare id as the body.
func ParseScroll(body []byte, params url.Values) (id string, keepAlive time.Duration, err error) {
	id = params.Get("scroll_id")
	ka := params.Get("scroll")
	if b := bytes.TrimSpace(body); len(b) > 0 {
		if b[0] != '{' {
			id = string(b)
		} else {
			v, err := decodeJSON(b)
			if err != nil {
				return "", 0, err
			}
			o, _ := v.(map[string]any)
			for _, k := range sortedKeys(o) {
				switch k {
				case "scroll_id":
					id, _ = o[k].(string)
				case "scroll":
					ka, _ = o[k].(string)
				case "rest_total_hits_as_int":
				default:
					return "", 0, parsingErr("Unknown parameter [%s] in request body or parameter is of the wrong type[%s] ", k, xcontentToken(o[k]))
				}
			}
		}
	}
	if id == "" {
		return "", 0, eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: scrollId is missing;")
	}
	if ka != "" {
		if keepAlive, err = parseDuration(ka); err != nil {
			return "", 0, err
		}
	}
	return id, keepAlive, nil
}

// ParseClearScroll reads the ids of DELETE _search/scroll (body
// {"scroll_id": id or [ids]}, the scroll_id parameter, or the path's
// comma-separated ids passed as params "scroll_id").
func ParseClearScroll(body []byte, params url.Values) ([]string, error) {
	var ids []string
	for _, v := range params["scroll_id"] {
		for _, id := range bytes.Split([]byte(v), []byte(",")) {
			if len(id) > 0 {
				ids = append(ids, string(id))
			}
		}
	}
	if b := bytes.TrimSpace(body); len(b) > 0 {
		v, err := decodeJSON(b)
		if err != nil {
			return nil, err
		}
		o, ok := v.(map[string]any)
		if !ok {
			return nil, parsingErr("the clear scroll body must be an object with [scroll_id]")
		}
		switch x := o["scroll_id"].(type) {
		case string:
			ids = append(ids, x)
		case []any:
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, parsingErr("[scroll_id] must hold strings")
				}
				ids = append(ids, s)
			}
		case nil:
		default:
			return nil, parsingErr("[scroll_id] must be a string or an array of strings")
		}
	}
	return ids, nil
}
