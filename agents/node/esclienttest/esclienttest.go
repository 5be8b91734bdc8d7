// Package esclienttest runs Elastic's official Go client
// (github.com/elastic/go-elasticsearch/v8: its typed API, esapi and
// esutil.BulkIndexer) through an application's whole sequence against
// one address: info, health, index creation with mappings, index, get,
// bulk, mget, update (and its noop), search with a query, sort and an
// aggregation, count, scroll, delete by query, the client's typed
// errors, index deletion. The node's own tests run it against a node on
// a free port; the testscripts run it through the proxy of a real
// `paddock up` deployment, over HTTP and HTTPS.
package esclienttest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
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

// Options name what the sequence expects of the cluster.
type Options struct {
	// Index is the index the sequence creates and deletes ("books").
	Index string
	// Log, when set, gets one line per step done.
	Log func(format string, args ...any)
}

type book struct {
	Title string `json:"title"`
	Genre string `json:"genre"`
	Year  int    `json:"year"`
}

// Run runs the sequence with clients made from cfg; the first step
// that does not answer as Elasticsearch would is the error.
func Run(ctx context.Context, cfg elasticsearch.Config, o Options) error {
	if o.Index == "" {
		o.Index = "books"
	}
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	es, err := elasticsearch.NewTypedClient(cfg)
	if err != nil {
		return err
	}
	raw, err := elasticsearch.NewClient(cfg)
	if err != nil {
		return err
	}
	idx := o.Index

	info, err := es.Info().Do(ctx)
	if err != nil {
		return fmt.Errorf("info: %w", err)
	}
	if !strings.HasPrefix(info.Version.Int, "8.") {
		return fmt.Errorf("info: version %q, want 8.x", info.Version.Int)
	}
	logf("info ok %s %s", info.ClusterName, info.Version.Int)

	// One primary and no replica: green on a single node.
	if _, err = es.Indices.Create(idx).
		Settings(&types.IndexSettings{NumberOfReplicas: some.String("0"), NumberOfShards: some.String("1")}).
		Mappings(&types.TypeMapping{Properties: map[string]types.Property{
			"title": types.NewTextProperty(),
			"genre": types.NewKeywordProperty(),
			"year":  types.NewIntegerNumberProperty(),
		}}).Do(ctx); err != nil {
		return fmt.Errorf("create index: %w", err)
	}
	health, err := es.Cluster.Health().Index(idx).Do(ctx)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	if health.Status != healthstatus.Green || health.ActivePrimaryShards != 1 {
		return fmt.Errorf("health = %s with %d primaries, want green with 1", health.Status, health.ActivePrimaryShards)
	}
	logf("index created, health green")

	ir, err := es.Index(idx).Id("1").Document(book{"Dune", "sf", 1965}).Refresh(refresh.True).Do(ctx)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if ir.Result.Name != "created" || ir.Version_ != 1 {
		return fmt.Errorf("index: result %s version %d, want created 1", ir.Result.Name, ir.Version_)
	}
	got, err := es.Get(idx, "1").Do(ctx)
	if err != nil || !got.Found {
		return fmt.Errorf("get: %v (found %v)", err, got != nil && got.Found)
	}
	var b book
	if err := json.Unmarshal(got.Source_, &b); err != nil || b.Title != "Dune" {
		return fmt.Errorf("get: source %s: %v", got.Source_, err)
	}
	logf("index and get ok")

	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: raw, Index: idx, FlushBytes: 4096, Refresh: "wait_for"})
	if err != nil {
		return err
	}
	var failed atomic.Int64
	titles := []book{{"Emma", "novel", 1815}, {"Ubik", "sf", 1969}, {"Solaris", "sf", 1961}, {"Persuasion", "novel", 1817}, {"Neuromancer", "sf", 1984}}
	for i, bk := range titles {
		doc, _ := json.Marshal(bk)
		if err := bi.Add(ctx, esutil.BulkIndexerItem{Action: "index", DocumentID: string(rune('a' + i)), Body: bytes.NewReader(doc),
			OnFailure: func(context.Context, esutil.BulkIndexerItem, esutil.BulkIndexerResponseItem, error) { failed.Add(1) }}); err != nil {
			return fmt.Errorf("bulk add: %w", err)
		}
	}
	if err := bi.Close(ctx); err != nil {
		return fmt.Errorf("bulk: %w", err)
	}
	if st := bi.Stats(); st.NumFailed != 0 || failed.Load() != 0 || st.NumIndexed != uint64(len(titles)) {
		return fmt.Errorf("bulk: %d indexed, %d failed, want %d and 0", st.NumIndexed, st.NumFailed, len(titles))
	}
	logf("bulk ok %d", len(titles))

	res, err := raw.Mget(strings.NewReader(`{"ids":["1","a","missing"]}`), raw.Mget.WithIndex(idx), raw.Mget.WithContext(ctx))
	if _, err := answer("mget", res, err, `"found":true`, `"found":false`); err != nil {
		return err
	}
	res, err = raw.Update(idx, "1", strings.NewReader(`{"doc":{"year":1966}}`), raw.Update.WithRefresh("true"), raw.Update.WithContext(ctx))
	if _, err := answer("update", res, err, `"result":"updated"`, `"_version":2`); err != nil {
		return err
	}
	res, err = raw.Update(idx, "1", strings.NewReader(`{"doc":{"year":1966}}`), raw.Update.WithContext(ctx))
	if _, err := answer("update (noop)", res, err, `"result":"noop"`); err != nil {
		return err
	}
	logf("mget and update ok")

	sr, err := es.Search().Index(idx).Request(&search.Request{
		Query: &types.Query{Match: map[string]types.MatchQuery{"genre": {Query: "sf"}}},
		Sort: []types.SortCombinations{types.SortOptions{SortOptions: map[string]types.FieldSort{
			"year": {Order: &sortorder.Desc}}}},
		Aggregations: map[string]types.Aggregations{"genres": {Terms: &types.TermsAggregation{Field: some.String("genre")}}},
		Size:         some.Int(10),
	}).Do(ctx)
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	if sr.Hits.Total.Value != 4 || len(sr.Hits.Hits) != 4 {
		return fmt.Errorf("search: total %d, %d hits, want 4 and 4", sr.Hits.Total.Value, len(sr.Hits.Hits))
	}
	if id := *sr.Hits.Hits[0].Id_; id != "e" { // Neuromancer, 1984
		return fmt.Errorf("search: first hit by year desc is %s, want e", id)
	}
	terms, ok := sr.Aggregations["genres"].(*types.StringTermsAggregate)
	if !ok {
		return fmt.Errorf("search: genres aggregation is %T, want string terms", sr.Aggregations["genres"])
	}
	if bs, _ := terms.Buckets.([]types.StringTermsBucket); len(bs) != 1 || bs[0].DocCount != 4 {
		return fmt.Errorf("search: genres buckets %+v, want one of 4 (sf)", terms.Buckets)
	}
	cnt, err := es.Count().Index(idx).Query(&types.Query{Term: map[string]types.TermQuery{"genre": {Value: "novel"}}}).Do(ctx)
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	if cnt.Count != 2 {
		return fmt.Errorf("count: %d, want 2", cnt.Count)
	}
	logf("search, aggregation and count ok")

	res, err = raw.Search(raw.Search.WithIndex(idx), raw.Search.WithSize(2), raw.Search.WithScroll(time.Minute), raw.Search.WithContext(ctx))
	page, err := answer("scroll start", res, err)
	if err != nil {
		return err
	}
	seen := 0
	for {
		hits, _ := page["hits"].(map[string]any)["hits"].([]any)
		if len(hits) == 0 {
			break
		}
		seen += len(hits)
		id, _ := page["_scroll_id"].(string)
		res, err = raw.Scroll(raw.Scroll.WithScrollID(id), raw.Scroll.WithScroll(time.Minute), raw.Scroll.WithContext(ctx))
		if page, err = answer("scroll next", res, err); err != nil {
			return err
		}
	}
	if seen != 6 {
		return fmt.Errorf("scroll: %d documents, want 6", seen)
	}
	logf("scroll ok %d", seen)

	res, err = raw.DeleteByQuery([]string{idx}, strings.NewReader(`{"query":{"term":{"genre":"novel"}}}`),
		raw.DeleteByQuery.WithRefresh(true), raw.DeleteByQuery.WithContext(ctx))
	if _, err := answer("delete by query", res, err, `"deleted":2`); err != nil {
		return err
	}
	if cnt, err = es.Count().Index(idx).Do(ctx); err != nil {
		return fmt.Errorf("count after delete by query: %w", err)
	}
	if cnt.Count != 4 {
		return fmt.Errorf("count after delete by query: %d, want 4", cnt.Count)
	}
	logf("delete by query ok")

	_, err = es.Indices.Create(idx).Do(ctx)
	var ee *types.ElasticsearchError
	if !errors.As(err, &ee) || ee.Status != 400 || ee.ErrorCause.Type != "resource_already_exists_exception" {
		return fmt.Errorf("create again: %v, want a 400 resource_already_exists_exception", err)
	}
	if _, err := es.Indices.Delete(idx).Do(ctx); err != nil {
		return fmt.Errorf("delete index: %w", err)
	}
	if ok, err := es.Indices.Exists(idx).Do(ctx); err != nil || ok {
		return fmt.Errorf("index still exists after delete: %v %v", ok, err)
	}
	logf("errors and delete ok")
	return nil
}

// answer checks an esapi response: 2xx, the X-Elastic-Product header,
// and substrings of its body; it returns the body decoded.
func answer(what string, res *esapi.Response, err error, want ...string) (map[string]any, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.IsError() {
		return nil, fmt.Errorf("%s: %s: %s", what, res.Status(), b)
	}
	if res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
		return nil, fmt.Errorf("%s: no X-Elastic-Product header", what)
	}
	for _, w := range want {
		if !strings.Contains(string(b), w) {
			return nil, fmt.Errorf("%s: answered %s, want %s in it", what, b, w)
		}
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m, nil
}
