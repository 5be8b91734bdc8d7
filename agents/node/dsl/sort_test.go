package dsl

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"paddock/agents/node/eserr"
)

func TestSort(t *testing.T) {
	for _, companion := range []bool{false, true} {
		t.Run(fmt.Sprintf("companion=%v", companion), func(t *testing.T) { testSort(t, companion) })
	}
}

func testSort(t *testing.T, companion bool) {
	fields := bookFields
	fields.companion = companion
	b := newTestIndex(t, "books", fields, bookDocs)
	cases := []struct {
		name  string
		body  string
		ids   []string
		sort0 []any // sort values of the first hit
	}{
		{"long asc", `{"sort":["year"]}`, []string{"2", "1", "3", "4", "5"}, []any{1999.0}},
		{"long desc", `{"sort":[{"year":"desc"}]}`, []string{"5", "4", "3", "1", "2"}, []any{2020.0}},
		{"double missing last", `{"sort":[{"price":{"order":"asc"}}]}`, []string{"2", "1", "5", "3", "4"}, []any{7.0}},
		{"double missing first", `{"sort":[{"price":{"order":"asc","missing":"_first"}}]}`, []string{"4", "2", "1", "5", "3"}, []any{nil}},
		{"double desc missing last", `{"sort":[{"price":{"order":"desc"}}]}`, []string{"3", "5", "1", "2", "4"}, []any{20.0}},
		{"keyword", `{"sort":[{"author":"asc"},{"year":"desc"}]}`, []string{"5", "3", "1", "2", "4"}, []any{"Dave", 2020.0}},
		{"date", `{"sort":[{"published":"desc"}]}`, []string{"5", "4", "3", "1", "2"}, []any{1608768000000.0}},
		{"multi-valued keyword asc takes min", `{"query":{"exists":{"field":"tags"}},"sort":[{"tags":"asc"},{"year":"asc"}]}`, []string{"2", "1", "5", "3"}, []any{"animals", 1999.0}},
		{"multi-valued keyword desc takes max", `{"query":{"exists":{"field":"tags"}},"sort":[{"tags":"desc"}]}`, []string{"5", "3"}, []any{"winter"}},
		{"boolean", `{"query":{"exists":{"field":"in_stock"}},"sort":[{"in_stock":"asc"},{"year":"asc"}]}`, []string{"2", "1", "3", "4"}, []any{0.0, 1999.0}},
		{"_score then field", `{"query":{"match":{"title":"quick"}},"sort":["_score",{"year":"asc"}]}`, []string{"3", "1"}, nil},
		{"_doc", `{"sort":["_doc"]}`, nil, nil},
		{"url sort", ``, []string{"5", "4", "3", "1", "2"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var params map[string][]string
			if tc.name == "url sort" {
				params = map[string][]string{"sort": {"year:desc"}}
			}
			resp := doSearch(t, []Target{b.target()}, tc.body, params)
			got := hitIDs(resp)
			if tc.ids != nil {
				if len(tc.ids) < len(got) {
					got = got[:len(tc.ids)]
				}
				if !reflect.DeepEqual(got, tc.ids) {
					t.Errorf("ids = %v, want %v", got, tc.ids)
				}
			}
			if tc.sort0 != nil {
				h := resp["hits"].(map[string]any)["hits"].([]any)[0].(map[string]any)
				if !reflect.DeepEqual(h["sort"], tc.sort0) {
					t.Errorf("sort = %#v, want %#v", h["sort"], tc.sort0)
				}
				if h["_score"] != nil {
					t.Errorf("_score = %v, want null when sorting by a field", h["_score"])
				}
			}
		})
	}
}

func TestSearchAfter(t *testing.T) {
	b := books(t)
	targets := []Target{b.target()}
	pages := [][]string{}
	body := `{"size":2,"sort":[{"price":"asc"},{"year":"desc"}]}`
	var after []any
	for i := 0; i < 4; i++ {
		req := mustParse(t, body)
		req.SearchAfter = after
		resp, err := Search(context.Background(), targets, req)
		if err != nil {
			t.Fatal(err)
		}
		m := roundTrip(t, resp)
		ids := hitIDs(m)
		if len(ids) == 0 {
			break
		}
		pages = append(pages, ids)
		hits := m["hits"].(map[string]any)["hits"].([]any)
		after = hits[len(hits)-1].(map[string]any)["sort"].([]any)
	}
	want := [][]string{{"2", "1"}, {"5", "3"}, {"4"}}
	if !reflect.DeepEqual(pages, want) {
		t.Errorf("pages = %v, want %v", pages, want)
	}
	// search_after through the body, with a date
	resp := doSearch(t, targets, `{"sort":[{"published":"asc"}],"search_after":["2001-05-01"]}`, nil)
	if got := hitIDs(resp); !reflect.DeepEqual(got, []string{"3", "4", "5"}) {
		t.Errorf("after a date: %v", got)
	}
	resp = doSearch(t, targets, `{"sort":[{"published":"asc"}],"search_after":[988675200000]}`, nil)
	if got := hitIDs(resp); !reflect.DeepEqual(got, []string{"3", "4", "5"}) {
		t.Errorf("after epoch millis: %v", got)
	}
	if _, err := ParseSearch([]byte(`{"sort":["year"],"search_after":[1,2]}`), nil); err == nil {
		t.Errorf("search_after longer than sort: no error")
	}
	if _, err := ParseSearch([]byte(`{"sort":["year"],"from":2,"search_after":[1]}`), nil); err == nil {
		t.Errorf("search_after with from: no error")
	}
}

