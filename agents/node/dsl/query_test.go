package dsl

import (
	"context"
	"net/url"
	"reflect"
	"testing"
	"time"
)

func TestQueries(t *testing.T) {
	b := books(t)
	targets := []Target{b.target()}
	cases := []struct {
		name  string
		body  string
		set   []string
		order []string
	}{
		{"match_phrase", `{"query":{"match_phrase":{"title":"quick brown"}}}`, []string{"1"}, nil},
		{"match_phrase order matters", `{"query":{"match_phrase":{"title":"brown quick"}}}`, []string{}, nil},
		{"match_phrase_prefix", `{"query":{"match_phrase_prefix":{"title":"brown bre"}}}`, []string{"4"}, nil},
		{"multi_match", `{"query":{"multi_match":{"query":"bread fox","fields":["title","body"]}}}`, []string{"1", "4", "5"}, nil},
		{"multi_match pattern and boost", `{"query":{"multi_match":{"query":"alice","fields":["auth*^2","title"]}}}`, []string{"1", "3"}, nil},
		{"multi_match all fields", `{"query":{"multi_match":{"query":"bread"}}}`, []string{"4"}, nil},
		{"multi_match phrase", `{"query":{"multi_match":{"query":"lazy dogs","type":"phrase","fields":["title"]}}}`, []string{"2"}, nil},
		{"range number", `{"query":{"range":{"year":{"gte":2001,"lt":2015}}}}`, []string{"1", "3"}, nil},
		{"range number gt lte", `{"query":{"range":{"year":{"gt":2001,"lte":2015}}}}`, []string{"3", "4"}, nil},
		{"range double", `{"query":{"range":{"price":{"gt":10}}}}`, []string{"1", "3", "5"}, nil},
		{"range date", `{"query":{"range":{"published":{"gte":"2010-01-01","lt":"2020-01-01"}}}}`, []string{"3", "4"}, nil},
		{"range date rounding lte", `{"query":{"range":{"published":{"lte":"2010-10-10||/d"}}}}`, []string{"1", "2", "3"}, nil},
		{"range date rounding lt", `{"query":{"range":{"published":{"lt":"2010-10-10||/d"}}}}`, []string{"1", "2"}, nil},
		{"range date epoch_millis", `{"query":{"range":{"published":{"gte":978307200000,"lte":1000000000000}}}}`, []string{"1"}, nil},
		{"range date math now", `{"query":{"range":{"published":{"gte":"now-300y/y","lt":"now+1d/d"}}}}`, []string{"1", "2", "3", "4", "5"}, nil},
		{"range date time_zone", `{"query":{"range":{"published":{"gte":"2010-10-10T11:00:00","time_zone":"+01:00","lte":"2010-10-10T11:00:00"}}}}`, []string{"3"}, nil},
		{"range keyword", `{"query":{"range":{"author":{"gte":"b","lt":"d"}}}}`, []string{"2", "4"}, nil},
		{"range unmapped", `{"query":{"range":{"nope":{"gte":1}}}}`, []string{}, nil},
		{"exists keyword", `{"query":{"exists":{"field":"tags"}}}`, []string{"1", "2", "3", "5"}, nil},
		{"exists number", `{"query":{"exists":{"field":"price"}}}`, []string{"1", "2", "3", "5"}, nil},
		{"exists date", `{"query":{"exists":{"field":"published"}}}`, []string{"1", "2", "3", "4", "5"}, nil},
		{"exists text", `{"query":{"exists":{"field":"body"}}}`, []string{"1", "2", "4"}, nil},
		{"exists boolean", `{"query":{"exists":{"field":"in_stock"}}}`, []string{"1", "2", "3", "4"}, nil},
		{"exists object", `{"query":{"exists":{"field":"meta"}}}`, []string{"1", "3"}, nil},
		{"exists unmapped", `{"query":{"exists":{"field":"nope"}}}`, []string{}, nil},
		{"prefix keyword", `{"query":{"prefix":{"author":"al"}}}`, []string{"1", "3"}, nil},
		{"prefix text token", `{"query":{"prefix":{"title":"bre"}}}`, []string{"4"}, nil},
		{"prefix case_insensitive", `{"query":{"prefix":{"author":{"value":"DA","case_insensitive":true}}}}`, []string{"5"}, nil},
		{"wildcard", `{"query":{"wildcard":{"author":"?o*"}}}`, []string{"2"}, nil},
		{"wildcard value object", `{"query":{"wildcard":{"title.keyword":{"value":"*Fox"}}}}`, []string{"1"}, nil},
		{"regexp", `{"query":{"regexp":{"author":"a.*e"}}}`, []string{"1", "3"}, nil},
		{"fuzzy", `{"query":{"fuzzy":{"author":"alise"}}}`, []string{"1", "3"}, nil},
		{"terms", `{"query":{"terms":{"author":["bob","carol","zed"]}}}`, []string{"2", "4"}, nil},
		{"terms numbers", `{"query":{"terms":{"year":[1999,2020]}}}`, []string{"2", "5"}, nil},
		{"terms _id", `{"query":{"terms":{"_id":["1","5"]}}}`, []string{"1", "5"}, nil},
		{"match_none", `{"query":{"match_none":{}}}`, []string{}, nil},
		{"bool must filter", `{"query":{"bool":{"must":{"match":{"title":"quick"}},"filter":[{"term":{"author":"alice"}},{"range":{"year":{"gte":2005}}}]}}}`, []string{"3"}, nil},
		{"bool must_not", `{"query":{"bool":{"must_not":[{"term":{"tags":"animals"}}]}}}`, []string{"3", "4"}, nil},
		{"bool should only", `{"query":{"bool":{"should":[{"term":{"author":"bob"}},{"term":{"author":"carol"}}]}}}`, []string{"2", "4"}, nil},
		{"bool should optional with must", `{"query":{"bool":{"must":[{"term":{"tags":"animals"}}],"should":[{"term":{"author":"bob"}}]}}}`, []string{"1", "2", "5"}, nil},
		{"bool should optional with filter", `{"query":{"bool":{"filter":[{"term":{"tags":"animals"}}],"should":[{"term":{"author":"dave"}},{"term":{"author":"Dave"}}]}}}`, []string{"1", "2", "5"}, nil},
		{"bool minimum_should_match", `{"query":{"bool":{"should":[{"term":{"tags":"animals"}},{"term":{"tags":"winter"}},{"term":{"author":"Dave"}}],"minimum_should_match":2}}}`, []string{"5"}, nil},
		{"bool msm percent", `{"query":{"bool":{"should":[{"term":{"tags":"animals"}},{"term":{"tags":"classic"}}],"minimum_should_match":"100%"}}}`, []string{"1"}, nil},
		{"bool filter only", `{"query":{"bool":{"filter":{"term":{"in_stock":true}}}}}`, []string{"1", "3", "4"}, nil},
		{"bool nested", `{"query":{"bool":{"should":[{"bool":{"must":[{"term":{"author":"alice"}},{"term":{"year":2001}}]}},{"term":{"author":"carol"}}]}}}`, []string{"1", "4"}, nil},
		{"constant_score", `{"query":{"constant_score":{"filter":{"term":{"author":"alice"}},"boost":1.5}}}`, []string{"1", "3"}, nil},
		{"match msm", `{"query":{"match":{"title":{"query":"quick brown fox","minimum_should_match":2}}}}`, []string{"1"}, nil},
		{"query_string", `{"query":{"query_string":{"query":"title:quick AND author:alice"}}}`, []string{"1", "3"}, nil},
		{"query_string or", `{"query":{"query_string":{"query":"author:bob OR author:carol"}}}`, []string{"2", "4"}, nil},
		{"query_string not", `{"query":{"query_string":{"query":"tags:animals NOT author:bob"}}}`, []string{"1", "5"}, nil},
		{"query_string must", `{"query":{"query_string":{"query":"+tags:animals -author:bob"}}}`, []string{"1", "5"}, nil},
		{"query_string phrase", `{"query":{"query_string":{"query":"\"brown fox\""}}}`, []string{"1"}, nil},
		{"query_string range", `{"query":{"query_string":{"query":"year:[2001 TO 2010]"}}}`, []string{"1", "3"}, nil},
		{"query_string range open", `{"query":{"query_string":{"query":"year:{2001 TO *]"}}}`, []string{"3", "4", "5"}, nil},
		{"query_string comparison", `{"query":{"query_string":{"query":"year:>=2015"}}}`, []string{"4", "5"}, nil},
		{"query_string wildcard", `{"query":{"query_string":{"query":"author:ca*"}}}`, []string{"4"}, nil},
		{"query_string group", `{"query":{"query_string":{"query":"title:(lazy OR bread)"}}}`, []string{"2", "4"}, nil},
		{"query_string fields", `{"query":{"query_string":{"query":"bread","fields":["title","body"]}}}`, []string{"4"}, nil},
		{"query_string default_operator", `{"query":{"query_string":{"query":"quick fox","default_operator":"AND"}}}`, []string{"1"}, nil},
		{"query_string exists", `{"query":{"query_string":{"query":"_exists_:body"}}}`, []string{"1", "2", "4"}, nil},
		{"query_string star star", `{"query":{"query_string":{"query":"*:*"}}}`, []string{"1", "2", "3", "4", "5"}, nil},
		{"query_string star", `{"query":{"query_string":{"query":"*"}}}`, []string{"1", "2", "3", "4", "5"}, nil},
		{"simple_query_string", `{"query":{"simple_query_string":{"query":"bread | lazy"}}}`, []string{"2", "4"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := doSearch(t, targets, tc.body, nil)
			got := hitIDs(resp)
			if tc.set != nil && !sameSet(got, tc.set) {
				t.Errorf("ids = %v, want the set %v", got, tc.set)
			}
			if tc.order != nil && !reflect.DeepEqual(got, tc.order) {
				t.Errorf("ids = %v, want %v", got, tc.order)
			}
		})
	}
}

