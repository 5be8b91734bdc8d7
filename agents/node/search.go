package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"paddock/agents/node/dsl"
	"paddock/agents/node/eserr"
	"paddock/agents/node/mapping"
	"paddock/agents/node/shard"
)

// fields is the dsl's view of an index's mapping.
type fields struct{ m *mapping.Mapping }

func (f fields) Field(p string) (dsl.FieldType, bool) {
	t, ok := f.m.Type(p)
	return dsl.FieldType(t), ok
}
func (f fields) Match(pattern string) []string { return f.m.Match(pattern) }
func (f fields) Analyzer(p string) string      { return f.m.Analyzer(p) }

// DocValuesField names the companion field sorts and aggregations read.
func (f fields) DocValuesField(p string) string { return f.m.DocValuesField(p) }

// target is one index as a search target.
func target(name string, sh *shard.Shard) dsl.Target {
	return dsl.Target{
		Name:      name,
		Index:     sh.Index(),
		Fields:    fields{sh.Mapping()},
		DocValues: sh.DocValues(),
		Source: func(id string) ([]byte, dsl.DocMeta, bool) {
			src, m, ok, err := sh.Get(id)
			if err != nil || !ok {
				return nil, dsl.DocMeta{}, false
			}
			return src, dsl.DocMeta{Version: m.Version, SeqNo: m.SeqNo, PrimaryTerm: m.PrimaryTerm, Routing: m.Routing}, true
		},
	}
}

// targetsFor resolves an index expression into search targets, with
// the request's index options (q may be nil); indices reached through
// filtered aliases carry the filters.
func (s *Server) targetsFor(expr string, q url.Values) ([]dsl.Target, error) {
	rs, err := s.resolveRequest(expr, q)
	if err != nil {
		return nil, err
	}
	out := make([]dsl.Target, 0, len(rs))
	for _, rv := range rs {
		if sh := s.index(rv.Index); sh != nil {
			t := target(rv.Index, sh)
			t.Filters = rv.Filters
			out = append(out, t)
		}
	}
	return out, nil
}

func (s *Server) parseSearch(r *http.Request) (*dsl.Request, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	if src := q.Get("source"); len(body) == 0 && src != "" {
		body = []byte(src)
		q.Del("source")
		q.Del("source_content_type")
	}
	return dsl.ParseSearch(body, q)
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, p params) error {
	req, err := s.parseSearch(r)
	if err != nil {
		return err
	}
	targets, err := s.targetsFor(p["index"], r.URL.Query())
	if err != nil {
		return err
	}
	var resp any
	if req.Scroll > 0 {
		resp, err = s.scrolls.Start(r.Context(), targets, req)
	} else {
		resp, err = dsl.Search(r.Context(), targets, req)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) count(w http.ResponseWriter, r *http.Request, p params) error {
	req, err := s.parseSearch(r)
	if err != nil {
		return err
	}
	targets, err := s.targetsFor(p["index"], r.URL.Query())
	if err != nil {
		return err
	}
	n, err := dsl.Count(r.Context(), targets, req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": n,
		"_shards": map[string]int{"total": len(targets), "successful": len(targets), "skipped": 0, "failed": 0}})
	return nil
}

// byQueryBatch is how many documents a by-query request writes at once.
const byQueryBatch = 1000

