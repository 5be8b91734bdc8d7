package node

import (
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock/agents/node/shard"
	"paddock/engine/s3server/s3test"
	"paddock/engine/testenv"
)

// snapStatus reads a snapshot's _status stats.
func snapStatus(t *testing.T, base, repo, snap string) (incFiles, incBytes, totFiles, totBytes int64, state string) {
	t.Helper()
	m := do(t, base, call{"GET", "/_snapshot/" + repo + "/" + snap + "/_status", "", 200, nil})
	s := m["snapshots"].([]any)[0].(map[string]any)
	st := s["stats"].(map[string]any)
	num := func(k1, k2 string) int64 {
		v, _ := st[k1].(map[string]any)[k2].(float64)
		return int64(v)
	}
	return num("incremental", "file_count"), num("incremental", "size_in_bytes"), num("total", "file_count"), num("total", "size_in_bytes"), s["state"].(string)
}

func bulkDocs(t *testing.T, base, index string, from, to int) {
	t.Helper()
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "{\"index\":{\"_index\":%q,\"_id\":\"d%05d\"}}\n{\"n\":%d,\"title\":\"document number %d with some text to make it longer\"}\n", index, i, i, i)
	}
	do(t, base, call{"POST", "/_bulk?refresh=true", b.String(), 200, []string{`"errors":false`}})
}

