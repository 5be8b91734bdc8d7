package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"
	"github.com/elastic/go-elasticsearch/v8/typedapi/core/search"
	"github.com/elastic/go-elasticsearch/v8/typedapi/some"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types/enums/healthstatus"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types/enums/refresh"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types/enums/sortorder"
)

// TestGoClient runs Elastic's official Go client (typed API, esapi and
// esutil.BulkIndexer) through a whole application's sequence against a
// node on a free port.
func TestGoClient(t *testing.T) {
	s, err := NewServer(Config{Name: "n1", ClusterName: "dep1", Version: "8.19.0", DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() { ts.Close(); s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cfg := elasticsearch.Config{Addresses: []string{ts.URL}}
	es, err := elasticsearch.NewTypedClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := elasticsearch.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}

	info, err := es.Info().Do(ctx)
	if err != nil {
		t.Fatalf("info: %v", err)
	}
	if info.Version.Int != "8.19.0" || info.ClusterName != "dep1" {
		t.Fatalf("info = %+v", info)
	}

	// One node, replicas 0: green.
	_, err = es.Indices.Create("books").
		Settings(&types.IndexSettings{NumberOfReplicas: some.String("0"), NumberOfShards: some.String("1")}).
		Mappings(&types.TypeMapping{Properties: map[string]types.Property{
			"title": types.NewTextProperty(),
			"genre": types.NewKeywordProperty(),
			"year":  types.NewIntegerNumberProperty(),
		}}).Do(ctx)
	if err != nil {
		t.Fatalf("create index: %v", err)
	}
	health, err := es.Cluster.Health().Do(ctx)
	if err != nil {
		t.Fatalf("health: %v", err)
	}
	if health.Status != healthstatus.Green || health.ActivePrimaryShards != 1 {
		t.Fatalf("health = %+v", health)
	}

	type book struct {
		Title string `json:"title"`
		Genre string `json:"genre"`
		Year  int    `json:"year"`
	}
	ir, err := es.Index("books").Id("1").Document(book{"Dune", "sf", 1965}).Refresh(refresh.True).Do(ctx)
	if err != nil {
		t.Fatalf("index: %v", err)
	}
	if ir.Result.Name != "created" || ir.Version_ != 1 {
		t.Fatalf("index = %+v", ir)
	}
	got, err := es.Get("books", "1").Do(ctx)
	if err != nil || !got.Found {
		t.Fatalf("get: %v %+v", err, got)
	}
	var b book
	if err := json.Unmarshal(got.Source_, &b); err != nil || b.Title != "Dune" {
		t.Fatalf("get source %s: %v", got.Source_, err)
	}

	// Bulk through the BulkIndexer.
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: raw, Index: "books", FlushBytes: 4096, Refresh: "wait_for"})
	if err != nil {
		t.Fatal(err)
	}
	var failed atomic.Int64
	titles := []book{{"Emma", "novel", 1815}, {"Ubik", "sf", 1969}, {"Solaris", "sf", 1961}, {"Persuasion", "novel", 1817}, {"Neuromancer", "sf", 1984}}
	for i, bk := range titles {
		doc, _ := json.Marshal(bk)
		err := bi.Add(ctx, esutil.BulkIndexerItem{Action: "index", DocumentID: string(rune('a' + i)), Body: bytes.NewReader(doc),
			OnFailure: func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
				t.Errorf("bulk item failed: %v %+v", err, res.Error)
				failed.Add(1)
			}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := bi.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := bi.Stats(); st.NumFailed != 0 || st.NumIndexed != uint64(len(titles)) {
		t.Fatalf("bulk stats %+v", st)
	}

	// mget and update (esapi).
	res, err := raw.Mget(strings.NewReader(`{"ids":["1","a","missing"]}`), raw.Mget.WithIndex("books"), raw.Mget.WithContext(ctx))
	mustOK(t, "mget", res, err, `"found":true`, `"found":false`)
	res, err = raw.Update("books", "1", strings.NewReader(`{"doc":{"year":1966}}`), raw.Update.WithRefresh("true"), raw.Update.WithContext(ctx))
	mustOK(t, "update", res, err, `"result":"updated"`, `"_version":2`)
	res, err = raw.Update("books", "1", strings.NewReader(`{"doc":{"year":1966}}`), raw.Update.WithContext(ctx))
	mustOK(t, "update noop", res, err, `"result":"noop"`)

	// Search with query, sort and an aggregation (typed).
	sr, err := es.Search().Index("books").Request(&search.Request{
		Query: &types.Query{Match: map[string]types.MatchQuery{"genre": {Query: "sf"}}},
		Sort: []types.SortCombinations{types.SortOptions{SortOptions: map[string]types.FieldSort{
			"year": {Order: &sortorder.Desc}}}},
		Aggregations: map[string]types.Aggregations{"genres": {Terms: &types.TermsAggregation{Field: some.String("genre")}}},
		Size:         some.Int(10),
	}).Do(ctx)
	if err != nil {
		t.Fatalf("search: %v", err)
	}
	if sr.Hits.Total.Value != 4 || len(sr.Hits.Hits) != 4 {
		t.Fatalf("search total %d, hits %d", sr.Hits.Total.Value, len(sr.Hits.Hits))
	}
	if id := *sr.Hits.Hits[0].Id_; id != "e" { // Neuromancer, 1984
		t.Fatalf("first hit by year desc = %s", id)
	}
	cnt, err := es.Count().Index("books").Query(&types.Query{Term: map[string]types.TermQuery{"genre": {Value: "novel"}}}).Do(ctx)
	if err != nil || cnt.Count != 2 {
		t.Fatalf("count: %v %+v", err, cnt)
	}

	// Scroll through everything, two at a time.
	res, err = raw.Search(raw.Search.WithIndex("books"), raw.Search.WithSize(2), raw.Search.WithScroll(time.Minute), raw.Search.WithContext(ctx))
	page := mustOK(t, "scroll start", res, err)
	seen := 0
	for {
		hits := page["hits"].(map[string]any)["hits"].([]any)
		if len(hits) == 0 {
			break
		}
		seen += len(hits)
		id, _ := page["_scroll_id"].(string)
		res, err = raw.Scroll(raw.Scroll.WithScrollID(id), raw.Scroll.WithScroll(time.Minute), raw.Scroll.WithContext(ctx))
		page = mustOK(t, "scroll next", res, err)
	}
	if seen != 6 {
		t.Fatalf("scrolled %d documents, want 6", seen)
	}

	res, err = raw.DeleteByQuery([]string{"books"}, strings.NewReader(`{"query":{"term":{"genre":"novel"}}}`),
		raw.DeleteByQuery.WithRefresh(true), raw.DeleteByQuery.WithContext(ctx))
	mustOK(t, "delete by query", res, err, `"deleted":2`)
	cnt, err = es.Count().Index("books").Do(ctx)
	if err != nil || cnt.Count != 4 {
		t.Fatalf("count after delete by query: %v %+v", err, cnt)
	}

	// Errors come back as the client's typed errors.
	_, err = es.Indices.Create("books").Do(ctx)
	if e, ok := err.(*types.ElasticsearchError); !ok || e.Status != 400 || e.ErrorCause.Type != "resource_already_exists_exception" {
		t.Fatalf("create again: %#v", err)
	}
	if _, err := es.Indices.Delete("books").Do(ctx); err != nil {
		t.Fatalf("delete index: %v", err)
	}
	if ok, err := es.Indices.Exists("books").Do(ctx); err != nil || ok {
		t.Fatalf("index still exists: %v %v", ok, err)
	}
}

func mustOK(t *testing.T, what string, res *esapi.Response, err error, want ...string) map[string]any {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.IsError() {
		t.Fatalf("%s: %s %s", what, res.Status(), b)
	}
	for _, w := range want {
		if !strings.Contains(string(b), w) {
			t.Fatalf("%s answered %s, want %s", what, b, w)
		}
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}
