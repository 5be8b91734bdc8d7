package dsl

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"

	"paddock/engine/testenv"
)

// Benchmarks of the search path on small log documents, as the node's
// benchmark in docs/benchmarks.md records them:
//
//	go test ./agents/node/dsl -run XXX -bench SearchLogs -benchtime 300x -timeout 60m
//
// Each size's index is built once per run in a temporary directory.

var logFields = testFields{types: map[string]FieldType{
	"@timestamp": Date, "level": Keyword, "service": Keyword, "host": Keyword,
	"message": Text, "status": Long, "latency_ms": Double,
}, companion: os.Getenv("DSL_BENCH_NO_COMPANION") == ""}

var logWords = func() []string {
	var w []string
	for _, s := range []string{"request", "response", "user", "login", "logout", "timeout", "error", "retry",
		"connection", "database", "cache", "miss", "hit", "payment", "order", "created", "deleted", "updated",
		"failed", "succeeded", "slow", "query", "upstream", "downstream", "session", "token", "expired", "refresh",
		"queue", "worker", "job", "started", "finished", "disk", "memory", "cpu", "throttled", "rejected", "accepted"} {
		w = append(w, s)
	}
	for i := 0; i < 160; i++ {
		w = append(w, "w"+strconv.Itoa(i))
	}
	return w
}()

var levels = []string{"info", "info", "info", "info", "warn", "error", "debug"}

// logDoc makes the i-th log document (the same every time).
func logDoc(i int) string {
	r := rand.New(rand.NewSource(int64(i)))
	ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 3 * time.Second)
	n := 6 + r.Intn(8)
	msg := ""
	for j := 0; j < n; j++ {
		// Zipf-like: low ranks are common
		k := int(float64(len(logWords)) * r.Float64() * r.Float64())
		if j > 0 {
			msg += " "
		}
		msg += logWords[k]
	}
	return fmt.Sprintf(`{"@timestamp":"%s","level":"%s","service":"svc-%d","host":"host-%d","message":"%s","status":%d,"latency_ms":%.2f}`,
		ts.Format(time.RFC3339), levels[r.Intn(len(levels))], r.Intn(20), r.Intn(50), msg,
		[]int{200, 200, 200, 201, 204, 301, 400, 404, 500, 503}[r.Intn(10)], r.ExpFloat64()*50)
}

type benchIndex struct {
	ti        *testIndex
	dir       string
	heapBytes uint64
	indexTime time.Duration
}

var (
	benchMu      sync.Mutex
	benchIndices = map[int]*benchIndex{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	benchMu.Lock()
	for _, bi := range benchIndices {
		_ = bi.ti.idx.Close()
		_ = os.RemoveAll(bi.dir)
	}
	benchMu.Unlock()
	os.Exit(code)
}

// logIndex builds (once per process) a scorch index of n log documents.
func logIndex(b *testing.B, n int) *benchIndex {
	benchMu.Lock()
	defer benchMu.Unlock()
	if bi, ok := benchIndices[n]; ok {
		return bi
	}
	dir, err := os.MkdirTemp("", "dsl-bench-")
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	im := testIndexMapping(b)
	idx, err := bleve.NewUsing(filepath.Join(dir, "idx"), im, scorch.Name, scorch.Name, nil)
	if err != nil {
		b.Fatal(err)
	}
	// sources are made again on demand, so that the heap measured is the
	// index's
	ti := &testIndex{name: "logs", fields: logFields, idx: idx}
	start := time.Now()
	const batch = 1000
	for i := 0; i < n; i += batch {
		bt := idx.NewBatch()
		for j := i; j < i+batch && j < n; j++ {
			doc, err := buildDoc(idx.Mapping(), logFields, strconv.Itoa(j), []byte(logDoc(j)))
			if err != nil {
				b.Fatal(err)
			}
			if err := bt.IndexAdvanced(doc); err != nil {
				b.Fatal(err)
			}
		}
		if err := idx.Batch(bt); err != nil {
			b.Fatal(err)
		}
	}
	took := time.Since(start)
	settle(b, idx)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	bi := &benchIndex{ti: ti, dir: dir, indexTime: took}
	if after.HeapInuse > before.HeapInuse {
		bi.heapBytes = after.HeapInuse - before.HeapInuse
	}
	benchIndices[n] = bi
	return bi
}

// settle waits until scorch has persisted and merged what it will merge
// (the segment count holds still), so searches are not timed against a
// merger's work.
func settle(b testing.TB, idx bleve.Index) {
	stats := func() (mem, files uint64) {
		m := idx.StatsMap()
		im, _ := m["index"].(map[string]interface{})
		mem, _ = im["num_root_memorysegments"].(uint64)
		files, _ = im["num_root_filesegments"].(uint64)
		return mem, files
	}
	// Settled: nothing in memory and the same number of files for four
	// looks in a row, half a second apart.
	last, still := uint64(0), 0
	if _, ok := testenv.WaitEvery(5*time.Minute, 500*time.Millisecond, func() (bool, string) {
		mem, files := stats()
		if mem == 0 && files == last {
			still++
		} else {
			still = 0
		}
		last = files
		return still >= 4, ""
	}); !ok {
		b.Logf("index still merging after 5 minutes")
	}
}

func segments(idx bleve.Index) float64 {
	im, _ := idx.StatsMap()["index"].(map[string]interface{})
	n, _ := im["num_root_filesegments"].(uint64)
	return float64(n)
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func dirSize(dir string) int64 {
	var total int64
	_ = filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			total += info.Size()
		}
		return nil
	})
	return total
}

