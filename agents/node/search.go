package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
)

func itoa(n int) string { return strconv.Itoa(n) }

// query is a compiled search query.
type query func(src map[string]any, id string) bool

// searchRequest is the part of the search body the node understands.
type searchRequest struct {
	Query json.RawMessage `json:"query"`
	Size  *int            `json:"size"`
	From  int             `json:"from"`
}

func parseSearch(r *http.Request) (searchRequest, query, error) {
	var req searchRequest
	if err := decodeBody(r, &req); err != nil {
		return req, nil, err
	}
	qs := r.URL.Query()
	if v := qs.Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return req, nil, errf(http.StatusBadRequest, "illegal_argument_exception", "invalid size [%s]", v)
		}
		req.Size = &n
	}
	if v := qs.Get("from"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return req, nil, errf(http.StatusBadRequest, "illegal_argument_exception", "invalid from [%s]", v)
		}
		req.From = n
	}
	if q := qs.Get("q"); q != "" {
		field, val, ok := strings.Cut(q, ":")
		if !ok {
			return req, nil, errf(http.StatusBadRequest, "query_shard_exception", "q must be field:value, got [%s]", q)
		}
		if field == "*" {
			return req, matchQuery("", val), nil
		}
		return req, matchQuery(field, val), nil
	}
	if len(bytes.TrimSpace(req.Query)) == 0 {
		return req, func(map[string]any, string) bool { return true }, nil
	}
	q, err := compile(req.Query)
	return req, q, err
}

func badQuery(format string, args ...any) error {
	return errf(http.StatusBadRequest, "parsing_exception", format, args...)
}

// compile turns the query DSL subset into a matcher: match_all,
// match_none, term, terms, match, ids, bool (must, filter, should,
// must_not).
func compile(raw json.RawMessage) (query, error) {
	var q map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&q); err != nil || len(q) != 1 {
		return nil, badQuery("query must be an object with exactly one query type")
	}
	for typ, body := range q {
		switch typ {
		case "match_all":
			return func(map[string]any, string) bool { return true }, nil
		case "match_none":
			return func(map[string]any, string) bool { return false }, nil
		case "term", "match":
			field, val, err := fieldValue(typ, body)
			if err != nil {
				return nil, err
			}
			if typ == "term" {
				return termQuery(field, val), nil
			}
			return matchQuery(field, fmt.Sprint(val)), nil
		case "terms":
			var m map[string][]any
			if err := unmarshalNum(body, &m); err != nil || len(m) != 1 {
				return nil, badQuery("[terms] query must name one field with an array of values")
			}
			var qs []query
			for f, vals := range m {
				for _, v := range vals {
					qs = append(qs, termQuery(f, v))
				}
			}
			return anyOf(qs), nil
		case "ids":
			var b struct {
				Values []string `json:"values"`
			}
			if err := json.Unmarshal(body, &b); err != nil {
				return nil, badQuery("[ids] query needs values: %v", err)
			}
			set := map[string]bool{}
			for _, v := range b.Values {
				set[v] = true
			}
			return func(_ map[string]any, id string) bool { return set[id] }, nil
		case "bool":
			return compileBool(body)
		default:
			return nil, badQuery("unknown query [%s]: the paddock node supports match_all, match_none, term, terms, match, ids and bool", typ)
		}
	}
	return nil, badQuery("empty query")
}

func unmarshalNum(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

func fieldValue(typ string, body json.RawMessage) (string, any, error) {
	var m map[string]any
	if err := unmarshalNum(body, &m); err != nil || len(m) != 1 {
		return "", nil, badQuery("[%s] query must name exactly one field", typ)
	}
	for f, v := range m {
		if obj, ok := v.(map[string]any); ok {
			key := "value"
			if typ == "match" {
				key = "query"
			}
			val, ok := obj[key]
			if !ok {
				return "", nil, badQuery("[%s] query on [%s] needs [%s]", typ, f, key)
			}
			return f, val, nil
		}
		return f, v, nil
	}
	return "", nil, badQuery("[%s] query is empty", typ)
}

func compileBool(body json.RawMessage) (query, error) {
	var b map[string]json.RawMessage
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, badQuery("[bool] query must be an object")
	}
	clauses := map[string][]query{}
	for occ, raw := range b {
		switch occ {
		case "must", "filter", "should", "must_not":
		case "minimum_should_match", "boost":
			continue
		default:
			return nil, badQuery("[bool] query does not support [%s]", occ)
		}
		var list []json.RawMessage
		if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
			if err := json.Unmarshal(raw, &list); err != nil {
				return nil, badQuery("[bool] %s: %v", occ, err)
			}
		} else {
			list = []json.RawMessage{raw}
		}
		for _, c := range list {
			q, err := compile(c)
			if err != nil {
				return nil, err
			}
			clauses[occ] = append(clauses[occ], q)
		}
	}
	must := append(clauses["must"], clauses["filter"]...)
	should, mustNot := clauses["should"], clauses["must_not"]
	return func(src map[string]any, id string) bool {
		for _, q := range must {
			if !q(src, id) {
				return false
			}
		}
		for _, q := range mustNot {
			if q(src, id) {
				return false
			}
		}
		if len(should) > 0 && len(must) == 0 {
			return anyOf(should)(src, id)
		}
		return true
	}, nil
}

