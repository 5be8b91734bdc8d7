package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"

	"paddock/agents/node/mapping"
	"paddock/engine/testenv"
)

// Indexing benchmarks: the node's HTTP bulk path against bleve's own
// batch on the same small log documents, in the same run. Figures and
// commands are in docs/benchmarks.md:
//
//	go test ./agents/node -run '^$' -bench 'BulkVsBleve' -cpu 1 -benchtime 10000x

const benchBatch = 1000

// logDoc is the i-th small log document (about 200 bytes).
func logDoc(i int) []byte {
	levels := []string{"info", "info", "info", "warn", "error"}
	paths := []string{"/api/items", "/api/users", "/login", "/search", "/health"}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 10 * time.Millisecond)
	return fmt.Appendf(nil, `{"@timestamp":"%s","level":"%s","service":"svc-%d","host":"host-%d","message":"GET %s/%d returned %d in %dms","status":%d,"latency_ms":%d}`,
		ts.Format(time.RFC3339Nano), levels[i%len(levels)], i%7, i%13, paths[i%len(paths)], i%1000, 200+i%3*100, i%97, 200+i%3*100, i%97)
}

// bulkBodies splits n documents into bulk bodies of benchBatch.
func bulkBodies(n int) [][]byte {
	var out [][]byte
	for start := 0; start < n; start += benchBatch {
		out = append(out, bulkBody(start, min(start+benchBatch, n)))
	}
	return out
}

