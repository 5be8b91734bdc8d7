package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	"paddock/agents/node/shard"
	"paddock/engine/s3server/s3test"
)

// Snapshot benchmarks: full snapshot, incremental snapshot after 1% of
// the documents changed, and restore, of one index of about 1 KB
// documents, to a local weed (s3) and to a local directory (fs).
// PADDOCK_SNAP_BENCH_MB sets the index size (default 64 MB of source).
// Figures and commands are in docs/benchmarks.md:
//
//	go test ./agents/node -run '^$' -bench Snapshot -benchtime 3x

func benchDoc(i, rev int) []byte {
	pad := make([]byte, 900)
	for j := range pad {
		pad[j] = 'a' + byte((i*7+j+rev)%26)
	}
	return fmt.Appendf(nil, `{"n":%d,"rev":%d,"body":"%s"}`, i, rev, pad)
}

func benchIndex(b *testing.B, s *Server, name string, docs int) {
	b.Helper()
	sh, _, err := s.createShard(name, nil, map[string]any{"refresh_interval": "-1"})
	if err != nil {
		b.Fatal(err)
	}
	for start := 0; start < docs; start += 1000 {
		ops := make([]shard.Op, 0, 1000)
		for i := start; i < min(start+1000, docs); i++ {
			ops = append(ops, shard.Op{Kind: shard.OpIndex, ID: strconv.Itoa(i), Source: benchDoc(i, 0)})
		}
		if _, err := sh.Write(context.Background(), ops); err != nil {
			b.Fatal(err)
		}
	}
	if err := sh.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkSnapshot(b *testing.B) {
	mb := 64
	if v, err := strconv.Atoi(os.Getenv("PADDOCK_SNAP_BENCH_MB")); err == nil && v > 0 {
		mb = v
	}
	docs := mb << 10 // ~1 KB each
	for _, kind := range []string{"s3", "fs"} {
		b.Run(kind, func(b *testing.B) {
			root := b.TempDir()
			repo := `{"type":"fs","settings":{"location":"bench"}}`
			if kind == "s3" {
				repo = s3test.Start(b).RepoSettings("bench")
			}
			s, err := NewServer(Config{Name: "bench", DataDir: b.TempDir(), SnapshotRoot: root, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			ts := httptest.NewServer(s)
			defer func() { ts.Close(); s.Close() }()
			benchIndex(b, s, "big", docs)
			do(b, ts.URL, call{"PUT", "/_snapshot/r", repo, 200, nil})
			size := float64(docs) * float64(len(benchDoc(0, 0))) / (1 << 20)
			n := 0
			snap := func() string {
				n++
				name := fmt.Sprintf("s%d", n)
				do(b, ts.URL, call{"PUT", "/_snapshot/r/" + name + "?wait_for_completion=true", `{"indices":"big"}`, 200, []string{`"SUCCESS"`}})
				return name
			}
			b.Run("full", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					// A new index (new uuid, same documents would dedupe):
					// change every document so nothing is reused.
					sh := s.index("big")
					ops := make([]shard.Op, 0, 1000)
					for d := 0; d < docs; d++ {
						ops = append(ops, shard.Op{Kind: shard.OpIndex, ID: strconv.Itoa(d), Source: benchDoc(d, 1000+n)})
						if len(ops) == cap(ops) || d == docs-1 {
							if _, err := sh.Write(context.Background(), ops); err != nil {
								b.Fatal(err)
							}
							ops = ops[:0]
						}
					}
					b.StartTimer()
					snap()
				}
				b.ReportMetric(size*float64(b.N)/b.Elapsed().Seconds(), "MB/s")
			})
			b.Run("incremental-1pct", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					sh := s.index("big")
					ops := make([]shard.Op, 0, docs/100)
					for d := 0; d < docs/100; d++ {
						id := (d*9973 + i*31) % docs
						ops = append(ops, shard.Op{Kind: shard.OpIndex, ID: strconv.Itoa(id), Source: benchDoc(id, 2000+n)})
					}
					if _, err := sh.Write(context.Background(), ops); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					snap()
				}
			})
			last := snap()
			b.Run("restore", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					target := fmt.Sprintf("restored%d", i)
					do(b, ts.URL, call{"POST", "/_snapshot/r/" + last + "/_restore", `{"indices":"big","rename_pattern":"big","rename_replacement":"` + target + `"}`, 200, nil})
					b.StopTimer()
					do(b, ts.URL, call{"DELETE", "/" + target, "", 200, nil})
					b.StartTimer()
				}
				b.ReportMetric(size*float64(b.N)/b.Elapsed().Seconds(), "MB/s")
			})
		})
	}
}