func TestSourceFiltering(t *testing.T) {
	b := books(t)
	cases := []struct {
		body string
		want map[string]any
	}{
		{`{"_source":false}`, nil},
		{`{"_source":["title","meta.*"]}`, map[string]any{"title": "The Quick Brown Fox", "meta": map[string]any{"pages": 120.0}}},
		{`{"_source":"auth*"}`, map[string]any{"author": "alice"}},
		{`{"_source":{"includes":["meta"],"excludes":["meta.pages"]}}`, map[string]any{"meta": map[string]any{}}},
		{`{"_source":{"excludes":["tags","body","meta","price","published","in_stock","year"]}}`, map[string]any{"title": "The Quick Brown Fox", "author": "alice"}},
	}
	for _, tc := range cases {
		t.Run(tc.body, func(t *testing.T) {
			body := tc.body[:len(tc.body)-1] + `,"query":{"ids":{"values":["1"]}}}`
			resp := doSearch(t, []Target{b.target()}, body, nil)
			h := resp["hits"].(map[string]any)["hits"].([]any)[0].(map[string]any)
			src, ok := h["_source"]
			if tc.want == nil {
				if ok {
					t.Errorf("_source = %v, want none", src)
				}
				return
			}
			if !reflect.DeepEqual(src, tc.want) {
				t.Errorf("_source = %v, want %v", src, tc.want)
			}
		})
	}
	resp := doSearch(t, []Target{b.target()}, `{"query":{"ids":{"values":["2"]}}}`, map[string][]string{"_source_includes": {"author"}})
	h := resp["hits"].(map[string]any)["hits"].([]any)[0].(map[string]any)
	if !reflect.DeepEqual(h["_source"], map[string]any{"author": "bob"}) {
		t.Errorf("_source_includes: %v", h["_source"])
	}
}

func TestHighlight(t *testing.T) {
	long := "Lorem ipsum dolor sit amet. " + repeat("filler words here ", 10) + "the fox appears here. " + repeat("more filler text ", 10) + "and a fox again."
	ti := newTestIndex(t, "hl", bookFields, []testDoc{
		{"1", `{"title":"The Quick Brown Fox","body":"foxes are running quickly","author":"alice"}`},
		{"2", `{"title":"` + long + `"}`},
		{"3", `{"title":"<b> fox & co"}`},
	})
	cases := []struct {
		name string
		body string
		id   string
		want map[string]any
	}{
		{"match", `{"query":{"match":{"title":"quick fox"}},"highlight":{"fields":{"title":{}}}}`, "1",
			map[string]any{"title": []any{"The <em>Quick</em> Brown <em>Fox</em>"}}},
		{"stemmed", `{"query":{"match":{"body":"run fox"}},"highlight":{"fields":{"body":{}}}}`, "1",
			map[string]any{"body": []any{"<em>foxes</em> are <em>running</em> quickly"}}},
		{"tags", `{"query":{"match":{"title":"brown"}},"highlight":{"pre_tags":["["],"post_tags":["]"],"fields":{"title":{}}}}`, "1",
			map[string]any{"title": []any{"The Quick [Brown] Fox"}}},
		{"require_field_match", `{"query":{"match":{"title":"fox"}},"highlight":{"fields":{"body":{}}}}`, "1", nil},
		{"query_string default", `{"query":{"query_string":{"query":"brown"}},"highlight":{"fields":{"title":{}}}}`, "1",
			map[string]any{"title": []any{"The Quick <em>Brown</em> Fox"}}},
		{"keyword", `{"query":{"term":{"author":"alice"}},"highlight":{"fields":{"author":{}}}}`, "1",
			map[string]any{"author": []any{"<em>alice</em>"}}},
		{"fragments", `{"query":{"match":{"title":"fox"}},"highlight":{"fields":{"title":{"fragment_size":40}}}}`, "2", nil},
		{"whole value", `{"query":{"match":{"title":"fox"}},"highlight":{"fields":{"title":{"number_of_fragments":0}}}}`, "2", nil},
		{"html encoder", `{"query":{"match":{"title":"fox"}},"highlight":{"encoder":"html","fields":{"title":{}}}}`, "3",
			map[string]any{"title": []any{"&lt;b&gt; <em>fox</em> &amp; co"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := doSearch(t, []Target{ti.target()}, tc.body, nil)
			var hit map[string]any
			for _, h := range resp["hits"].(map[string]any)["hits"].([]any) {
				if h.(map[string]any)["_id"] == tc.id {
					hit = h.(map[string]any)
				}
			}
			if hit == nil {
				t.Fatalf("no hit %s", tc.id)
			}
			got, _ := hit["highlight"].(map[string]any)
			switch tc.name {
			case "fragments":
				frags := got["title"].([]any)
				if len(frags) != 2 {
					t.Fatalf("fragments = %q, want 2", frags)
				}
				for _, f := range frags {
					if len(f.(string)) > 70 || !contains(f.(string), "<em>fox</em>") {
						t.Errorf("fragment %q", f)
					}
				}
				return
			case "whole value":
				frags := got["title"].([]any)
				if len(frags) != 1 || len(frags[0].(string)) != len(long)+18 {
					t.Errorf("whole value = %q", frags)
				}
				return
			}
			if tc.want == nil {
				if got != nil {
					t.Errorf("highlight = %v, want none", got)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("highlight = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := ParseSearch([]byte(`{"highlight":{"fields":{"title":{"bogus":1}}}}`), nil); eserr.From(err).Status != 400 {
		t.Errorf("bad highlight option: %v", err)
	}
}

func repeat(s string, n int) string {
	out := ""
	for i := 0; i < n; i++ {
		out += s
	}
	return out
}
