package dsl

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"paddock/agents/node/eserr"
)

func aggsOf(t *testing.T, targets []Target, body string) map[string]any {
	t.Helper()
	resp := doSearch(t, targets, body, nil)
	a, ok := resp["aggregations"].(map[string]any)
	if !ok {
		t.Fatalf("no aggregations in %v", resp)
	}
	return a
}

func jsonEq(t *testing.T, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	if !reflect.DeepEqual(got, w) {
		g, _ := json.Marshal(got)
		t.Errorf("%s =\n %s\nwant\n %s", what, g, want)
	}
}

func TestAggregations(t *testing.T) {
	for _, companion := range []bool{false, true} {
		t.Run(fmt.Sprintf("companion=%v", companion), func(t *testing.T) { testAggregations(t, companion) })
	}
}

func testAggregations(t *testing.T, companion bool) {
	fields := bookFields
	fields.companion = companion
	b := newTestIndex(t, "books", fields, bookDocs)
	targets := []Target{b.target()}
	cases := []struct {
		name, body, agg, want string
	}{
		{"terms", `{"size":0,"aggs":{"a":{"terms":{"field":"tags"}}}}`, "a",
			`{"doc_count_error_upper_bound":0,"sum_other_doc_count":0,"buckets":[{"key":"animals","doc_count":3},{"key":"classic","doc_count":1},{"key":"speed","doc_count":1},{"key":"winter","doc_count":1}]}`},
		{"terms size and other", `{"size":0,"aggs":{"a":{"terms":{"field":"tags","size":1}}}}`, "a",
			`{"doc_count_error_upper_bound":0,"sum_other_doc_count":3,"buckets":[{"key":"animals","doc_count":3}]}`},
		{"terms on query", `{"query":{"term":{"author":"alice"}},"aggs":{"a":{"terms":{"field":"tags"}}}}`, "a",
			`{"doc_count_error_upper_bound":0,"sum_other_doc_count":0,"buckets":[{"key":"animals","doc_count":1},{"key":"classic","doc_count":1},{"key":"speed","doc_count":1}]}`},
		{"terms order key desc", `{"size":0,"aggs":{"a":{"terms":{"field":"author","order":{"_key":"desc"},"size":2}}}}`, "a",
			`{"doc_count_error_upper_bound":0,"sum_other_doc_count":3,"buckets":[{"key":"carol","doc_count":1},{"key":"bob","doc_count":1}]}`},
		{"terms numeric", `{"size":0,"aggs":{"a":{"terms":{"field":"year","size":2,"order":{"_key":"asc"}}}}}`, "a",
			`{"doc_count_error_upper_bound":0,"sum_other_doc_count":3,"buckets":[{"key":1999,"doc_count":1},{"key":2001,"doc_count":1}]}`},
		{"terms boolean", `{"size":0,"aggs":{"a":{"terms":{"field":"in_stock"}}}}`, "a",
			`{"doc_count_error_upper_bound":0,"sum_other_doc_count":0,"buckets":[{"key":1,"key_as_string":"true","doc_count":3},{"key":0,"key_as_string":"false","doc_count":1}]}`},
		{"terms missing", `{"size":0,"aggs":{"a":{"terms":{"field":"price","missing":0,"order":{"_key":"asc"},"size":2}}}}`, "a",
			`{"doc_count_error_upper_bound":0,"sum_other_doc_count":3,"buckets":[{"key":0,"doc_count":1},{"key":7,"doc_count":1}]}`},
		{"terms include", `{"size":0,"aggs":{"a":{"terms":{"field":"tags","include":"a.*|w.*"}}}}`, "a",
			`{"doc_count_error_upper_bound":0,"sum_other_doc_count":0,"buckets":[{"key":"animals","doc_count":3},{"key":"winter","doc_count":1}]}`},
		{"terms with sub avg ordered", `{"size":0,"aggs":{"a":{"terms":{"field":"author","order":{"p":"desc"},"size":2},"aggs":{"p":{"avg":{"field":"price"}}}}}}`, "a",
			`{"doc_count_error_upper_bound":0,"sum_other_doc_count":2,"buckets":[{"key":"alice","doc_count":2,"p":{"value":15.25}},{"key":"Dave","doc_count":1,"p":{"value":15}}]}`},
		{"avg", `{"size":0,"aggs":{"a":{"avg":{"field":"price"}}}}`, "a", `{"value":13.125}`},
		{"sum", `{"size":0,"aggs":{"a":{"sum":{"field":"price"}}}}`, "a", `{"value":52.5}`},
		{"min", `{"size":0,"aggs":{"a":{"min":{"field":"year"}}}}`, "a", `{"value":1999}`},
		{"max", `{"size":0,"aggs":{"a":{"max":{"field":"year"}}}}`, "a", `{"value":2020}`},
		{"max date", `{"size":0,"aggs":{"a":{"max":{"field":"published"}}}}`, "a", `{"value":1608768000000,"value_as_string":"2020-12-24T00:00:00.000Z"}`},
		{"avg none", `{"query":{"match_none":{}},"aggs":{"a":{"avg":{"field":"price"}}}}`, "a", `{"value":null}`},
		{"sum none", `{"query":{"match_none":{}},"aggs":{"a":{"sum":{"field":"price"}}}}`, "a", `{"value":0}`},
		{"value_count", `{"size":0,"aggs":{"a":{"value_count":{"field":"tags"}}}}`, "a", `{"value":6}`},
		{"cardinality", `{"size":0,"aggs":{"a":{"cardinality":{"field":"author"}}}}`, "a", `{"value":4}`},
		{"stats", `{"size":0,"aggs":{"a":{"stats":{"field":"year"}}}}`, "a", `{"count":5,"min":1999,"max":2020,"avg":2009,"sum":10045}`},
		{"avg missing", `{"size":0,"aggs":{"a":{"avg":{"field":"price","missing":0}}}}`, "a", `{"value":10.5}`},
		{"unmapped", `{"size":0,"aggs":{"a":{"terms":{"field":"nope"}}}}`, "a", `{"doc_count_error_upper_bound":0,"sum_other_doc_count":0,"buckets":[]}`},
		{"range", `{"size":0,"aggs":{"a":{"range":{"field":"price","ranges":[{"to":10},{"from":10,"to":20},{"from":20}]}}}}`, "a",
			`{"buckets":[{"key":"*-10.0","to":10,"doc_count":1},{"key":"10.0-20.0","from":10,"to":20,"doc_count":2},{"key":"20.0-*","from":20,"doc_count":1}]}`},
		{"range keyed with key", `{"size":0,"aggs":{"a":{"range":{"field":"year","keyed":true,"ranges":[{"key":"old","to":2005}]}}}}`, "a",
			`{"buckets":{"old":{"to":2005,"doc_count":2}}}`},
		{"date_range", `{"size":0,"aggs":{"a":{"date_range":{"field":"published","ranges":[{"from":"2010-01-01","to":"2016-01-01"}]}}}}`, "a",
			`{"buckets":[{"key":"2010-01-01T00:00:00.000Z-2016-01-01T00:00:00.000Z","from":1262304000000,"from_as_string":"2010-01-01T00:00:00.000Z","to":1451606400000,"to_as_string":"2016-01-01T00:00:00.000Z","doc_count":2}]}`},
		{"histogram", `{"size":0,"aggs":{"a":{"histogram":{"field":"price","interval":5}}}}`, "a",
			`{"buckets":[{"key":5,"doc_count":1},{"key":10,"doc_count":1},{"key":15,"doc_count":1},{"key":20,"doc_count":1}]}`},
		{"histogram fills empty buckets", `{"size":0,"aggs":{"a":{"histogram":{"field":"year","interval":10}}}}`, "a",
			`{"buckets":[{"key":1990,"doc_count":1},{"key":2000,"doc_count":1},{"key":2010,"doc_count":2},{"key":2020,"doc_count":1}]}`},
		{"histogram min_doc_count", `{"size":0,"aggs":{"a":{"histogram":{"field":"year","interval":5,"min_doc_count":1}}}}`, "a",
			`{"buckets":[{"key":1995,"doc_count":1},{"key":2000,"doc_count":1},{"key":2010,"doc_count":1},{"key":2015,"doc_count":1},{"key":2020,"doc_count":1}]}`},
		{"date_histogram year", `{"size":0,"aggs":{"a":{"date_histogram":{"field":"published","calendar_interval":"year","min_doc_count":1,"format":"yyyy"}}}}`, "a",
			`{"buckets":[{"key":915148800000,"key_as_string":"1999","doc_count":1},{"key":978307200000,"key_as_string":"2001","doc_count":1},{"key":1262304000000,"key_as_string":"2010","doc_count":1},{"key":1420070400000,"key_as_string":"2015","doc_count":1},{"key":1577836800000,"key_as_string":"2020","doc_count":1}]}`},
		{"date_histogram month filled", `{"query":{"range":{"published":{"gte":"2015-01-01"}}},"size":0,"aggs":{"a":{"date_histogram":{"field":"published","calendar_interval":"1M","format":"yyyy-MM"}}}}`, "a", ""},
		{"date_histogram fixed with sub", `{"query":{"term":{"author":"alice"}},"size":0,"aggs":{"a":{"date_histogram":{"field":"published","fixed_interval":"3650d","min_doc_count":1},"aggs":{"m":{"max":{"field":"price"}}}}}}`, "a",
			`{"buckets":[{"key":946080000000,"key_as_string":"1999-12-25T00:00:00.000Z","doc_count":1,"m":{"value":10.5}},{"key":1261440000000,"key_as_string":"2009-12-22T00:00:00.000Z","doc_count":1,"m":{"value":20}}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := aggsOf(t, targets, tc.body)[tc.agg]
			if tc.name == "date_histogram month filled" {
				buckets := got.(map[string]any)["buckets"].([]any)
				// 2015-03 .. 2020-12: 70 months, empty ones included
				if len(buckets) != 70 {
					t.Fatalf("buckets = %d, want 70", len(buckets))
				}
				first, last := buckets[0].(map[string]any), buckets[69].(map[string]any)
				if first["key_as_string"] != "2015-03" || last["key_as_string"] != "2020-12" || buckets[1].(map[string]any)["doc_count"] != 0.0 {
					t.Errorf("first %v last %v", first, last)
				}
				return
			}
			jsonEq(t, tc.name, got, tc.want)
		})
	}
}

func TestAggregationErrors(t *testing.T) {
	b := books(t)
	parseCases := []struct{ name, body, typ, reason string }{
		{"unknown type", `{"aggs":{"a":{"bogus":{"field":"x"}}}}`, "parsing_exception", "Unknown aggregation type [bogus]"},
		{"no field", `{"aggs":{"a":{"terms":{}}}}`, "parsing_exception", "requires a [field]"},
		{"metric with subs", `{"aggs":{"a":{"avg":{"field":"price"},"aggs":{"b":{"max":{"field":"price"}}}}}}`, "aggregation_initialization_exception", "cannot accept sub-aggregations"},
		{"histogram without interval", `{"aggs":{"a":{"histogram":{"field":"price"}}}}`, "parsing_exception", "interval"},
		{"date_histogram without interval", `{"aggs":{"a":{"date_histogram":{"field":"published"}}}}`, "illegal_argument_exception", "calendar_interval"},
		{"bad calendar interval", `{"aggs":{"a":{"date_histogram":{"field":"published","calendar_interval":"2d"}}}}`, "illegal_argument_exception", "calendar interval"},
		{"script", `{"aggs":{"a":{"terms":{"script":"x"}}}}`, "illegal_argument_exception", "scripts are not supported"},
		{"bad name", `{"aggs":{"a[0]":{"terms":{"field":"x"}}}}`, "parsing_exception", "Invalid aggregation name"},
	}
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSearch([]byte(tc.body), nil)
			e := eserr.From(err)
			if err == nil || e.Status != 400 || e.Type != tc.typ || !contains(e.Reason, tc.reason) {
				t.Errorf("error = %v", err)
			}
		})
	}
	runCases := []struct{ name, body, reason string }{
		{"terms on text", `{"aggs":{"a":{"terms":{"field":"title"}}}}`, "Text fields are not optimised"},
		{"avg on keyword", `{"aggs":{"a":{"avg":{"field":"author"}}}}`, "not supported for aggregation [avg]"},
		{"date_histogram on number", `{"aggs":{"a":{"date_histogram":{"field":"year","calendar_interval":"year"}}}}`, "not supported"},
	}
	for _, tc := range runCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Search(context.Background(), []Target{b.target()}, mustParse(t, tc.body))
			e := eserr.From(err)
			if err == nil || e.Status != 400 || !contains(e.Reason, tc.reason) {
				t.Errorf("error = %v", err)
			}
		})
	}
}

func TestAggregationsAcrossIndicesAndPostFilter(t *testing.T) {
	a := books(t)
	other := newTestIndex(t, "more", bookFields, []testDoc{{"x", `{"tags":["animals"],"price":1}`}})
	got := aggsOf(t, []Target{a.target(), other.target()}, `{"size":0,"aggs":{"t":{"terms":{"field":"tags","size":1}},"s":{"sum":{"field":"price"}}}}`)
	jsonEq(t, "terms", got["t"], `{"doc_count_error_upper_bound":0,"sum_other_doc_count":3,"buckets":[{"key":"animals","doc_count":4}]}`)
	jsonEq(t, "sum", got["s"], `{"value":53.5}`)

	resp := doSearch(t, []Target{a.target()}, `{"post_filter":{"term":{"author":"bob"}},"aggs":{"t":{"terms":{"field":"author","size":1}}}}`, nil)
	if ids := hitIDs(resp); !reflect.DeepEqual(ids, []string{"2"}) {
		t.Errorf("post_filter hits = %v", ids)
	}
	jsonEq(t, "aggs ignore post_filter", resp["aggregations"].(map[string]any)["t"],
		`{"doc_count_error_upper_bound":0,"sum_other_doc_count":3,"buckets":[{"key":"alice","doc_count":2}]}`)
}

func TestTypedKeys(t *testing.T) {
	b := books(t)
	resp := doSearch(t, []Target{b.target()}, `{"size":0,"aggs":{"t":{"terms":{"field":"author"},"aggs":{"a":{"avg":{"field":"price"}}}},"y":{"terms":{"field":"year"}},"p":{"terms":{"field":"price"}},"h":{"date_histogram":{"field":"published","calendar_interval":"year"}},"s":{"stats":{"field":"year"}}}}`,
		map[string][]string{"typed_keys": {"true"}})
	aggs := resp["aggregations"].(map[string]any)
	for _, k := range []string{"sterms#t", "lterms#y", "dterms#p", "date_histogram#h", "stats#s"} {
		if _, ok := aggs[k]; !ok {
			t.Errorf("no %s in %v", k, aggs)
		}
	}
	bucket := aggs["sterms#t"].(map[string]any)["buckets"].([]any)[0].(map[string]any)
	if _, ok := bucket["avg#a"]; !ok {
		t.Errorf("sub-aggregation not typed: %v", bucket)
	}
}
