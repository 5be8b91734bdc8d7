package node

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newTestNode(t *testing.T, dataDir, snapRoot string, kind string) (*Server, *httptest.Server) {
	t.Helper()
	s, err := NewServer(Config{Name: "n1", ClusterName: "dep1", Version: "8.18.0", Kind: kind, DataDir: dataDir, SnapshotRoot: snapRoot,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return s, ts
}

type call struct {
	method, path, body string
	wantCode           int
	// want are substrings of the compacted JSON answer.
	want []string
}

func do(t testing.TB, base string, c call) map[string]any {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(c.path, "_bulk") {
		req.Header.Set("Content-Type", "application/x-ndjson")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != c.wantCode {
		t.Fatalf("%s %s = %d, want %d: %s", c.method, c.path, resp.StatusCode, c.wantCode, b)
	}
	for _, w := range c.want {
		if !strings.Contains(string(b), w) {
			t.Fatalf("%s %s answered %s, want it to contain %s", c.method, c.path, b, w)
		}
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func TestAPI(t *testing.T) {
	_, ts := newTestNode(t, t.TempDir(), t.TempDir(), "")
	steps := []struct {
		name string
		call call
	}{
		{"root", call{"GET", "/", "", 200, []string{`"name":"n1"`, `"cluster_name":"dep1"`, `"number":"8.18.0"`}}},
		{"health", call{"GET", HealthPath, "", 200, []string{`"status":"green"`}}},
		{"cluster health", call{"GET", "/_cluster/health", "", 200, []string{`"status":"green"`, `"cluster_name":"dep1"`}}},
		{"index doc", call{"PUT", "/books/_doc/1", `{"title":"Dune","year":1965,"tags":["sf","classic"]}`, 201, []string{`"result":"created"`}}},
		{"reindex doc", call{"PUT", "/books/_doc/1", `{"title":"Dune","year":1965,"tags":["sf","classic"]}`, 200, []string{`"result":"updated"`}}},
		{"auto id", call{"POST", "/books/_doc", `{"title":"Emma","year":1815,"author":{"name":"Austen"}}`, 201, []string{`"_id":"`}}},
		{"get", call{"GET", "/books/_doc/1", "", 200, []string{`"found":true`, `"title":"Dune"`}}},
		{"get missing doc", call{"GET", "/books/_doc/nope", "", 404, []string{`"found":false`}}},
		{"get missing index", call{"GET", "/nope/_doc/1", "", 404, []string{`"type":"index_not_found_exception"`, `"status":404`, `"root_cause"`}}},
		{"create conflict", call{"PUT", "/books/_create/1", `{"x":1}`, 409, []string{`version_conflict_engine_exception`}}},
		{"bad index name", call{"PUT", "/Books/_doc/1", `{"x":1}`, 400, []string{`invalid_index_name_exception`}}},
		{"not an object", call{"PUT", "/books/_doc/2", `[1,2]`, 400, []string{`mapper_parsing_exception`}}},
		{"bulk", call{"POST", "/_bulk", "{\"index\":{\"_index\":\"books\",\"_id\":\"3\"}}\n{\"title\":\"Ubik\",\"year\":1969}\n{\"create\":{\"_index\":\"books\",\"_id\":\"1\"}}\n{\"title\":\"x\"}\n{\"delete\":{\"_index\":\"books\",\"_id\":\"nope\"}}\n", 200,
			[]string{`"errors":true`, `"status":201`, `"status":409`, `"status":404`}}},
		{"refresh", call{"POST", "/books/_refresh", "", 200, []string{`"successful":1`}}},
		{"malformed bulk", call{"POST", "/_bulk", "{\"frobnicate\":{}}\n", 400, []string{`illegal_argument_exception`}}},
		{"count", call{"GET", "/books/_count", "", 200, []string{`"count":3`}}},
		{"match_all size", call{"POST", "/books/_search", `{"query":{"match_all":{}},"size":2}`, 200, []string{`"value":3`}}},
		{"term number", call{"POST", "/books/_search", `{"query":{"term":{"year":1965}}}`, 200, []string{`"value":1`, `"_id":"1"`}}},
		{"term keyword", call{"POST", "/books/_search", `{"query":{"term":{"title.keyword":{"value":"Ubik"}}}}`, 200, []string{`"value":1`, `"_id":"3"`}}},
		{"term array", call{"POST", "/books/_search", `{"query":{"term":{"tags":"sf"}}}`, 200, []string{`"value":1`}}},
		{"term nested", call{"POST", "/books/_search", `{"query":{"term":{"author.name":"austen"}}}`, 200, []string{`"value":1`}}},
		{"match", call{"GET", "/books/_search", `{"query":{"match":{"title":"dune emma"}}}`, 200, []string{`"value":2`}}},
		{"bool", call{"POST", "/books/_search", `{"query":{"bool":{"must":[{"match_all":{}}],"must_not":{"term":{"year":1965}}}}}`, 200, []string{`"value":2`}}},
		{"q string", call{"GET", "/books/_search?q=title:ubik", "", 200, []string{`"value":1`}}},
		{"size 0", call{"GET", "/books/_search?size=0", "", 200, []string{`"value":3`, `"hits":[]`}}},
		{"count with query", call{"POST", "/books/_count", `{"query":{"term":{"year":1969}}}`, 200, []string{`"count":1`}}},
		{"unknown query", call{"POST", "/books/_search", `{"query":{"frobnicate":{"title":"x"}}}`, 400, []string{`parsing_exception`}}},
		{"search all", call{"GET", "/_search", "", 200, []string{`"value":3`}}},
		{"cat", call{"GET", "/_cat/indices?format=json", "", 200, []string{`"index":"books"`, `"docs.count":"3"`}}},
		{"delete doc", call{"DELETE", "/books/_doc/3", "", 200, []string{`"result":"deleted"`}}},
		{"delete missing doc", call{"DELETE", "/books/_doc/3", "", 404, []string{`"result":"not_found"`}}},
		{"create index", call{"PUT", "/empty", "", 200, []string{`"acknowledged":true`}}},
		{"create index again", call{"PUT", "/empty", "", 400, []string{`resource_already_exists_exception`}}},
		{"delete index", call{"DELETE", "/empty", "", 200, []string{`"acknowledged":true`}}},
		{"delete missing index", call{"DELETE", "/empty", "", 404, []string{`index_not_found_exception`}}},
		{"wrong method", call{"PATCH", "/", "", 405, []string{`method_not_allowed`}}},
		{"kibana api on es", call{"GET", "/api/status", "", 400, []string{`no handler found for uri [/api/status] and method [GET]`}}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) { do(t, ts.URL, st.call) })
	}
}

func TestKibanaKind(t *testing.T) {
	_, ts := newTestNode(t, t.TempDir(), "", KindKibana)
	do(t, ts.URL, call{"GET", "/api/status", "", 200, []string{`"level":"available"`, `"number":"8.18.0"`}})
	do(t, ts.URL, call{"GET", HealthPath, "", 200, []string{`"kind":"kibana"`}})
	do(t, ts.URL, call{"GET", "/books/_search", "", 404, []string{`kibana node`}})
	if _, err := NewServer(Config{Kind: "logstash", DataDir: t.TempDir()}); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

// TestDataSurvivesRestart: documents persist in the data directory.
func TestDataSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := NewServer(Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	do(t, ts.URL, call{"PUT", "/a/_doc/1", `{"v":1}`, 201, nil})
	ts.Close()
	s.Close()
	_, ts2 := newTestNode(t, dir, "", "")
	do(t, ts2.URL, call{"GET", "/a/_doc/1", "", 200, []string{`"v":1`}})
}

// TestSnapshotRestore: the constructor's migration calls, from an old
// node to a new one sharing the repository directory; restore refuses
// an open index of the same name unless the platform asks to replace it
// (paddock_replace), and leaves the other indices.
func TestSnapshotRestore(t *testing.T) {
	snaps := t.TempDir()
	_, old := newTestNode(t, t.TempDir(), snaps, "")
	_, fresh := newTestNode(t, t.TempDir(), snaps, "")
	repo := `{"type":"fs","settings":{"location":"/snapshots/dep1"}}`
	do(t, old.URL, call{"PUT", "/books/_doc/1", `{"t":"old"}`, 201, nil})
	do(t, old.URL, call{"PUT", "/books/_doc/2", `{"t":"two"}`, 201, nil})
	do(t, old.URL, call{"PUT", "/logs/_doc/1", `{"m":"x"}`, 201, nil})
	do(t, old.URL, call{"PUT", "/_snapshot/found-snapshots", repo, 200, []string{`"acknowledged":true`}})
	do(t, old.URL, call{"PUT", "/_snapshot/found-snapshots/snap-1?wait_for_completion=true", "", 200,
		[]string{`"state":"SUCCESS"`, `"indices":["books","logs"]`}})
	if _, err := os.Stat(filepath.Join(snaps, "dep1", "snapshots", "snap-1.json")); err != nil {
		t.Fatalf("snapshot not under the repository location: %v", err)
	}
	do(t, old.URL, call{"PUT", "/_snapshot/found-snapshots/snap-1", "", 400, []string{`already exists`}})
	do(t, old.URL, call{"GET", "/_snapshot/found-snapshots/_all", "", 200, []string{`"snapshot":"snap-1"`}})

	// The new node has a conflicting document and an unrelated index.
	do(t, fresh.URL, call{"PUT", "/books/_doc/1", `{"t":"stale"}`, 201, nil})
	do(t, fresh.URL, call{"PUT", "/books/_doc/9", `{"t":"gone after restore"}`, 201, nil})
	do(t, fresh.URL, call{"PUT", "/other/_doc/1", `{"keep":true}`, 201, nil})
	do(t, fresh.URL, call{"POST", "/_snapshot/found-snapshots/snap-1/_restore", "", 404, []string{`repository_missing_exception`}})
	do(t, fresh.URL, call{"PUT", "/_snapshot/found-snapshots", repo, 200, nil})
	do(t, fresh.URL, call{"POST", "/_snapshot/found-snapshots/snap-1/_restore", "", 500, []string{`snapshot_restore_exception`, `cannot restore index [books] because an open index with same name already exists`}})
	do(t, fresh.URL, call{"GET", "/logs/_count", "", 404, nil})
	do(t, fresh.URL, call{"POST", "/_snapshot/found-snapshots/snap-1/_restore?paddock_replace=true", "", 200, []string{`"indices":["books","logs"]`}})
	do(t, fresh.URL, call{"GET", "/books/_doc/1", "", 200, []string{`"t":"old"`}})
	do(t, fresh.URL, call{"GET", "/books/_doc/9", "", 404, nil})
	do(t, fresh.URL, call{"GET", "/books/_count", "", 200, []string{`"count":2`}})
	do(t, fresh.URL, call{"GET", "/logs/_count", "", 200, []string{`"count":1`}})
	do(t, fresh.URL, call{"GET", "/other/_doc/1", "", 200, []string{`"keep":true`}})
	do(t, fresh.URL, call{"POST", "/_snapshot/found-snapshots/nope/_restore", "", 404, []string{`snapshot_missing_exception`}})
	do(t, fresh.URL, call{"POST", "/_snapshot/found-snapshots/snap-1/_restore?paddock_replace=true", `{"indices":"logs"}`, 200, []string{`"indices":["logs"]`}})
}

func TestRepositoryLocation(t *testing.T) {
	root := t.TempDir()
	_, ts := newTestNode(t, t.TempDir(), root, "")
	for _, tc := range []struct {
		name     string
		body     string
		wantCode int
		want     string
	}{
		{"container path", `{"type":"fs","settings":{"location":"/snapshots/a"}}`, 200, ""},
		{"relative", `{"type":"fs","settings":{"location":"b"}}`, 200, ""},
		{"absolute under root", `{"type":"fs","settings":{"location":"` + filepath.Join(root, "c") + `"}}`, 200, ""},
		{"outside root", `{"type":"fs","settings":{"location":"/etc"}}`, 400, "path.repo"},
		{"escape", `{"type":"fs","settings":{"location":"/snapshots/../../etc"}}`, 200, ""},
		{"no location", `{"type":"fs","settings":{}}`, 400, "location"},
		{"other type", `{"type":"hdfs","settings":{"path":"x"}}`, 500, "does not exist"},
		{"s3 without endpoint", `{"type":"s3","settings":{"bucket":"x"}}`, 400, "settings.endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			do(t, ts.URL, call{"PUT", "/_snapshot/r", tc.body, tc.wantCode, []string{tc.want}})
		})
	}
	// "escape" was cleaned into the root, never outside it.
	if _, err := os.Stat(filepath.Join(root, "etc")); err != nil {
		t.Fatalf("cleaned location not created under the root: %v", err)
	}
}
