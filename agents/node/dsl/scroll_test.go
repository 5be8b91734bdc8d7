package dsl

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"testing"
	"time"

	"paddock/agents/node/eserr"
	"paddock/engine/testenv"
)

func manyDocs(n int, offset int) []testDoc {
	var docs []testDoc
	for i := 0; i < n; i++ {
		docs = append(docs, testDoc{fmt.Sprintf("d%03d", i+offset), fmt.Sprintf(`{"title":"doc number %d","year":%d,"author":"a%d"}`, i+offset, 2000+(i%3), i%4)})
	}
	return docs
}

// scrollAll pages through a scroll and returns every id seen.
func scrollAll(t *testing.T, s *Scrolls, targets []Target, body string) ([]string, string) {
	t.Helper()
	req, err := ParseSearch([]byte(body), url.Values{"scroll": {"1m"}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Start(context.Background(), targets, req)
	if err != nil {
		t.Fatal(err)
	}
	m := roundTrip(t, resp)
	id, _ := m["_scroll_id"].(string)
	if id == "" {
		t.Fatalf("no _scroll_id: %v", m)
	}
	var ids []string
	for pages := 0; pages < 100; pages++ {
		got := hitIDs(m)
		if len(got) == 0 {
			return ids, id
		}
		ids = append(ids, got...)
		resp, err = s.Next(context.Background(), id, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		m = roundTrip(t, resp)
		if m["_scroll_id"] != id {
			t.Fatalf("scroll id changed")
		}
		if _, ok := m["aggregations"]; ok {
			t.Errorf("aggregations on a later page")
		}
	}
	t.Fatal("scroll did not end")
	return nil, ""
}

func TestScroll(t *testing.T) {
	a := newTestIndex(t, "a", bookFields, manyDocs(23, 0))
	b := newTestIndex(t, "b", bookFields, manyDocs(11, 100))
	s := NewScrolls()
	defer s.Close()
	cases := []struct {
		name    string
		targets []Target
		body    string
		want    int
	}{
		{"one index by score", []Target{a.target()}, `{"size":5,"query":{"match":{"title":"doc"}}}`, 23},
		{"one index match_all", []Target{a.target()}, `{"size":4}`, 23},
		{"two indices sorted with ties", []Target{a.target(), b.target()}, `{"size":3,"sort":[{"year":"asc"}]}`, 34},
		{"two indices _doc", []Target{a.target(), b.target()}, `{"size":7,"sort":["_doc"],"aggs":{"y":{"terms":{"field":"year"}}}}`, 34},
		{"filtered", []Target{a.target(), b.target()}, `{"size":2,"query":{"term":{"author":"a1"}}}`, 9},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ids, id := scrollAll(t, s, tc.targets, tc.body)
			if len(ids) != tc.want {
				t.Errorf("saw %d hits, want %d", len(ids), tc.want)
			}
			seen := map[string]bool{}
			for _, x := range ids {
				if seen[x] {
					t.Errorf("hit %s twice", x)
				}
				seen[x] = true
			}
			if n := s.Clear([]string{id}); n != 1 {
				t.Errorf("Clear = %d", n)
			}
		})
	}
	if s.Open() != 0 {
		t.Errorf("%d contexts left open", s.Open())
	}
}

func TestScrollSortedOrder(t *testing.T) {
	a := newTestIndex(t, "a", bookFields, manyDocs(10, 0))
	s := NewScrolls()
	defer s.Close()
	ids, _ := scrollAll(t, s, []Target{a.target()}, `{"size":3,"sort":[{"year":"desc"},{"author":"asc"}]}`)
	resp := doSearch(t, []Target{a.target()}, `{"size":10,"sort":[{"year":"desc"},{"author":"asc"}]}`, nil)
	want := hitIDs(resp)
	// equal sort values may come in any order: compare as pages of keys
	if len(ids) != len(want) {
		t.Fatalf("scroll %v, search %v", ids, want)
	}
	sorted := append([]string(nil), ids...)
	sort.Strings(sorted)
	w := append([]string(nil), want...)
	sort.Strings(w)
	if !reflect.DeepEqual(sorted, w) {
		t.Errorf("scroll %v, search %v", ids, want)
	}
}

func TestScrollExpiryAndErrors(t *testing.T) {
	a := newTestIndex(t, "a", bookFields, manyDocs(5, 0))
	s := NewScrolls()
	defer s.Close()
	req, err := ParseSearch([]byte(`{"size":1}`), url.Values{"scroll": {"50ms"}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.Start(context.Background(), []Target{a.target()}, req)
	if err != nil {
		t.Fatal(err)
	}
	id := roundTrip(t, resp)["_scroll_id"].(string)
	testenv.Eventually(t, 5*time.Second, "the scroll context to expire", func() bool { return s.Open() == 0 })
	_, err = s.Next(context.Background(), id, 0)
	if e := eserr.From(err); err == nil || e.Status != 404 || e.Type != "search_context_missing_exception" {
		t.Errorf("Next after expiry: %v", err)
	}
	if _, err := ParseSearch([]byte(`{"from":2}`), url.Values{"scroll": {"1m"}}); err == nil {
		t.Errorf("from in a scroll: no error")
	}
	if _, err := ParseSearch(nil, url.Values{"scroll": {"1x"}}); err == nil {
		t.Errorf("bad keep-alive: no error")
	}
	if status, _ := ClearResponse(s.Clear([]string{"nope"}), false); status != 404 {
		t.Errorf("clear unknown: %d", status)
	}
}

func TestParseScrollRequests(t *testing.T) {
	id, ka, err := ParseScroll([]byte(`{"scroll":"2m","scroll_id":"abc"}`), nil)
	if err != nil || id != "abc" || ka != 2*time.Minute {
		t.Errorf("ParseScroll = %q %v %v", id, ka, err)
	}
	id, _, err = ParseScroll(nil, url.Values{"scroll_id": {"xyz"}})
	if err != nil || id != "xyz" {
		t.Errorf("ParseScroll params = %q %v", id, err)
	}
	if _, _, err := ParseScroll([]byte(`{}`), nil); err == nil {
		t.Errorf("no id: no error")
	}
	ids, err := ParseClearScroll([]byte(`{"scroll_id":["a","b"]}`), url.Values{"scroll_id": {"c,d"}})
	if err != nil || !reflect.DeepEqual(ids, []string{"c", "d", "a", "b"}) {
		t.Errorf("ParseClearScroll = %v %v", ids, err)
	}
}

func TestMultiSearch(t *testing.T) {
	b := books(t)
	resolve := func(expr string) ([]Target, error) {
		switch expr {
		case "", "books":
			return []Target{b.target()}, nil
		}
		return nil, eserr.IndexNotFound(expr)
	}
	body := `{"index":"books"}
{"query":{"term":{"author":"alice"}}}
{}
{"size":0,"aggs":{"a":{"max":{"field":"year"}}}}
{"index":"missing"}
{"query":{"match_all":{}}}
{"index":"books"}
{"query":{"bogus":{}}}
{"index":"books"
{"query":{"match_all":{}}}
{"index":["books"]}
{"query":{"ids":{"values":["4"]}}}
`
	resp, err := MultiSearch(context.Background(), []byte(body), nil, resolve)
	if err != nil {
		t.Fatal(err)
	}
	m := roundTrip(t, resp)
	items := m["responses"].([]any)
	if len(items) != 6 {
		t.Fatalf("%d responses", len(items))
	}
	get := func(i int) map[string]any { return items[i].(map[string]any) }
	if ids := hitIDs(get(0)); !sameSet(ids, []string{"1", "3"}) || get(0)["status"] != 200.0 {
		t.Errorf("item 0: %v", get(0))
	}
	if v := get(1)["aggregations"].(map[string]any)["a"].(map[string]any)["value"]; v != 2020.0 {
		t.Errorf("item 1: %v", get(1))
	}
	for i, typ := range map[int]string{2: "index_not_found_exception", 3: "parsing_exception", 4: "x_content_parse_exception"} {
		e, ok := get(i)["error"].(map[string]any)
		if !ok || e["type"] != typ || get(i)["status"].(float64) < 400 {
			t.Errorf("item %d: %v, want %s", i, get(i), typ)
		}
	}
	if ids := hitIDs(get(5)); !reflect.DeepEqual(ids, []string{"4"}) {
		t.Errorf("item 5: %v", get(5))
	}
	if _, err := MultiSearch(context.Background(), []byte("\n\n"), nil, resolve); err == nil {
		t.Errorf("empty msearch: no error")
	}
}