// byQuery runs _delete_by_query and _update_by_query: the documents
// matching the query at the last refresh are deleted, or re-indexed from
// their source (no scripts).
func (s *Server) byQuery(w http.ResponseWriter, r *http.Request, p params, del bool) error {
	start := time.Now()
	q := r.URL.Query()
	if q.Has("script") {
		return eserr.BadRequest("scripts are not supported by the paddock node (no scripting engine)")
	}
	var raw map[string]any
	err := decodeBody(r, &raw)
	if err != nil {
		return err
	}
	if _, ok := raw["script"]; ok {
		return eserr.BadRequest("scripts are not supported by the paddock node (no scripting engine): _update_by_query without a script re-indexes the matching documents from their source")
	}
	proceed := q.Get("conflicts") == "proceed"
	if c, ok := raw["conflicts"]; ok {
		proceed = c == "proceed"
	}
	maxDocs := -1
	if v := q.Get("max_docs"); v != "" {
		if maxDocs, err = strconv.Atoi(v); err != nil || maxDocs < 0 {
			return eserr.BadRequest("[max_docs] must be a non-negative number, got [%s]", v)
		}
	}
	if v, ok := raw["max_docs"]; ok {
		if maxDocs, err = strconv.Atoi(fmt.Sprint(v)); err != nil || maxDocs < 0 {
			return eserr.BadRequest("[max_docs] must be a non-negative number, got [%v]", v)
		}
	}
	for k := range raw {
		switch k {
		case "query", "conflicts", "max_docs":
		default:
			return eserr.New(http.StatusBadRequest, "parsing_exception", "[%s] unknown field [%s]", map[bool]string{true: "delete_by_query", false: "update_by_query"}[del], k)
		}
	}
	refresh, err := refreshParam(q)
	if err != nil {
		return err
	}
	params := url.Values{}
	for _, k := range []string{"q", "df", "default_operator", "analyzer", "lenient"} {
		if q.Has(k) {
			params[k] = q[k]
		}
	}
	var body2 []byte
	if qv, ok := raw["query"]; ok {
		body2, _ = json.Marshal(map[string]any{"query": qv})
	}
	req, err := dsl.ParseSearch(body2, params)
	if err != nil {
		return err
	}
	targets, err := s.targetsFor(p["index"], r.URL.Query())
	if err != nil {
		return err
	}
	ids := map[string][]string{}
	n := 0
	err = dsl.Matching(r.Context(), targets, req, func(index, id string) error {
		if maxDocs >= 0 && n >= maxDocs {
			return nil
		}
		n++
		ids[index] = append(ids[index], id)
		return nil
	})
	if err != nil {
		return err
	}
	done, conflicts, noops := 0, 0, 0
	var failures []any
	for _, t := range targets {
		sh := s.index(t.Name)
		list := ids[t.Name]
		if sh == nil || len(list) == 0 {
			continue
		}
		maxSeq := int64(-1)
		for startAt := 0; startAt < len(list); startAt += byQueryBatch {
			chunk := list[startAt:min(startAt+byQueryBatch, len(list))]
			ops := make([]shard.Op, len(chunk))
			for i, id := range chunk {
				if del {
					ops[i] = shard.Op{Kind: shard.OpDelete, ID: id}
					continue
				}
				ops[i] = shard.Op{Kind: shard.OpUpdate, ID: id, Update: func(cur []byte, exists bool) ([]byte, bool, error) {
					if !exists {
						return nil, true, nil
					}
					return cur, false, nil
				}}
			}
			res, _, err := s.writeShard(r.Context(), sh, ops, refresh)
			if err != nil {
				return err
			}
			for i, rs := range res {
				switch {
				case rs.Err != nil:
					e := eserr.From(rs.Err)
					if e.Status == http.StatusConflict {
						conflicts++
						if proceed {
							continue
						}
					}
					failures = append(failures, map[string]any{"index": t.Name, "id": chunk[i], "cause": e.Item(), "status": e.Status})
				case rs.Result == "noop" || rs.Result == "not_found":
					noops++
				default:
					done++
					maxSeq = max(maxSeq, rs.SeqNo)
				}
			}
		}
		if maxSeq >= 0 {
			if _, err := afterWrite(r.Context(), sh, refresh, maxSeq); err != nil {
				return err
			}
		}
	}
	if failures == nil {
		failures = []any{}
	}
	out := map[string]any{"took": time.Since(start).Milliseconds(), "timed_out": false, "total": n,
		"batches": (n + byQueryBatch - 1) / byQueryBatch, "version_conflicts": conflicts, "noops": noops,
		"retries": map[string]int{"bulk": 0, "search": 0}, "throttled_millis": 0, "requests_per_second": -1.0,
		"throttled_until_millis": 0, "failures": failures}
	if del {
		out["deleted"] = done
	} else {
		out["updated"] = done
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteByQuery(w http.ResponseWriter, r *http.Request, p params) error {
	return s.byQuery(w, r, p, true)
}

func (s *Server) updateByQuery(w http.ResponseWriter, r *http.Request, p params) error {
	return s.byQuery(w, r, p, false)
}

func (s *Server) msearch(w http.ResponseWriter, r *http.Request, p params) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	def := p["index"]
	resp, err := dsl.MultiSearch(r.Context(), body, r.URL.Query(), func(expr string) ([]dsl.Target, error) {
		if expr == "" {
			expr = def
		}
		return s.targetsFor(expr, r.URL.Query())
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) scroll(w http.ResponseWriter, r *http.Request, p params) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if id := p["scroll_id"]; id != "" {
		q.Set("scroll_id", id)
	}
	id, keepAlive, err := dsl.ParseScroll(body, q)
	if err != nil {
		return err
	}
	if !s.scrolls.Has(id) {
		if url := s.scrollHolderURL(r, id); url != "" {
			return s.forwardScroll(w, r, url, body)
		}
	}
	resp, err := s.scrolls.Next(r.Context(), id, keepAlive)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) clearScroll(w http.ResponseWriter, r *http.Request, p params) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if id := p["scroll_id"]; id != "" {
		q.Set("scroll_id", id)
	}
	ids, err := dsl.ParseClearScroll(body, q)
	if err != nil {
		return err
	}
	all := len(ids) == 0
	for _, id := range ids {
		all = all || id == "_all"
	}
	status, resp := dsl.ClearResponse(s.clearScrolls(r, ids, all), all)
	writeJSON(w, status, resp)
	return nil
}
