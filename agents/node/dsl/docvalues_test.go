package dsl

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2/index/scorch"
	index "github.com/blevesearch/bleve_index_api"
)

// The doc-values cache hands sorts and aggregations exactly what bleve's
// own reader hands them: the same searches, with the cache (cold, then
// warm) and without, over an index of several segments holding updated
// and deleted documents, multi-valued and missing fields, answer the
// same.
func TestDocValuesCacheMatchesBleve(t *testing.T) {
	for _, companion := range []bool{true, false} {
		t.Run(fmt.Sprintf("companion=%v", companion), func(t *testing.T) {
			testDocValuesCache(t, companion)
		})
	}
}

// sameAnswer compares two responses without "took", and floats to 10
// significant digits: a merge between two searches reorders documents,
// and a sum's last bits with them.
func sameAnswer(got, want map[string]any) bool {
	return reflect.DeepEqual(roundFloats(got), roundFloats(want))
}

func roundFloats(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if k != "took" {
				out[k] = roundFloats(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = roundFloats(e)
		}
		return out
	case float64:
		f, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 10, 64), 64)
		return f
	}
	return v
}

func dvDoc(r *rand.Rand, i int) string {
	ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Intn(86400*3)) * time.Second)
	s := fmt.Sprintf(`{"@timestamp":"%s","service":"svc-%d","message":"%s"`, ts.Format(time.RFC3339),
		r.Intn(12), logWords[r.Intn(8)]+" "+logWords[r.Intn(40)])
	if i%9 != 0 {
		s += fmt.Sprintf(`,"status":%d`, []int{200, 201, 404, 500}[r.Intn(4)])
	}
	if i%4 != 0 {
		s += fmt.Sprintf(`,"latency_ms":%.3f`, r.ExpFloat64()*40)
	}
	switch i % 3 {
	case 0:
		s += fmt.Sprintf(`,"tags":["t%d","t%d"]`, r.Intn(6), r.Intn(6))
	case 1:
		s += fmt.Sprintf(`,"tags":"t%d"`, r.Intn(6))
	}
	return s + "}"
}

// dvIndex is an index of several segments whose older segments hold
// deleted documents (updated or deleted later).
func dvIndex(t *testing.T, companion bool) *testIndex {
	fields := testFields{types: map[string]FieldType{
		"@timestamp": Date, "service": Keyword, "message": Text, "status": Long, "latency_ms": Double, "tags": Keyword,
	}, companion: companion}
	r := rand.New(rand.NewSource(3))
	ti := newTestIndex(t, "dv", fields, nil)
	for b := 0; b < 6; b++ {
		var docs []testDoc
		for i := b * 400; i < (b+1)*400; i++ {
			docs = append(docs, testDoc{id: fmt.Sprint(i), src: dvDoc(r, i)})
		}
		ti.add(t, docs...)
	}
	var upd []testDoc
	for i := 0; i < 2400; i += 13 {
		upd = append(upd, testDoc{id: fmt.Sprint(i), src: dvDoc(r, i+1)})
	}
	ti.add(t, upd...)
	b := ti.idx.NewBatch()
	for i := 5; i < 2400; i += 17 {
		b.Delete(fmt.Sprint(i))
		delete(ti.docs, fmt.Sprint(i))
	}
	if err := ti.idx.Batch(b); err != nil {
		t.Fatal(err)
	}
	return ti
}

// Every document number of the snapshot, every field: the cache visits
// the terms bleve visits (a segment's numbers start after the previous
// segments' documents, deleted ones included).
func TestDocValuesCacheVisitsAsBleve(t *testing.T) {
	ti := dvIndex(t, true)
	adv, err := ti.idx.Advanced()
	if err != nil {
		t.Fatal(err)
	}
	rd, err := adv.Reader()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	segs := rd.(*scorch.IndexSnapshot).Segments()
	if len(segs) < 2 {
		t.Fatalf("%d segments: the test needs several", len(segs))
	}
	var docs uint64 // the snapshot's document numbers, deleted ones included
	for _, ss := range segs {
		docs += ss.Segment().Count()
	}
	fields := []string{"@timestamp#dv", "service", "tags", "status#dv", "service"}
	base, err := rd.DocValueReader(fields)
	if err != nil {
		t.Fatal(err)
	}
	cached, err := withDocValues(rd, &DocValues{}).DocValueReader(fields)
	if err != nil {
		t.Fatal(err)
	}
	id := make(index.IndexInternalID, 8)
	for n := uint64(0); n < docs; n++ {
		id.SetValue(n)
		var want, got []string
		if err := base.VisitDocValues(id, func(f string, v []byte) { want = append(want, f+"="+string(v)) }); err != nil {
			t.Fatal(err)
		}
		if err := cached.VisitDocValues(id, func(f string, v []byte) { got = append(got, f+"="+string(v)) }); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("document %d: cache visits %q, bleve %q", n, got, want)
		}
	}
}