// bulkBody is the bulk body of documents [start, end).
func bulkBody(start, end int) []byte {
	var b bytes.Buffer
	for i := start; i < end; i++ {
		fmt.Fprintf(&b, "{\"index\":{\"_index\":\"logs\",\"_id\":\"%d\"}}\n", i)
		b.Write(logDoc(i))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// cpuTime is the process's user+system CPU time: under a loaded
// machine, documents per CPU second say more than per wall second.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchNode starts a node behind an HTTP server; stop stops both.
func benchNode(b *testing.B) (s *Server, ts *httptest.Server, stop func()) {
	b.Helper()
	s, err := NewServer(Config{Name: "bench", DataDir: b.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ts = httptest.NewServer(s)
	return s, ts, func() { ts.Close(); s.Close() }
}

func postBench(b *testing.B, url string, body []byte) {
	resp, err := http.Post(url, "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || bytes.Contains(out[:min(len(out), 64)], []byte(`"errors":true`)) {
		b.Fatalf("%s: %d %.300s", url, resp.StatusCode, out)
	}
}

// BenchmarkBulkHTTP: b.N documents through POST /_bulk (1,000 per
// request), then a refresh, so every document is searchable.
func BenchmarkBulkHTTP(b *testing.B) {
	b.StopTimer()
	wall, cpu := bulkRound(b, b.N)
	reportRound(b, b.N, wall, cpu)
}

// BenchmarkBleveBatch: the same documents indexed by bleve itself (its
// mapper, batches of 1,000, the same scorch configuration): the library's
// own limit.
func BenchmarkBleveBatch(b *testing.B) {
	b.StopTimer()
	wall, cpu := bleveRound(b, b.N)
	reportRound(b, b.N, wall, cpu)
}

// BenchmarkBulkVsBleve: the goal's ratio measured fairly in one process.
// Run one after the other, BulkHTTP and BleveBatch do not start alike:
// whichever runs first grows the process's heap and touches its pages
// for the first time. Here each side first indexes b.N documents
// unmeasured, then the sides alternate for three measured rounds each,
// and the ratio is of the totals. Both sides run under the same garbage
// collector settings: the runtime's (gc=runtime), then those a node
// gives itself in a container of 2 GiB (gc=node-2GiB, tuneGC).
func BenchmarkBulkVsBleve(b *testing.B) {
	for _, gc := range []struct {
		name string
		plan gcPlan
	}{
		{"runtime", gcPlan{keep: "runtime"}},
		{"node-2GiB", planGC("2147483648", func(string) string { return "" })},
	} {
		b.Run("gc="+gc.name, func(b *testing.B) {
			prev := gc.plan.apply()
			defer prev.apply()
			bulkVsBleve(b)
		})
	}
}

func bulkVsBleve(b *testing.B) {
	b.StopTimer()
	const rounds = 3
	bulkRound(b, b.N)
	bleveRound(b, b.N)
	var nodeCPU, bleveCPU, nodeWall, bleveWall time.Duration
	for range rounds {
		w, c := bulkRound(b, b.N)
		nodeWall, nodeCPU = nodeWall+w, nodeCPU+c
		w, c = bleveRound(b, b.N)
		bleveWall, bleveCPU = bleveWall+w, bleveCPU+c
	}
	docs := float64(rounds * b.N)
	b.ReportMetric(docs/nodeCPU.Seconds(), "node-docs/cpu-s")
	b.ReportMetric(docs/bleveCPU.Seconds(), "bleve-docs/cpu-s")
	b.ReportMetric(bleveCPU.Seconds()/nodeCPU.Seconds(), "ratio-cpu")
	b.ReportMetric(bleveWall.Seconds()/nodeWall.Seconds(), "ratio-wall")
}

func reportRound(b *testing.B, n int, wall, cpu time.Duration) {
	b.ReportMetric(float64(n)/wall.Seconds(), "docs/s")
	b.ReportMetric(float64(n)/cpu.Seconds(), "docs/cpu-s")
}

// bulkRound indexes n documents into a new node through POST /_bulk
// (1,000 per request), then refreshes, so every document is searchable;
// it returns the wall and process CPU time this took.
func bulkRound(b *testing.B, n int) (wall, cpu time.Duration) {
	bodies := bulkBodies(n)
	_, ts, stop := benchNode(b)
	defer stop()
	b.StartTimer()
	start, cpu0 := time.Now(), cpuTime()
	for _, body := range bodies {
		postBench(b, ts.URL+"/_bulk", body)
	}
	postBench(b, ts.URL+"/logs/_refresh", nil)
	wall, cpu = time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	return wall, cpu
}

// bleveRound indexes the same n documents with bleve itself into a new
// index and returns the wall and process CPU time this took.
func bleveRound(b *testing.B, n int) (wall, cpu time.Duration) {
	// The mapping the node ends with for these documents.
	m := mapping.New()
	var err error
	for i := range 10 {
		src, _ := mapping.DecodeSource(logDoc(i))
		if _, m, err = m.Document("x", src); err != nil {
			b.Fatal(err)
		}
	}
	// The JSON documents, as the bulk benchmark gets them; decoding is
	// part of bleve's work (it indexes Go values). They are decoded as
	// bleve's users do (encoding/json, numbers as float64): bleve's
	// mapper skips json.Number values, so mapping.DecodeSource would
	// leave the numeric fields out and the reference would index less
	// than the node.
	raw := make([][]byte, n)
	for i := range raw {
		raw[i] = logDoc(i)
	}
	idx, err := bleve.NewUsing(filepath.Join(b.TempDir(), "bleve"), mapping.NewIndexMapping(m), scorch.Name, scorch.Name, map[string]any{"unsafe_batch": true})
	if err != nil {
		b.Fatal(err)
	}
	defer idx.Close()
	b.StartTimer()
	start, cpu0 := time.Now(), cpuTime()
	for s := 0; s < n; s += benchBatch {
		batch := idx.NewBatch()
		for i := s; i < min(s+benchBatch, n); i++ {
			var doc map[string]any
			if err := json.Unmarshal(raw[i], &doc); err != nil {
				b.Fatal(err)
			}
			if err := batch.Index(fmt.Sprint(i), doc); err != nil {
				b.Fatal(err)
			}
		}
		if err := idx.Batch(batch); err != nil {
			b.Fatal(err)
		}
	}
	wall, cpu = time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	return wall, cpu
}

// BenchmarkMemory100k: heap held and bytes on disk per 100,000 documents
// after indexing them through the bulk API (b.N is ignored).
func BenchmarkMemory100k(b *testing.B) {
	const n = 100_000
	s, ts, stop := benchNode(b)
	b.Cleanup(stop)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for start := 0; start < n; start += benchBatch {
		postBench(b, ts.URL+"/_bulk", bulkBody(start, start+benchBatch))
	}
	postBench(b, ts.URL+"/logs/_refresh", nil)
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20), "heapMB-at-refresh/100k")
	// Then once bleve has persisted its in-memory segments (files are
	// mapped, not heap).
	idx := s.index("logs").Index()
	testenv.WaitEvery(5*time.Minute, 200*time.Millisecond, func() (bool, string) {
		mem, _ := idx.StatsMap()["index"].(map[string]any)["num_root_memorysegments"].(uint64)
		return mem == 0, ""
	})
	runtime.GC()
	runtime.ReadMemStats(&after)
	var disk int64
	_ = filepath.WalkDir(s.cfg.DataDir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				disk += info.Size()
			}
		}
		return nil
	})
	if st := s.index("logs").Stats(); st.Docs != n {
		b.Fatalf("%d documents searchable, want %d", st.Docs, n)
	}
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20), "heapMB-persisted/100k")
	b.ReportMetric(float64(disk)/(1<<20), "diskMB/100k")
}