// testSnapshotLifecycle runs the scenario against a repository:
// snapshot, delete, restore everything; a second snapshot uploads only
// the difference; rename on restore; deleting a snapshot keeps the blobs
// others need and removes the rest.
func testSnapshotLifecycle(t *testing.T, ts *httptest.Server, repoBody string, blobCount func() int) {
	u := ts.URL
	do(t, u, call{"PUT", "/books", `{"mappings":{"properties":{"n":{"type":"integer"},"title":{"type":"text"}}},"aliases":{"library":{}}}`, 200, nil})
	bulkDocs(t, u, "books", 0, 2000)
	do(t, u, call{"PUT", "/_snapshot/r", repoBody, 200, []string{`"acknowledged":true`}})
	got := do(t, u, call{"GET", "/_snapshot/r", "", 200, []string{`"type"`}})
	for _, secret := range []string{"access_key", "secret_key", "TESTSECRET"} {
		if strings.Contains(fmt.Sprint(got), secret) {
			t.Fatalf("GET /_snapshot/r shows %s: %v", secret, got)
		}
	}
	do(t, u, call{"PUT", "/_snapshot/r/snap-1?wait_for_completion=true", `{"indices":"books"}`, 200, []string{`"state":"SUCCESS"`, `"indices":["books"]`}})
	inc1, incB1, tot1, totB1, _ := snapStatus(t, u, "r", "snap-1")
	if inc1 == 0 || inc1 != tot1 || incB1 != totB1 {
		t.Fatalf("first snapshot: incremental %d files/%d B, total %d files/%d B: want all uploaded", inc1, incB1, tot1, totB1)
	}
	do(t, u, call{"PUT", "/_snapshot/r/snap-1", "", 400, []string{`already exists`}})

	// 10 more documents, one updated, one deleted: the second snapshot
	// uploads only that.
	bulkDocs(t, u, "books", 2000, 2010)
	do(t, u, call{"PUT", "/books/_doc/d00007?refresh=true", `{"n":-7,"title":"changed"}`, 200, nil})
	do(t, u, call{"DELETE", "/books/_doc/d00008?refresh=true", "", 200, nil})
	do(t, u, call{"PUT", "/_snapshot/r/snap-2?wait_for_completion=false", `{"indices":["b*"]}`, 200, []string{`"accepted":true`}})
	waitSnapshot(t, u, "r", "snap-2", "SUCCESS")
	inc2, incB2, tot2, totB2, _ := snapStatus(t, u, "r", "snap-2")
	if inc2 > 2 || incB2*10 > totB2 || tot2 <= inc2 {
		t.Fatalf("second snapshot uploaded %d files/%d B of %d files/%d B: want only the 12 changed documents", inc2, incB2, tot2, totB2)
	}

	do(t, u, call{"DELETE", "/books", "", 200, nil})
	do(t, u, call{"POST", "/_snapshot/r/snap-1/_restore?wait_for_completion=true", "", 200, []string{`"indices":["books"]`}})
	do(t, u, call{"GET", "/books/_count", "", 200, []string{`"count":2000`}})
	do(t, u, call{"GET", "/books/_doc/d00042", "", 200, []string{`"n":42`}})
	do(t, u, call{"GET", "/books/_mapping", "", 200, []string{`"n":{"type":"integer"}`}})
	do(t, u, call{"GET", "/library/_count", "", 200, []string{`"count":2000`}})
	do(t, u, call{"POST", "/_snapshot/r/snap-1/_restore", "", 500, []string{`snapshot_restore_exception`, `open index with same name already exists`}})

	// Rename on restore, while the original is open.
	do(t, u, call{"POST", "/_snapshot/r/snap-2/_restore", `{"indices":"books","rename_pattern":"(.+)","rename_replacement":"restored_$1"}`, 200, []string{`"indices":["restored_books"]`}})
	do(t, u, call{"GET", "/restored_books/_count", "", 200, []string{`"count":2009`}})
	do(t, u, call{"GET", "/restored_books/_doc/d00007", "", 200, []string{`"n":-7`}})
	do(t, u, call{"GET", "/restored_books/_doc/d00008", "", 404, nil})
	do(t, u, call{"GET", "/restored_books/_doc/d02009", "", 200, nil})

	// Deleting the first snapshot keeps what the second needs.
	before := blobCount()
	do(t, u, call{"DELETE", "/_snapshot/r/snap-1", "", 200, nil})
	do(t, u, call{"GET", "/_snapshot/r/snap-1", "", 404, []string{`snapshot_missing_exception`}})
	do(t, u, call{"GET", "/_snapshot/r/_all", "", 200, []string{`"snapshot":"snap-2"`, `"total":1`}})
	do(t, u, call{"DELETE", "/restored_books", "", 200, nil})
	do(t, u, call{"POST", "/_snapshot/r/snap-2/_restore", `{"rename_pattern":"books","rename_replacement":"again"}`, 200, nil})
	do(t, u, call{"GET", "/again/_count", "", 200, []string{`"count":2009`}})
	if after := blobCount(); after != before {
		t.Fatalf("deleting snap-1 removed %d blobs snap-2 uses", before-after)
	}
	do(t, u, call{"DELETE", "/_snapshot/r/snap-2", "", 200, nil})
	if n := blobCount(); n != 0 {
		t.Fatalf("%d blobs left after deleting every snapshot", n)
	}
	do(t, u, call{"DELETE", "/_snapshot/r/snap-2", "", 404, nil})
}

func waitSnapshot(t *testing.T, base, repo, snap, state string) {
	t.Helper()
	testenv.EventuallyDetail(t, 60*time.Second, "snapshot "+snap+" "+state, func() (bool, string) {
		_, _, _, _, got := snapStatus(t, base, repo, snap)
		if got != state && got != "IN_PROGRESS" {
			t.Fatalf("snapshot %s is %s, want %s", snap, got, state)
		}
		return got == state, got
	})
}

func TestSnapshotFS(t *testing.T) {
	root := t.TempDir()
	_, ts := newTestNode(t, t.TempDir(), root, "")
	testSnapshotLifecycle(t, ts, `{"type":"fs","settings":{"location":"dep"}}`, func() int {
		ents, _ := os.ReadDir(filepath.Join(root, "dep", "blobs"))
		return len(ents)
	})
}

