package dsl

import (
	"context"
	"encoding/json"
	"net/url"
	"reflect"
	"testing"

	"paddock/agents/node/eserr"
)

var bookFields = testFields{
	types: map[string]FieldType{
		"title": Text, "title.keyword": Keyword, "author": Keyword, "year": Long, "price": Double,
		"published": Date, "in_stock": Boolean, "tags": Keyword, "body": Text, "meta": Object, "meta.pages": Integer,
	},
	analyzers: map[string]string{"body": "english"},
}

var bookDocs = []testDoc{
	{"1", `{"title":"The Quick Brown Fox","author":"alice","year":2001,"price":10.5,"published":"2001-05-01","in_stock":true,"tags":["animals","classic"],"body":"foxes are running quickly","meta":{"pages":120}}`},
	{"2", `{"title":"Lazy Dogs","author":"bob","year":1999,"price":7,"published":"1999-01-15","in_stock":false,"tags":["animals"],"body":"the dog sleeps"}`},
	{"3", `{"title":"Quick quick quick","author":"alice","year":2010,"price":20,"published":"2010-10-10T10:00:00Z","in_stock":true,"tags":["speed"],"meta":{"pages":300}}`},
	{"4", `{"title":"Brown bread recipes","author":"carol","year":2015,"published":"2015-03-01","in_stock":true,"body":"bread and butter"}`},
	{"5", `{"title":"A fox in winter","author":"Dave","year":2020,"price":15,"published":"2020-12-24","tags":["animals","winter"]}`},
}

func books(t testing.TB) *testIndex { return newTestIndex(t, "books", bookFields, bookDocs) }

// doSearch parses and runs a search and returns the response as generic JSON.
func doSearch(t testing.TB, targets []Target, body string, params url.Values) map[string]any {
	t.Helper()
	req, err := ParseSearch([]byte(body), params)
	if err != nil {
		t.Fatalf("ParseSearch(%s): %v", body, err)
	}
	resp, err := Search(context.Background(), targets, req)
	if err != nil {
		t.Fatalf("Search(%s): %v", body, err)
	}
	return roundTrip(t, resp)
}