func testDocValuesCache(t *testing.T, companion bool) {
	ti := dvIndex(t, companion)
	// Merges renumber documents (the _doc order, ties): compare once
	// scorch has persisted and merged what it will.
	settle(t, ti.idx)
	plain := &testIndex{name: ti.name, fields: ti.fields, idx: ti.idx, docs: ti.docs, meta: ti.meta, noDV: true}
	bodies := []string{
		`{"query":{"match":{"message":"request"}},"sort":[{"@timestamp":"desc"}],"aggs":{"s":{"terms":{"field":"service","size":5}}},"size":10}`,
		`{"sort":[{"@timestamp":"asc"}],"size":25}`,
		`{"sort":[{"status":{"order":"asc","missing":"_first"}},{"@timestamp":"desc"}],"size":30}`,
		`{"sort":[{"latency_ms":"desc"}],"size":15,"aggs":{"l":{"stats":{"field":"latency_ms"}}}}`,
		`{"sort":[{"tags":{"order":"desc","mode":"min"}},{"service":"asc"},"_doc"],"size":40}`,
		`{"sort":[{"tags":{"order":"asc","mode":"max"}},{"latency_ms":{"order":"asc","missing":"_last"}}],"size":40}`,
		`{"query":{"range":{"status":{"gte":400}}},"size":0,"aggs":{"t":{"terms":{"field":"tags"},"aggs":{"a":{"avg":{"field":"latency_ms"}}}},` +
			`"h":{"histogram":{"field":"status","interval":100}},"c":{"cardinality":{"field":"service"}}}}`,
		`{"size":0,"aggs":{"d":{"date_histogram":{"field":"@timestamp","fixed_interval":"6h"},"aggs":{"m":{"max":{"field":"status"}}}},` +
			`"r":{"range":{"field":"latency_ms","ranges":[{"to":10},{"from":10,"to":50},{"from":50}]}}}}`,
		`{"query":{"term":{"service":"svc-3"}},"sort":[{"status":"desc"},{"@timestamp":"asc"}],"size":50,"aggs":{"v":{"value_count":{"field":"tags"}}}}`,
	}
	for _, body := range bodies {
		want := doSearch(t, []Target{plain.target()}, body, nil)
		delete(want, "took")
		for _, round := range []string{"cold", "warm"} {
			got := doSearch(t, []Target{ti.target()}, body, nil)
			delete(got, "took")
			if !sameAnswer(got, want) {
				t.Fatalf("%s cache, %s:\n got %v\nwant %v", round, body, got, want)
			}
		}
	}
	if ti.dv.Bytes() == 0 {
		t.Fatalf("the cache holds nothing after the searches")
	}
}

// A budget too small for every column: the columns that fit are kept,
// the others read through bleve, the answers are bleve's, the budget is
// never exceeded and Release gives it all back.
func TestDocValuesBudget(t *testing.T) {
	ti := dvIndex(t, true)
	settle(t, ti.idx)
	plain := &testIndex{name: ti.name, fields: ti.fields, idx: ti.idx, docs: ti.docs, meta: ti.meta, noDV: true}
	body := `{"sort":[{"@timestamp":"desc"}],"size":20,"aggs":{"s":{"terms":{"field":"service"}},"t":{"terms":{"field":"tags"}}}}`
	want := doSearch(t, []Target{plain.target()}, body, nil)
	delete(want, "took")
	// What every column takes, then a budget of half of it.
	all := NewDocValuesBudget(1 << 30)
	ti.dv = &DocValues{Budget: all}
	doSearch(t, []Target{ti.target()}, body, nil)
	limit := all.Used() / 2
	budget := NewDocValuesBudget(limit)
	ti.dv = &DocValues{Budget: budget}
	for range 2 {
		got := doSearch(t, []Target{ti.target()}, body, nil)
		delete(got, "took")
		if !sameAnswer(got, want) {
			t.Fatalf("with a small budget:\n got %v\nwant %v", got, want)
		}
	}
	used := budget.Used()
	if used <= 0 || used > limit {
		t.Fatalf("budget of %d bytes holds %d", limit, used)
	}
	if bytes, refused := ti.dv.Stats(); bytes != used || refused == 0 || refused != budget.Refused() {
		t.Fatalf("index stats: %d bytes and %d columns refused; budget: %d bytes and %d refused", bytes, refused, used, budget.Refused())
	}
	ti.dv.Release()
	if n := budget.Used(); n != 0 {
		t.Fatalf("after Release the budget holds %d bytes", n)
	}
	if budget.Dropped() == 0 {
		t.Fatal("Release dropped no column")
	}
}

// Searches at the same time on a cold cache build each column once and
// answer as bleve does (run with -race).
func TestDocValuesConcurrentSearches(t *testing.T) {
	ti := dvIndex(t, true)
	settle(t, ti.idx)
	plain := &testIndex{name: ti.name, fields: ti.fields, idx: ti.idx, docs: ti.docs, meta: ti.meta, noDV: true}
	body := `{"query":{"match":{"message":"error"}},"sort":[{"latency_ms":"desc"},{"_id":"asc"}],"size":10,` +
		`"aggs":{"s":{"terms":{"field":"service"},"aggs":{"m":{"max":{"field":"@timestamp"}}}}}}`
	want := doSearch(t, []Target{plain.target()}, body, nil)
	delete(want, "took")
	target := ti.target()
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			req, err := ParseSearch([]byte(body), nil)
			if err != nil {
				errs <- err.Error()
				return
			}
			resp, err := Search(context.Background(), []Target{target}, req)
			if err != nil {
				errs <- err.Error()
				return
			}
			b, _ := json.Marshal(resp)
			var got map[string]any
			_ = json.Unmarshal(b, &got)
			delete(got, "took")
			if !sameAnswer(got, want) {
				errs <- fmt.Sprintf("got %v", got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("concurrent search: %s\nwant %v", e, want)
	}
}