func TestFilterDoesNotScore(t *testing.T) {
	b := books(t)
	scores := func(body string) map[string]float64 {
		resp := doSearch(t, []Target{b.target()}, body, nil)
		out := map[string]float64{}
		for _, h := range resp["hits"].(map[string]any)["hits"].([]any) {
			m := h.(map[string]any)
			out[m["_id"].(string)] = m["_score"].(float64)
		}
		return out
	}
	plain := scores(`{"query":{"bool":{"must":{"match":{"title":"quick"}}}}}`)
	filtered := scores(`{"query":{"bool":{"must":{"match":{"title":"quick"}},"filter":{"match":{"title":"quick"}}}}}`)
	if !reflect.DeepEqual(plain, filtered) {
		t.Errorf("filter changed scores: %v vs %v", plain, filtered)
	}
	cs := scores(`{"query":{"constant_score":{"filter":{"match":{"title":"quick"}},"boost":2.5}}}`)
	for id, s := range cs {
		if s != 2.5 {
			t.Errorf("constant_score %s = %v, want 2.5", id, s)
		}
	}
}

func TestDateMath(t *testing.T) {
	now := time.Date(2024, 3, 15, 13, 45, 30, 0, time.UTC)
	cases := []struct {
		expr    string
		roundUp bool
		want    string
	}{
		{"now", false, "2024-03-15T13:45:30Z"},
		{"now-1d", false, "2024-03-14T13:45:30Z"},
		{"now-1d/d", false, "2024-03-14T00:00:00Z"},
		{"now-1d/d", true, "2024-03-14T23:59:59.999Z"},
		{"now+1M/M", false, "2024-04-01T00:00:00Z"},
		{"now/w", false, "2024-03-11T00:00:00Z"},
		{"now-2h/h", false, "2024-03-15T11:00:00Z"},
		{"2024-01-31||+1M", false, "2024-03-02T00:00:00Z"},
		{"2024-01-01T10:00:00Z||/y", true, "2024-12-31T23:59:59.999Z"},
		{"1700000000000", false, "2023-11-14T22:13:20Z"},
	}
	for _, tc := range cases {
		got, err := parseDateMath(tc.expr, "", time.UTC, now, tc.roundUp)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if s := got.UTC().Format(time.RFC3339Nano); s != tc.want {
			t.Errorf("%s (up=%v) = %s, want %s", tc.expr, tc.roundUp, s, tc.want)
		}
	}
	for _, bad := range []string{"now-1x", "now-", "2024-13-45", "now/"} {
		if _, err := parseDateMath(bad, "", time.UTC, now, false); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestQueryStringParams(t *testing.T) {
	b := books(t)
	resp := doSearch(t, []Target{b.target()}, "", url.Values{"q": {"quick fox"}, "default_operator": {"AND"}, "df": {"title"}})
	if got := hitIDs(resp); !sameSet(got, []string{"1"}) {
		t.Errorf("ids = %v", got)
	}
	if _, err := Count(context.Background(), []Target{b.target()}, mustParse(t, `{"query":{"match_all":{}}}`)); err != nil {
		t.Fatal(err)
	}
}

func mustParse(t testing.TB, body string) *Request {
	t.Helper()
	r, err := ParseSearch([]byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestShouldRaisesScore(t *testing.T) {
	b := books(t)
	resp := doSearch(t, []Target{b.target()}, `{"query":{"bool":{"must":[{"term":{"tags":"animals"}}],"should":[{"term":{"author":"bob"}}]}}}`, nil)
	if got := hitIDs(resp); len(got) != 3 || got[0] != "2" {
		t.Errorf("ids = %v, want bob's book first", got)
	}
}