func TestSnapshotS3(t *testing.T) {
	st := s3test.Start(t)
	var logs syncBuffer
	s, err := NewServer(Config{Name: "n1", ClusterName: "dep1", DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() { ts.Close(); s.Close() })
	testSnapshotLifecycle(t, ts, st.RepoSettings("dep1"), func() int {
		n, _ := st.Count("dep1/blobs/")
		return n
	})
	if strings.Contains(logs.String(), st.SecretKey) || strings.Contains(logs.String(), st.AccessKey) {
		t.Fatalf("the node logged the repository's keys:\n%s", logs.String())
	}
	// A wrong secret fails verification with the cause, and says nothing
	// of the secret.
	bad := strings.Replace(st.RepoSettings("dep1"), st.SecretKey, "wrong-secret-value", 1)
	got := do(t, ts.URL, call{"PUT", "/_snapshot/bad", bad, 500, []string{`repository_verification_exception`}})
	if strings.Contains(fmt.Sprint(got), "wrong-secret-value") {
		t.Fatalf("verification error shows the secret: %v", got)
	}
}

// TestSnapshotStoreDown: the object store stops in the middle of a
// snapshot; the snapshot fails cleanly (FAILED, no manifest), and the
// next one, once the store is back, succeeds.
func TestSnapshotStoreDown(t *testing.T) {
	st := s3test.Start(t)
	s, ts := newTestNode(t, t.TempDir(), "", "")
	u := ts.URL
	do(t, u, call{"PUT", "/_snapshot/r", st.RepoSettings("dep2"), 200, nil})
	bulkDocs(t, u, "logs", 0, 500)
	var once sync.Once
	s.snaps.beforeUpload = func() { once.Do(st.Stop) }
	do(t, u, call{"PUT", "/_snapshot/r/snap-a?wait_for_completion=true", "", 500, []string{`snapshot_exception`, `[r:snap-a] failed`}})
	s.snaps.beforeUpload = nil
	st.Restart()
	do(t, u, call{"GET", "/_snapshot/r/snap-a", "", 200, []string{`"state":"FAILED"`, `"reason"`}})
	if n, _ := st.Count("dep2/snapshots/"); n != 0 {
		t.Fatalf("a failed snapshot left %d manifest(s)", n)
	}
	do(t, u, call{"PUT", "/_snapshot/r/snap-b?wait_for_completion=true", "", 200, []string{`"state":"SUCCESS"`}})
	do(t, u, call{"DELETE", "/logs", "", 200, nil})
	do(t, u, call{"POST", "/_snapshot/r/snap-b/_restore", "", 200, nil})
	do(t, u, call{"GET", "/logs/_count", "", 200, []string{`"count":500`}})
	do(t, u, call{"DELETE", "/_snapshot/r/snap-a", "", 200, nil})
	do(t, u, call{"GET", "/_snapshot/r/_all", "", 200, []string{`"total":1`}})
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FuzzChunkLine: any line either restores one write with an id (and a
// source object, unless a delete) or is refused; the writer's lines
// always parse back.
func FuzzChunkLine(f *testing.F) {
	for _, s := range []string{
		`{"_id":"a","_version":3,"_source":{"x":1}}`,
		`{"_id":"b","_version":2,"deleted":true}`,
		`{"_id":"c","_version":1,"_routing":"r","_source":{}}`,
		`{"_id":"","_version":1,"_source":{}}`, `{}`, `[`, `{"_id":"x","_version":1,"_source":"str"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := parseChunkLine(b)
		if err != nil {
			return
		}
		if op.ID == "" {
			t.Fatalf("accepted a write without id: %q", b)
		}
		if op.Kind != shard.OpDelete && (len(op.Source) == 0 || op.Version < 1) {
			t.Fatalf("accepted a document without source or version: %q", b)
		}
	})
}

// TestSnapshotReplicated: in a replication group, a repository put on
// any copy reaches every copy, a snapshot runs where it is asked, and a
// restore asked of a replica runs on the primary and reaches every
// in-sync copy.
func TestSnapshotReplicated(t *testing.T) {
	root := t.TempDir()
	g := newGroup(t, "a", "b")
	a, b := g.node("a"), g.node("b")
	for _, n := range []*replNode{a, b} {
		n.srv.cfg.SnapshotRoot = root
	}
	do(t, a.url, call{"PUT", "/logs", "", 200, nil})
	bulkDocs(t, a.url, "logs", 0, 50)
	do(t, b.url, call{"PUT", "/_snapshot/r", `{"type":"fs","settings":{"location":"dep"}}`, 200, nil})
	do(t, a.url, call{"GET", "/_snapshot/r", "", 200, []string{`"type":"fs"`}})
	do(t, b.url, call{"PUT", "/_snapshot/r/s1?wait_for_completion=true", "", 200, []string{`"SUCCESS"`}})
	do(t, b.url, call{"POST", "/_snapshot/r/s1/_restore", `{"rename_pattern":"logs","rename_replacement":"copy"}`, 200, []string{`"indices":["copy"]`}})
	for _, n := range []*replNode{a, b} {
		for _, id := range []string{"d00000", "d00049"} {
			if _, _, ok := localDoc(n, "copy", id); !ok {
				t.Fatalf("%s lacks restored document %s", n.id, id)
			}
		}
	}
	do(t, b.url, call{"DELETE", "/_snapshot/r", "", 200, nil})
	do(t, a.url, call{"GET", "/_snapshot/r", "", 404, nil})
}

// TestSnapshotInProgress: a running snapshot shows as IN_PROGRESS (in
// _current and _status) and cannot be deleted until it ends.
func TestSnapshotInProgress(t *testing.T) {
	s, ts := newTestNode(t, t.TempDir(), t.TempDir(), "")
	u := ts.URL
	bulkDocs(t, u, "logs", 0, 10)
	do(t, u, call{"PUT", "/_snapshot/r", `{"type":"fs","settings":{"location":"x"}}`, 200, nil})
	started, release := make(chan struct{}), make(chan struct{})
	s.snaps.beforeUpload = func() { close(started); <-release }
	do(t, u, call{"PUT", "/_snapshot/r/s1", "", 200, []string{`"accepted":true`}})
	<-started
	do(t, u, call{"GET", "/_snapshot/r/_current", "", 200, []string{`"snapshot":"s1"`, `"state":"IN_PROGRESS"`}})
	do(t, u, call{"GET", "/_snapshot/r/s1/_status", "", 200, []string{`"state":"IN_PROGRESS"`, `"stage":"STARTED"`}})
	do(t, u, call{"PUT", "/_snapshot/r/s1", "", 400, []string{`already in-progress`}})
	do(t, u, call{"DELETE", "/_snapshot/r/s1", "", 409, []string{`concurrent_snapshot_execution_exception`}})
	close(release)
	waitSnapshot(t, u, "r", "s1", "SUCCESS")
	do(t, u, call{"GET", "/_snapshot/r/_current", "", 200, []string{`"total":0`}})
	do(t, u, call{"DELETE", "/_snapshot/r/s1", "", 200, nil})
}

// TestPruneFailed: a node remembers the newest maxFailed failed
// snapshots of a repository, whatever the other repositories hold.
func TestPruneFailed(t *testing.T) {
	sn := newSnapshots()
	defer sn.close()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range maxFailed + 5 {
		name := fmt.Sprintf("s%02d", i)
		sn.local["r/"+name] = &manifest{Snapshot: name, State: stateFailed, StartTime: start.Add(time.Duration(i) * time.Minute)}
	}
	sn.local["r/running"] = &manifest{Snapshot: "running", State: stateInProgress, StartTime: start}
	sn.local["other/s00"] = &manifest{Snapshot: "s00", State: stateFailed, StartTime: start}
	sn.pruneFailed("r")
	for _, tc := range []struct {
		key  string
		kept bool
	}{{"r/s00", false}, {"r/s04", false}, {"r/s05", true}, {fmt.Sprintf("r/s%02d", maxFailed+4), true}, {"r/running", true}, {"other/s00", true}} {
		if _, ok := sn.local[tc.key]; ok != tc.kept {
			t.Errorf("%s kept = %v, want %v", tc.key, ok, tc.kept)
		}
	}
	if n := len(sn.localList("r")); n != maxFailed+1 {
		t.Fatalf("repository r holds %d local snapshots, want %d failed + 1 running", n, maxFailed)
	}
}
