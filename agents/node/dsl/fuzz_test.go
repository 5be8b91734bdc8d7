package dsl

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"paddock/agents/node/eserr"
)

// FuzzParseSearch feeds arbitrary bodies to the query DSL decoder: it must
// answer a 4xx Elasticsearch error or a request, never panic, and a parsed
// request must compile and run against an index without a 5xx.
func FuzzParseSearch(f *testing.F) {
	seeds := []string{
		``, `{}`, `{"query":{"match_all":{}}}`,
		`{"query":{"bool":{"must":[{"match":{"title":"quick fox"}}],"filter":{"range":{"year":{"gte":2000}}},"should":[{"term":{"author":"bob"}}],"minimum_should_match":"50%"}}}`,
		`{"query":{"multi_match":{"query":"x","fields":["title^2","auth*"],"type":"phrase"}}}`,
		`{"query":{"query_string":{"query":"title:(a OR b) AND -year:[1 TO 5] \"x y\"~2 c* d~1 _exists_:tags"}}}`,
		`{"query":{"range":{"published":{"gte":"now-1d/d","lt":"2020-01-01||+1M/M","time_zone":"+01:00"}}}}`,
		`{"query":{"terms":{"tags":["a","b"]}},"sort":[{"year":{"order":"desc","missing":"_first"}},"_score"],"search_after":[1,2]}`,
		`{"size":0,"aggs":{"a":{"terms":{"field":"author","order":{"m":"desc"}},"aggs":{"m":{"max":{"field":"price"}}}},"h":{"date_histogram":{"field":"published","calendar_interval":"month"}}}}`,
		`{"_source":{"includes":["a.*"],"excludes":["b"]},"highlight":{"fields":{"title":{"number_of_fragments":0}}},"track_total_hits":100}`,
		`{"query":{"constant_score":{"filter":{"exists":{"field":"meta"}},"boost":2}}}`,
		`{"query":{"wildcard":{"author":{"value":"A?*","case_insensitive":true}}},"from":5,"size":5}`,
		`{"query":{"regexp":{"author":"(a|b"}}}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(``), "title:quick AND NOT (year:>2000)")
	ti := newTestIndex(f, "fuzz", bookFields, bookDocs)
	f.Fuzz(func(t *testing.T, body []byte, q string) {
		params := url.Values{}
		if q != "" {
			params.Set("q", q)
		}
		req, err := ParseSearch(body, params)
		if err != nil {
			checkClientError(t, err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := Search(ctx, []Target{ti.target()}, req); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			checkClientError(t, err)
		}
	})
}

func checkClientError(t *testing.T, err error) {
	t.Helper()
	var e *eserr.Error
	if !errors.As(err, &e) {
		t.Fatalf("error is not an Elasticsearch error: %v", err)
	}
	if e.Status < 400 || e.Status >= 500 {
		t.Fatalf("error status %d (%v), want a 4xx", e.Status, err)
	}
}
