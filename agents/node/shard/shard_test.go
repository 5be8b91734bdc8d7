package shard

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"

	"paddock/agents/node/eserr"
	"paddock/agents/node/mapping"
)

func quiet() Options { return Options{Logger: slog.New(slog.DiscardHandler)} }

func testShard(t *testing.T, refresh time.Duration) (*Shard, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "idx")
	st := DefaultSettings()
	st.RefreshInterval = refresh
	s, err := Create(dir, "idx", nil, st, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func write1(t *testing.T, s *Shard, op Op) Result {
	t.Helper()
	res, err := s.Write(context.Background(), []Op{op})
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

func errType(err error) string {
	var e *eserr.Error
	if errors.As(err, &e) {
		return e.Type
	}
	return fmt.Sprint(err)
}

func i64p(n int64) *int64 { return &n }

func searchCount(t *testing.T, s *Shard, q string) uint64 {
	t.Helper()
	req := bleve.NewSearchRequest(bleve.NewQueryStringQuery(q))
	if q == "" {
		req = bleve.NewSearchRequest(bleve.NewMatchAllQuery())
	}
	res, err := s.Index().Search(req)
	if err != nil {
		t.Fatal(err)
	}
	return res.Total
}

func TestVersioning(t *testing.T) {
	s, _ := testShard(t, -1)
	doc := []byte(`{"title":"Dune","year":1965}`)
	steps := []struct {
		name       string
		op         Op
		wantResult string
		wantErr    string
		wantVer    int64
		wantSeq    int64
	}{
		{"create", Op{Kind: OpIndex, ID: "1", Source: doc}, "created", "", 1, 0},
		{"replace", Op{Kind: OpIndex, ID: "1", Source: doc}, "updated", "", 2, 1},
		{"op_type create on existing", Op{Kind: OpCreate, ID: "1", Source: doc}, "", "version_conflict_engine_exception", 0, 0},
		{"if_seq_no matches", Op{Kind: OpIndex, ID: "1", Source: doc, IfSeqNo: i64p(1), IfPrimaryTerm: i64p(1)}, "updated", "", 3, 2},
		{"if_seq_no stale", Op{Kind: OpIndex, ID: "1", Source: doc, IfSeqNo: i64p(1), IfPrimaryTerm: i64p(1)}, "", "version_conflict_engine_exception", 0, 0},
		{"if_primary_term wrong", Op{Kind: OpIndex, ID: "1", Source: doc, IfSeqNo: i64p(2), IfPrimaryTerm: i64p(7)}, "", "version_conflict_engine_exception", 0, 0},
		{"if_seq_no on missing", Op{Kind: OpIndex, ID: "2", Source: doc, IfSeqNo: i64p(0), IfPrimaryTerm: i64p(1)}, "", "version_conflict_engine_exception", 0, 0},
		{"external higher", Op{Kind: OpIndex, ID: "1", Source: doc, Version: 10, VersionType: VersionExternal}, "updated", "", 10, 3},
		{"external equal", Op{Kind: OpIndex, ID: "1", Source: doc, Version: 10, VersionType: VersionExternal}, "", "version_conflict_engine_exception", 0, 0},
		{"external_gte equal", Op{Kind: OpIndex, ID: "1", Source: doc, Version: 10, VersionType: VersionExternalGTE}, "updated", "", 10, 4},
		{"external_gte lower", Op{Kind: OpIndex, ID: "1", Source: doc, Version: 9, VersionType: VersionExternalGTE}, "", "version_conflict_engine_exception", 0, 0},
		{"mapping conflict", Op{Kind: OpIndex, ID: "1", Source: []byte(`{"year":"long ago"}`)}, "", "mapper_parsing_exception", 0, 0},
		{"not an object", Op{Kind: OpIndex, ID: "3", Source: []byte(`[1]`)}, "", "mapper_parsing_exception", 0, 0},
		{"delete", Op{Kind: OpDelete, ID: "1"}, "deleted", "", 11, 5},
		{"delete missing", Op{Kind: OpDelete, ID: "1"}, "not_found", "", 0, 0},
		{"recreate after delete continues the version", Op{Kind: OpIndex, ID: "1", Source: doc}, "created", "", 12, 6},
		{"update noop", Op{Kind: OpUpdate, ID: "1", Update: func(cur []byte, ok bool) ([]byte, bool, error) { return cur, true, nil }}, "noop", "", 12, 6},
		{"update", Op{Kind: OpUpdate, ID: "1", Update: func(cur []byte, ok bool) ([]byte, bool, error) {
			return []byte(`{"title":"Dune Messiah","year":1969}`), false, nil
		}}, "updated", "", 13, 7},
		{"update refused", Op{Kind: OpUpdate, ID: "9", Update: func(cur []byte, ok bool) ([]byte, bool, error) {
			return nil, false, eserr.New(404, "document_missing_exception", "[9]: document missing")
		}}, "", "document_missing_exception", 0, 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := write1(t, s, st.op)
			if got := errType(r.Err); r.Err != nil && got != st.wantErr || r.Err == nil && st.wantErr != "" {
				t.Fatalf("error = %v, want %s", r.Err, st.wantErr)
			}
			if st.wantErr != "" {
				return
			}
			if r.Result != st.wantResult {
				t.Fatalf("result = %s, want %s", r.Result, st.wantResult)
			}
			if st.wantVer != 0 && (r.Version != st.wantVer || r.SeqNo != st.wantSeq || r.PrimaryTerm != 1) {
				t.Fatalf("version/seq/term = %d/%d/%d, want %d/%d/1", r.Version, r.SeqNo, r.PrimaryTerm, st.wantVer, st.wantSeq)
			}
		})
	}
	src, meta, ok, err := s.Get("1")
	if err != nil || !ok || meta.Version != 13 || !strings.Contains(string(src), "Messiah") {
		t.Fatalf("Get = %s %+v %v %v", src, meta, ok, err)
	}
	// The refused mapping change was not stored.
	if typ, _ := s.Mapping().Type("year"); typ != mapping.Long {
		t.Fatalf("year is %q after a refused write", typ)
	}
}

func TestRefreshVisibility(t *testing.T) {
	s, _ := testShard(t, -1)
	ctx := context.Background()
	write1(t, s, Op{Kind: OpIndex, ID: "a", Source: []byte(`{"t":"hello"}`)})
	if _, _, ok, _ := s.Get("a"); !ok {
		t.Fatal("GET is not real time")
	}
	if n := searchCount(t, s, ""); n != 0 {
		t.Fatalf("searchable before a refresh: %d", n)
	}
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := searchCount(t, s, "t:hello"); n != 1 {
		t.Fatalf("after refresh: %d hits", n)
	}
	// wait_for with periodic refresh disabled refreshes itself.
	r := write1(t, s, Op{Kind: OpIndex, ID: "b", Source: []byte(`{"t":"world"}`)})
	if err := s.WaitRefreshed(ctx, r.SeqNo); err != nil {
		t.Fatal(err)
	}
	if n := searchCount(t, s, "t:world"); n != 1 {
		t.Fatalf("after wait_for: %d hits", n)
	}
	write1(t, s, Op{Kind: OpDelete, ID: "a"})
	if err := s.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := searchCount(t, s, ""); n != 1 {
		t.Fatalf("after delete and refresh: %d docs", n)
	}
}

func TestPeriodicRefresh(t *testing.T) {
	s, _ := testShard(t, 20*time.Millisecond)
	r := write1(t, s, Op{Kind: OpIndex, ID: "a", Source: []byte(`{"t":"x"}`)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitRefreshed(ctx, r.SeqNo); err != nil {
		t.Fatalf("the periodic refresh did not come: %v", err)
	}
	if err := s.PutSettings(map[string]any{"index": map[string]any{"refresh_interval": "-1"}}); err != nil {
		t.Fatal(err)
	}
	if got := s.Settings().RefreshInterval; got != -1 {
		t.Fatalf("refresh_interval = %v", got)
	}
}

// TestGroupCommit: concurrent writers all succeed with distinct seq_nos.
func TestGroupCommit(t *testing.T) {
	s, _ := testShard(t, -1)
	const writers, each = 8, 50
	var wg sync.WaitGroup
	seqs := make(chan int64, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				res, err := s.Write(context.Background(), []Op{{Kind: OpIndex, ID: fmt.Sprintf("%d-%d", w, i), Source: []byte(`{"n":1}`)}})
				if err != nil || res[0].Err != nil {
					t.Errorf("write: %v %v", err, res)
					return
				}
				seqs <- res[0].SeqNo
			}
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for q := range seqs {
		if seen[q] {
			t.Fatalf("seq_no %d given twice", q)
		}
		seen[q] = true
	}
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := searchCount(t, s, ""); n != writers*each {
		t.Fatalf("%d docs searchable, want %d", n, writers*each)
	}
}

// TestRefreshInBatches: a refresh holding more writes than one bleve
// batch (refreshBatch) applies them all, deletes included, and records
// its highest seq_no in bleve, so a reopen replays nothing.
func TestRefreshInBatches(t *testing.T) {
	tests := []struct {
		name    string
		n, dels int
	}{
		{"one batch", refreshBatch, 0},
		{"one more than a batch", refreshBatch + 1, 0},
		{"batches with deletes", 2*refreshBatch + 500, 300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := testShard(t, -1)
			ops := make([]Op, 0, tc.n+tc.dels)
			for i := range tc.n {
				ops = append(ops, Op{Kind: OpIndex, ID: strconv.Itoa(i), Source: []byte(`{"t":"x"}`)})
			}
			for i := range tc.dels {
				ops = append(ops, Op{Kind: OpDelete, ID: strconv.Itoa(i)})
			}
			res, err := s.Write(context.Background(), ops)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n, want := searchCount(t, s, "t:x"), uint64(tc.n-tc.dels); n != want {
				t.Fatalf("%d docs searchable, want %d", n, want)
			}
			last := res[len(res)-1].SeqNo
			if got := s.refreshedSeq.Load(); got != last {
				t.Fatalf("refreshed up to seq_no %d, want %d", got, last)
			}
			if v, err := s.idx.GetInternal(internalSeq); err != nil || v == nil || geti64(v) != last {
				t.Fatalf("bleve records seq_no %v (%v), want %d: a reopen would replay", v, err, last)
			}
		})
	}
}

func TestReopen(t *testing.T) {
	s, dir := testShard(t, -1)
	write1(t, s, Op{Kind: OpIndex, ID: "a", Source: []byte(`{"t":"kept","n":1}`)})
	if err := s.PutMapping(mustMapping(t, `{"properties":{"k":{"type":"keyword"}}}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir, "idx", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n := searchCount(t, s2, "t:kept"); n != 1 {
		t.Fatalf("after reopen: %d hits", n)
	}
	if typ, _ := s2.Mapping().Type("k"); typ != mapping.Keyword {
		t.Fatalf("mapping lost: k is %q", typ)
	}
	r := write1(t, s2, Op{Kind: OpIndex, ID: "a", Source: []byte(`{"t":"again"}`)})
	if r.Version != 2 || r.SeqNo != 1 {
		t.Fatalf("versions did not survive: %+v", r.Meta)
	}
}

func mustMapping(t *testing.T, s string) *mapping.Mapping {
	t.Helper()
	m, err := mapping.Parse([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCrashRecovery: a process acknowledges writes (refresh disabled, so
// bleve never saw them) and is killed; reopening replays them.
func TestCrashRecovery(t *testing.T) {
	if dir := os.Getenv("SHARD_CRASH_DIR"); dir != "" {
		crashHelper(dir)
		return
	}
	dir := filepath.Join(t.TempDir(), "idx")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashRecovery$")
	cmd.Env = append(os.Environ(), "SHARD_CRASH_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked, _ = strconv.Atoi(n)
			if acked >= 200 {
				break
			}
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if acked < 200 {
		t.Fatalf("the helper acknowledged %d writes", acked)
	}
	s, err := Open(dir, "idx", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := searchCount(t, s, "")
	if n < uint64(acked) {
		t.Fatalf("after the kill %d documents are searchable, %d were acknowledged", n, acked)
	}
	for i := range acked {
		if _, _, ok, _ := s.Get(fmt.Sprint(i)); !ok {
			t.Fatalf("acknowledged document %d lost", i)
		}
	}
	if st := s.Stats(); st.RefreshedTo < int64(acked-1) {
		t.Fatalf("refreshed to seq %d after replay, want ≥ %d", st.RefreshedTo, acked-1)
	}
}

func crashHelper(dir string) {
	st := DefaultSettings()
	st.RefreshInterval = -1
	s, err := Create(dir, "idx", nil, st, quiet())
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		res, err := s.Write(context.Background(), []Op{{Kind: OpIndex, ID: fmt.Sprint(i), Source: []byte(`{"msg":"entry ` + fmt.Sprint(i) + `"}`)}})
		if err != nil || res[0].Err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		if i == 100 {
			// Half the writes reach bleve, half only the op log.
			if err := s.Refresh(context.Background()); err != nil {
				os.Exit(1)
			}
		}
		fmt.Println("acked", i+1)
	}
}

func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		raw      map[string]any
		creating bool
		wantErr  string
		check    func(Settings) bool
	}{
		{"nested", map[string]any{"index": map[string]any{"number_of_shards": "3", "number_of_replicas": 2.0}}, true, "", func(s Settings) bool { return s.Shards == 3 && s.Replicas == 2 }},
		{"flat", map[string]any{"index.refresh_interval": "500ms"}, false, "", func(s Settings) bool { return s.RefreshInterval == 500*time.Millisecond }},
		{"short keys", map[string]any{"refresh_interval": "-1"}, false, "", func(s Settings) bool { return s.RefreshInterval == -1 }},
		{"null resets", map[string]any{"refresh_interval": nil}, false, "", func(s Settings) bool { return s.RefreshInterval == time.Second }},
		{"shards are final", map[string]any{"number_of_shards": 2}, false, "non dynamic", nil},
		{"bad interval", map[string]any{"refresh_interval": "soon"}, false, "time value", nil},
		{"bad replicas", map[string]any{"number_of_replicas": -1}, false, "number_of_replicas", nil},
		{"unknown", map[string]any{"index": map[string]any{"frob": 1}}, true, "unknown setting [index.frob]", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DefaultSettings().Apply(tc.raw, tc.creating)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(got) {
				t.Fatalf("Apply = %+v, %v", got, err)
			}
		})
	}
}