// BenchmarkSearchLogs measures a search with a match query, a terms
// aggregation and a sort: p50/p99 latency, and the index's memory and disk
// size per 100k documents.
//
// docs=N is the node's search (doc values from the index's DocValues
// cache, warm after the first search); docs=N-uncached reads them
// through bleve for every search, as before the cache: the two side by
// side in one run, on the same index.
func BenchmarkSearchLogs(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		for _, uncached := range []bool{false, true} {
			name := fmt.Sprintf("docs=%d", n)
			if uncached {
				name += "-uncached"
			}
			b.Run(name, func(b *testing.B) { benchSearchLogs(b, n, uncached) })
		}
	}
}

func benchSearchLogs(b *testing.B, n int, uncached bool) {
	if n > 100_000 && os.Getenv("DSL_BENCH_1M") == "" {
		b.Skip("set DSL_BENCH_1M=1 for the 1M-document index (several minutes to build)")
	}
	bi := logIndex(b, n)
	target := bi.ti.target()
	if uncached {
		target.DocValues = nil
	}
	target.Source = func(id string) ([]byte, DocMeta, bool) {
		i, err := strconv.Atoi(id)
		if err != nil {
			return nil, DocMeta{}, false
		}
		return []byte(logDoc(i)), DocMeta{Version: 1, SeqNo: int64(i), PrimaryTerm: 1}, true
	}
	r := rand.New(rand.NewSource(1))
	lat := make([]time.Duration, 0, b.N)
	var hits float64
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := logWords[r.Intn(40)]
		body := `{"query":{"match":{"message":"` + w + `"}},"sort":[{"@timestamp":"desc"}],` +
			`"aggs":{"services":{"terms":{"field":"service","size":10}}},"size":10}`
		t0 := time.Now()
		req, err := ParseSearch([]byte(body), nil)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := Search(context.Background(), []Target{target}, req)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		hits += float64(resp.(*response).Hits.Total.(totalJSON).Value)
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(hits/float64(b.N), "matches/op")
	per100k := float64(n) / 100_000
	b.ReportMetric(float64(bi.heapBytes)/per100k/(1<<20), "heap-MB/100k")
	b.ReportMetric(float64(dirSize(bi.dir))/per100k/(1<<20), "disk-MB/100k")
	b.ReportMetric(segments(bi.ti.idx), "segments")
	b.ReportMetric(float64(target.DocValues.Bytes())/per100k/(1<<20), "dv-cache-MB/100k")
}
