package node

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkReplicatedWrites: write throughput of a group with 1 replica
// against a node alone (0 replicas), in the same run: single-document
// PUTs from 8 concurrent clients, and bulk requests of 100 documents.
// Figures and commands in docs/benchmarks.md:
//
//	go test ./agents/node -run '^$' -bench ReplicatedWrites -benchtime 500x -count 2
func BenchmarkReplicatedWrites(b *testing.B) {
	for _, copies := range []int{1, 2} {
		for _, kind := range []string{"doc", "bulk100"} {
			b.Run(fmt.Sprintf("replicas=%d/%s", copies-1, kind), func(b *testing.B) {
				ids := []string{"a", "b"}[:copies]
				g := newGroup(b, ids...)
				primary := g.primaryURL()
				var next atomic.Int64
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
				put := func(method, path, body string) {
					req, _ := http.NewRequest(method, primary+path, strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode >= 300 {
						b.Errorf("%s %s = %d", method, path, resp.StatusCode)
					}
				}
				put("PUT", "/logs", `{"settings":{"number_of_replicas":1}}`)
				b.SetParallelism(8)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := int(next.Add(1))
						if kind == "doc" {
							put("PUT", fmt.Sprintf("/logs/_doc/%d", i), string(logDoc(i)))
							continue
						}
						put("POST", "/_bulk", string(bulkBody(i*100, i*100+100)))
					}
				})
				b.StopTimer()
				docs := float64(b.N)
				if kind != "doc" {
					docs *= 100
				}
				b.ReportMetric(docs/b.Elapsed().Seconds(), "docs/s")
			})
		}
	}
}
