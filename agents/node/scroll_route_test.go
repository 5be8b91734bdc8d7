package node

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"paddock/agents/node/dsl"
)

// A scroll whose pages reach different copies (the proxy spreads reads
// over the in-sync copies) reads every document once: each copy forwards
// a page to the copy named in the scroll id. Found with the Python
// client's helpers.scan through the proxy on a two-zone deployment: the
// second page reached the other copy and got search_context_missing.
func TestScrollPagesOnAnyCopy(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	a, b, c := g.node("a"), g.node("b"), g.node("c")
	var bulk strings.Builder
	for i := range 25 {
		fmt.Fprintf(&bulk, "{\"index\":{\"_index\":\"logs\",\"_id\":\"%d\"}}\n{\"n\":%d}\n", i, i)
	}
	do(t, a.url, call{"POST", "/_bulk?refresh=true", bulk.String(), 200, []string{`"errors":false`}})

	page := func(url, method, path, body string) (string, []string) {
		t.Helper()
		code, raw, err := httpDo(method, url+path, body)
		if err != nil || code != 200 {
			t.Fatalf("%s %s on %s: %d %s %v", method, path, url, code, raw, err)
		}
		var ans struct {
			ScrollID string `json:"_scroll_id"`
			Hits     struct {
				Hits []struct {
					ID string `json:"_id"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := json.Unmarshal(raw, &ans); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, h := range ans.Hits.Hits {
			ids = append(ids, h.ID)
		}
		return ans.ScrollID, ids
	}
	// The first page on the replica b: b holds the context.
	id, ids := page(b.url, "POST", "/logs/_search?scroll=1m&size=4", `{"sort":["n"]}`)
	if got := dsl.ScrollHolder(id); got != "b" {
		t.Fatalf("scroll id names %q, want b", got)
	}
	seen := map[string]bool{}
	add := func(ids []string) {
		for _, d := range ids {
			if seen[d] {
				t.Fatalf("document %s returned twice", d)
			}
			seen[d] = true
		}
	}
	add(ids)
	// Next pages rotate over the copies, in the ways clients send them.
	urls := []string{a.url, c.url, b.url}
	for i := 0; len(ids) > 0; i++ {
		u := urls[i%len(urls)]
		switch i % 3 {
		case 0:
			_, ids = page(u, "POST", "/_search/scroll", `{"scroll":"1m","scroll_id":"`+id+`"}`)
		case 1:
			_, ids = page(u, "GET", "/_search/scroll/"+id+"?scroll=1m", "")
		default:
			_, ids = page(u, "POST", "/_search/scroll?scroll=1m", id)
		}
		add(ids)
		if i > 20 {
			t.Fatal("the scroll does not end")
		}
	}
	if len(seen) != 25 {
		t.Fatalf("read %d documents, want 25", len(seen))
	}
	// A clear on another copy frees the context on its holder.
	do(t, c.url, call{"DELETE", "/_search/scroll", `{"scroll_id":["` + id + `"]}`, 200, []string{`"num_freed":1`}})
	if b.srv.scrolls.Open() != 0 {
		t.Fatalf("b still holds %d contexts", b.srv.scrolls.Open())
	}
	do(t, a.url, call{"POST", "/_search/scroll", `{"scroll_id":"` + id + `"}`, 404, []string{`search_context_missing_exception`}})

	// _all from any copy frees the contexts of every copy.
	page(a.url, "POST", "/logs/_search?scroll=1m&size=1", "")
	page(b.url, "POST", "/logs/_search?scroll=1m&size=1", "")
	page(c.url, "POST", "/logs/_search?scroll=1m&size=1", "")
	do(t, b.url, call{"DELETE", "/_search/scroll/_all", "", 200, []string{`"num_freed":3`}})
	for _, n := range []*replNode{a, b, c} {
		if k := n.srv.scrolls.Open(); k != 0 {
			t.Fatalf("%s still holds %d contexts after _all", n.id, k)
		}
	}

	// The holder is gone from the routing: the context is missing, as in
	// Elasticsearch when the node that held it left.
	id, _ = page(c.url, "POST", "/logs/_search?scroll=1m&size=1", "")
	c.kill()
	g.mu.Lock()
	g.order = []string{"a", "b"}
	g.mu.Unlock()
	g.change(func(rt *Routing) { rt.InSync = []string{"a", "b"} })
	do(t, a.url, call{"POST", "/_search/scroll", `{"scroll_id":"` + id + `"}`, 404, []string{`search_context_missing_exception`}})
}

func TestScrollHolder(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"", ""},
		{"not base64 !", ""},
		{"AAAA", ""}, // NUL first: no holder
		{"YWJj", ""}, // "abc": no NUL
	} {
		if got := dsl.ScrollHolder(tc.id); got != tc.want {
			t.Errorf("ScrollHolder(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}