func anyOf(qs []query) query {
	return func(src map[string]any, id string) bool {
		for _, q := range qs {
			if q(src, id) {
				return true
			}
		}
		return false
	}
}

// lookup finds a dotted field (a trailing .keyword names the field itself).
func lookup(src map[string]any, field string) (any, bool) {
	field = strings.TrimSuffix(field, ".keyword")
	if v, ok := src[field]; ok {
		return v, true
	}
	var cur any = src
	for _, part := range strings.Split(field, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// equalValue compares a document value with a query value: strings
// exactly, numbers numerically, booleans; arrays match on any element.
func equalValue(doc, want any) bool {
	if arr, ok := doc.([]any); ok {
		for _, e := range arr {
			if equalValue(e, want) {
				return true
			}
		}
		return false
	}
	df, dok := toFloat(doc)
	wf, wok := toFloat(want)
	if dok && wok {
		return df == wf
	}
	return fmt.Sprint(doc) == fmt.Sprint(want)
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}

func termQuery(field string, want any) query {
	return func(src map[string]any, _ string) bool {
		v, ok := lookup(src, field)
		return ok && equalValue(v, want)
	}
}

func tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// matchQuery: any token of text in the field's tokens (field "" = any
// field).
func matchQuery(field, text string) query {
	want := tokens(text)
	has := func(v any) bool {
		for _, t := range tokens(fmt.Sprint(v)) {
			for _, w := range want {
				if t == w {
					return true
				}
			}
		}
		return false
	}
	var walk func(v any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				if walk(e) {
					return true
				}
			}
			return false
		case []any:
			for _, e := range x {
				if walk(e) {
					return true
				}
			}
			return false
		}
		return has(v)
	}
	return func(src map[string]any, _ string) bool {
		if field == "" {
			return walk(src)
		}
		v, ok := lookup(src, field)
		return ok && walk(v)
	}
}

type hit struct {
	Index  string          `json:"_index"`
	ID     string          `json:"_id"`
	Score  float64         `json:"_score"`
	Source json.RawMessage `json:"_source"`
}

func (s *Server) run(indexExpr string, q query, from, size int) (int, []hit, error) {
	names, err := s.resolve(indexExpr)
	if err != nil {
		return 0, nil, err
	}
	total := 0
	hits := []hit{}
	if len(names) == 0 {
		return 0, hits, nil
	}
	err = s.db.scan(names, func(index, id string, src []byte) bool {
		var doc map[string]any
		if unmarshalNum(src, &doc) != nil {
			return true
		}
		if !q(doc, id) {
			return true
		}
		if total >= from && len(hits) < size {
			hits = append(hits, hit{Index: index, ID: id, Score: 1, Source: append(json.RawMessage(nil), src...)})
		}
		total++
		return true
	})
	return total, hits, err
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, index string) error {
	start := time.Now()
	req, q, err := parseSearch(r)
	if err != nil {
		return err
	}
	size := 10
	if req.Size != nil {
		size = *req.Size
	}
	total, hits, err := s.run(index, q, req.From, size)
	if err != nil {
		return err
	}
	var maxScore any
	if len(hits) > 0 {
		maxScore = 1.0
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"took": time.Since(start).Milliseconds(), "timed_out": false,
		"_shards": map[string]int{"total": 1, "successful": 1, "skipped": 0, "failed": 0},
		"hits": map[string]any{
			"total":     map[string]any{"value": total, "relation": "eq"},
			"max_score": maxScore,
			"hits":      hits,
		},
	})
	return nil
}

func (s *Server) count(w http.ResponseWriter, r *http.Request, index string) error {
	_, q, err := parseSearch(r)
	if err != nil {
		return err
	}
	total, _, err := s.run(index, q, 0, 0)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": total,
		"_shards": map[string]int{"total": 1, "successful": 1, "skipped": 0, "failed": 0}})
	return nil
}