func roundTrip(t testing.TB, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func hitIDs(resp map[string]any) []string {
	ids := []string{}
	for _, h := range resp["hits"].(map[string]any)["hits"].([]any) {
		ids = append(ids, h.(map[string]any)["_id"].(string))
	}
	return ids
}

func total(resp map[string]any) (float64, string) {
	tot := resp["hits"].(map[string]any)["total"].(map[string]any)
	return tot["value"].(float64), tot["relation"].(string)
}

func TestSearchBasics(t *testing.T) {
	b := books(t)
	targets := []Target{b.target()}
	cases := []struct {
		name   string
		body   string
		params url.Values
		ids    []string // in order; nil: check only the set via set
		set    []string
		total  float64
	}{
		{name: "match_all", body: `{"query":{"match_all":{}}}`, set: []string{"1", "2", "3", "4", "5"}, total: 5},
		{name: "empty body", body: ``, set: []string{"1", "2", "3", "4", "5"}, total: 5},
		{name: "term keyword", body: `{"query":{"term":{"author":"alice"}}}`, set: []string{"1", "3"}, total: 2},
		{name: "term keyword is exact", body: `{"query":{"term":{"author":"dave"}}}`, set: []string{}, total: 0},
		{name: "term case_insensitive", body: `{"query":{"term":{"author":{"value":"dave","case_insensitive":true}}}}`, set: []string{"5"}, total: 1},
		{name: "term number", body: `{"query":{"term":{"year":1999}}}`, set: []string{"2"}, total: 1},
		{name: "term number as string", body: `{"query":{"term":{"year":"2010"}}}`, set: []string{"3"}, total: 1},
		{name: "term boolean", body: `{"query":{"term":{"in_stock":false}}}`, set: []string{"2"}, total: 1},
		{name: "term unmapped", body: `{"query":{"term":{"nope":"x"}}}`, set: []string{}, total: 0},
		{name: "match ranks by BM25", body: `{"query":{"match":{"title":"quick"}}}`, ids: []string{"3", "1"}, total: 2},
		{name: "match or", body: `{"query":{"match":{"title":"quick fox"}}}`, set: []string{"1", "3", "5"}, total: 3},
		{name: "match and", body: `{"query":{"match":{"title":{"query":"quick fox","operator":"and"}}}}`, set: []string{"1"}, total: 1},
		{name: "match english stems", body: `{"query":{"match":{"body":"fox run"}}}`, set: []string{"1"}, total: 1},
		{name: "match fuzziness", body: `{"query":{"match":{"title":{"query":"quikc","fuzziness":"AUTO"}}}}`, set: []string{"1", "3"}, total: 2},
		{name: "match keyword field is exact", body: `{"query":{"match":{"author":"alice"}}}`, set: []string{"1", "3"}, total: 2},
		{name: "ids", body: `{"query":{"ids":{"values":["2","4","9"]}}}`, set: []string{"2", "4"}, total: 2},
		{name: "term _id", body: `{"query":{"term":{"_id":"4"}}}`, set: []string{"4"}, total: 1},
		{name: "from size", body: `{"query":{"match_all":{}},"sort":["year"],"from":1,"size":2}`, ids: []string{"1", "3"}, total: 5},
		{name: "size param", body: `{"sort":[{"year":"desc"}]}`, params: url.Values{"size": {"1"}}, ids: []string{"5"}, total: 5},
		{name: "q param", params: url.Values{"q": {"author:alice"}}, set: []string{"1", "3"}, total: 2},
		{name: "q param free text", params: url.Values{"q": {"bread"}}, set: []string{"4"}, total: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := doSearch(t, targets, tc.body, tc.params)
			got := hitIDs(resp)
			if tc.ids != nil && !reflect.DeepEqual(got, tc.ids) {
				t.Errorf("ids = %v, want %v", got, tc.ids)
			}
			if tc.set != nil && !sameSet(got, tc.set) {
				t.Errorf("ids = %v, want the set %v", got, tc.set)
			}
			if v, rel := total(resp); v != tc.total || rel != "eq" {
				t.Errorf("total = %v %s, want %v eq", v, rel, tc.total)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestHitShape(t *testing.T) {
	b := books(t)
	resp := doSearch(t, []Target{b.target()}, `{"query":{"term":{"author":"bob"}},"version":true,"seq_no_primary_term":true}`, nil)
	hits := resp["hits"].(map[string]any)
	if hits["max_score"] == nil {
		t.Errorf("max_score is null for a scored search")
	}
	h := hits["hits"].([]any)[0].(map[string]any)
	for _, k := range []string{"_index", "_id", "_score", "_source", "_version", "_seq_no", "_primary_term"} {
		if _, ok := h[k]; !ok {
			t.Errorf("hit lacks %s: %v", k, h)
		}
	}
	if h["_index"] != "books" || h["_source"].(map[string]any)["title"] != "Lazy Dogs" {
		t.Errorf("hit = %v", h)
	}
	if _, ok := resp["_shards"]; !ok {
		t.Errorf("no _shards: %v", resp)
	}
	// without version: no _version
	resp = doSearch(t, []Target{b.target()}, `{"query":{"term":{"author":"bob"}}}`, nil)
	h = resp["hits"].(map[string]any)["hits"].([]any)[0].(map[string]any)
	if _, ok := h["_version"]; ok {
		t.Errorf("_version shown without version=true: %v", h)
	}
}

func TestTrackTotalHits(t *testing.T) {
	b := books(t)
	cases := []struct {
		body    string
		value   float64
		rel     string
		noTotal bool
	}{
		{body: `{"track_total_hits":2}`, value: 2, rel: "gte"},
		{body: `{"track_total_hits":true}`, value: 5, rel: "eq"},
		{body: `{"track_total_hits":10}`, value: 5, rel: "eq"},
		{body: `{"track_total_hits":false}`, noTotal: true},
	}
	for _, tc := range cases {
		t.Run(tc.body, func(t *testing.T) {
			resp := doSearch(t, []Target{b.target()}, tc.body, nil)
			hits := resp["hits"].(map[string]any)
			if tc.noTotal {
				if _, ok := hits["total"]; ok {
					t.Fatalf("total present: %v", hits["total"])
				}
				return
			}
			if v, rel := total(resp); v != tc.value || rel != tc.rel {
				t.Errorf("total = %v %s, want %v %s", v, rel, tc.value, tc.rel)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, body string
		params     url.Values
		status     int
		typ        string
		reason     string // substring
	}{
		{name: "unknown query", body: `{"query":{"bogus":{}}}`, status: 400, typ: "parsing_exception", reason: "unknown query [bogus]"},
		{name: "unknown nested query", body: `{"query":{"bool":{"must":[{"nope":{"a":1}}]}}}`, status: 400, typ: "parsing_exception", reason: "unknown query [nope]"},
		{name: "malformed JSON", body: `{"query":`, status: 400, typ: "x_content_parse_exception"},
		{name: "two query types", body: `{"query":{"match_all":{},"term":{"a":"b"}}}`, status: 400, typ: "parsing_exception"},
		{name: "term multiple fields", body: `{"query":{"term":{"a":"b","c":"d"}}}`, status: 400, typ: "parsing_exception", reason: "multiple fields"},
		{name: "unknown key", body: `{"quer":{}}`, status: 400, typ: "parsing_exception", reason: "[quer]"},
		{name: "window", body: `{"from":9995,"size":10}`, status: 400, typ: "illegal_argument_exception", reason: "Result window is too large"},
		{name: "negative size", body: `{"size":-1}`, status: 400, typ: "illegal_argument_exception"},
		{name: "bad size param", params: url.Values{"size": {"x"}}, status: 400, typ: "illegal_argument_exception"},
		{name: "bad operator", body: `{"query":{"match":{"t":{"query":"x","operator":"xor"}}}}`, status: 400, typ: "parsing_exception"},
		{name: "query string syntax", body: `{"query":{"query_string":{"query":"(a AND"}}}`, status: 400, typ: "parsing_exception"},
		{name: "too deep", body: deepBool(40), status: 400, typ: "parsing_exception", reason: "nested too deeply"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSearch([]byte(tc.body), tc.params)
			if err == nil {
				t.Fatal("no error")
			}
			e := eserr.From(err)
			if e.Status != tc.status || e.Type != tc.typ || !contains(e.Reason, tc.reason) {
				t.Errorf("error = %d %s %q, want %d %s containing %q", e.Status, e.Type, e.Reason, tc.status, tc.typ, tc.reason)
			}
		})
	}
}

func deepBool(n int) string {
	s := `{"match_all":{}}`
	for i := 0; i < n; i++ {
		s = `{"bool":{"must":` + s + `}}`
	}
	return `{"query":` + s + `}`
}

func contains(s, sub string) bool {
	return sub == "" || len(s) >= len(sub) && (func() bool {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
		return false
	})()
}

func TestSearchErrorsAtRunTime(t *testing.T) {
	b := books(t)
	cases := []struct {
		name, body string
		typ        string
		reason     string
	}{
		{"term on number with text", `{"query":{"term":{"year":"abc"}}}`, "query_shard_exception", "abc"},
		{"sort on text", `{"sort":["title"]}`, "illegal_argument_exception", "Text fields are not optimised"},
		{"sort on unmapped", `{"sort":["nope"]}`, "query_shard_exception", "No mapping found for [nope]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ParseSearch([]byte(tc.body), nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Search(context.Background(), []Target{b.target()}, req)
			if err == nil {
				t.Fatal("no error")
			}
			e := eserr.From(err)
			if e.Status != 400 || e.Type != tc.typ || !contains(e.Reason, tc.reason) {
				t.Errorf("error = %d %s %q", e.Status, e.Type, e.Reason)
			}
		})
	}
}

func TestCountAndMatching(t *testing.T) {
	b := books(t)
	req, err := ParseSearch([]byte(`{"query":{"term":{"tags":"animals"}}}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Count(context.Background(), []Target{b.target()}, req)
	if err != nil || n != 3 {
		t.Fatalf("Count = %d, %v; want 3", n, err)
	}
	var got []string
	err = Matching(context.Background(), []Target{b.target()}, req, func(index, id string) error {
		if index != "books" {
			t.Errorf("index %s", index)
		}
		got = append(got, id)
		return nil
	})
	if err != nil || !sameSet(got, []string{"1", "2", "5"}) {
		t.Fatalf("Matching = %v, %v", got, err)
	}
}

func TestMultipleTargets(t *testing.T) {
	a := books(t)
	other := newTestIndex(t, "more", bookFields, []testDoc{{"x", `{"title":"quick quick","year":1990}`}})
	resp := doSearch(t, []Target{a.target(), other.target()}, `{"sort":[{"year":"asc"}],"size":3}`, nil)
	if got := hitIDs(resp); !reflect.DeepEqual(got, []string{"x", "2", "1"}) {
		t.Errorf("ids = %v", got)
	}
	if v, _ := total(resp); v != 6 {
		t.Errorf("total = %v", v)
	}
	h := resp["hits"].(map[string]any)["hits"].([]any)[0].(map[string]any)
	if h["_index"] != "more" || h["_score"] != nil {
		t.Errorf("first hit = %v", h)
	}
	if !reflect.DeepEqual(h["sort"], []any{1990.0}) {
		t.Errorf("sort = %v", h["sort"])
	}
}

func TestAliasFilters(t *testing.T) {
	b := books(t)
	tg := b.target()
	tg.Filters = []json.RawMessage{json.RawMessage(`{"term":{"author":"alice"}}`), json.RawMessage(`{"term":{"author":"bob"}}`)}
	resp := doSearch(t, []Target{tg}, `{"query":{"range":{"year":{"gte":2000}}}}`, nil)
	if got := hitIDs(resp); !sameSet(got, []string{"1", "3"}) {
		t.Errorf("ids = %v", got)
	}
	tg.Filters = []json.RawMessage{json.RawMessage(`{"bogus":{}}`)}
	if _, err := Search(context.Background(), []Target{tg}, mustParse(t, `{}`)); eserr.From(err).Status != 400 {
		t.Errorf("bad alias filter: %v", err)
	}
}
