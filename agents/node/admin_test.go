package node

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAdminAPIs drives aliases, index templates, _stats, _nodes, the
// _cat tables and health waits as a client would, errors included.
func TestAdminAPIs(t *testing.T) {
	dir := t.TempDir()
	_, ts := newTestNode(t, dir, t.TempDir(), "")
	steps := []struct {
		name string
		call call
	}{
		// Templates apply to indices created on first write.
		{"put template", call{"PUT", "/_index_template/logs", `{"index_patterns":["logs-*"],"priority":5,"template":{"settings":{"number_of_replicas":0},"mappings":{"properties":{"level":{"type":"keyword"},"at":{"type":"date"}}},"aliases":{"all-logs":{}}}}`, 200, []string{`"acknowledged":true`}}},
		{"template conflict", call{"PUT", "/_index_template/logs2", `{"index_patterns":["logs-app-*"],"priority":5}`, 400, []string{`"type":"illegal_argument_exception"`, `same priority [5]`}}},
		{"template without patterns", call{"PUT", "/_index_template/bad", `{"template":{}}`, 400, []string{`"type":"action_request_validation_exception"`}}},
		{"get template", call{"GET", "/_index_template/logs", "", 200, []string{`"name":"logs"`, `"index_patterns":["logs-*"]`, `"priority":5`}}},
		{"missing template", call{"GET", "/_index_template/nope", "", 404, []string{`"type":"resource_not_found_exception"`}}},
		{"head template", call{"HEAD", "/_index_template/logs", "", 200, nil}},
		{"first write creates from the template", call{"POST", "/logs-2026/_doc/1?refresh=true", `{"level":"error","at":"2026-12-01T10:00:00Z","msg":"disk full"}`, 201, []string{`"_index":"logs-2026"`}}},
		{"the template's mapping", call{"GET", "/logs-2026/_mapping", "", 200, []string{`"level":{"type":"keyword"}`, `"at":{"type":"date"}`}}},
		{"the template's settings", call{"GET", "/logs-2026/_settings", "", 200, []string{`"number_of_replicas":"0"`}}},
		{"the template's alias", call{"GET", "/logs-2026", "", 200, []string{`"aliases":{"all-logs":{}}`}}},
		{"a value contradicting the template's mapping", call{"POST", "/logs-2026/_doc", `{"at":"not a date"}`, 400, []string{`"type":"mapper_parsing_exception"`}}},
		{"request mappings win over the template's", call{"PUT", "/logs-explicit", `{"mappings":{"properties":{"level":{"type":"text"}}}}`, 200, nil}},
		{"merged mapping", call{"GET", "/logs-explicit/_mapping", "", 200, []string{`"level":{"type":"text"`, `"at":{"type":"date"}`}}},

		// Aliases.
		{"second index", call{"PUT", "/logs-2025", `{"settings":{"number_of_replicas":0}}`, 200, nil}},
		{"doc in 2025", call{"POST", "/logs-2025/_doc/1?refresh=true", `{"level":"info","at":"2025-12-01T10:00:00Z"}`, 201, nil}},
		{"aliases actions", call{"POST", "/_aliases", `{"actions":[{"add":{"index":"logs-2025","alias":"current","is_write_index":false}},{"add":{"index":"logs-2026","alias":"current","is_write_index":true}},{"add":{"index":"logs-*","alias":"errors","filter":{"term":{"level":"error"}}}}]}`, 200, []string{`"acknowledged":true`}}},
		{"atomic refusal", call{"POST", "/_aliases", `{"actions":[{"add":{"index":"logs-2025","alias":"x"}},{"add":{"index":"nope","alias":"y"}}]}`, 404, []string{`"type":"index_not_found_exception"`}}},
		{"nothing of the refusal kept", call{"GET", "/_alias/x", "", 404, []string{`"error":"alias [x] missing"`, `"status":404`}}},
		{"search through an alias", call{"GET", "/current/_search", "", 200, []string{`"total":{"value":2`}}},
		{"search through a filtered alias", call{"GET", "/errors/_search", "", 200, []string{`"total":{"value":1`, `"level":"error"`}}},
		{"count through a filtered alias", call{"GET", "/errors/_count", "", 200, []string{`"count":1`}}},
		{"write through an alias goes to its write index", call{"PUT", "/current/_doc/2?refresh=true", `{"level":"warn","at":"2026-12-02T00:00:00Z"}`, 201, []string{`"_index":"logs-2026"`}}},
		{"bulk through an alias", call{"POST", "/_bulk", "{\"index\":{\"_index\":\"current\",\"_id\":\"b1\"}}\n{\"level\":\"info\"}\n{\"update\":{\"_index\":\"current\",\"_id\":\"2\"}}\n{\"doc\":{\"level\":\"debug\"}}\n", 200, []string{`"errors":false`, `{"index":{"_id":"b1","_index":"logs-2026"`, `{"update":{"_id":"2","_index":"logs-2026"`}}},
		{"update through an alias", call{"POST", "/current/_update/2", `{"doc":{"level":"warn"}}`, 200, []string{`"_index":"logs-2026"`, `"_version":3`}}},
		{"delete the bulk doc", call{"DELETE", "/logs-2026/_doc/b1?refresh=true", "", 200, nil}},
		{"write through an alias without a write index", call{"PUT", "/errors/_doc/3", `{"level":"warn"}`, 400, []string{`no write index is defined for alias [errors]`}}},
		{"get aliases of an index", call{"GET", "/logs-2025/_alias", "", 200, []string{`"logs-2025":{"aliases":{`, `"current":{"is_write_index":false}`}}},
		{"get an alias everywhere", call{"GET", "/_alias/errors", "", 200, []string{`"logs-2025":{"aliases":{"errors":{"filter":{"term":{"level":"error"}}}}}`}}},
		{"head alias", call{"HEAD", "/_alias/current", "", 200, nil}},
		{"head missing alias", call{"HEAD", "/_alias/nope", "", 404, nil}},
		{"put alias", call{"PUT", "/logs-2025/_alias/old", "", 200, nil}},
		{"alias named as an index", call{"PUT", "/logs-2025/_alias/logs-2026", "", 400, []string{`"type":"invalid_alias_name_exception"`}}},
		{"index named as an alias", call{"PUT", "/old", "", 400, []string{`"type":"invalid_index_name_exception"`}}},
		{"deleting an index by its alias", call{"DELETE", "/old", "", 400, []string{`matches an alias`}}},
		{"delete alias", call{"DELETE", "/logs-2025/_alias/old", "", 200, nil}},
		{"delete it again", call{"DELETE", "/logs-2025/_alias/old", "", 404, []string{`"type":"aliases_not_found_exception"`}}},
		{"exclusion in an expression", call{"GET", "/logs-*,-logs-2025/_count", "", 200, []string{`"count":2`}}},
		{"ignore_unavailable", call{"GET", "/logs-2025,nope/_count?ignore_unavailable=true", "", 200, []string{`"count":1`}}},
		{"missing without ignore_unavailable", call{"GET", "/logs-2025,nope/_count", "", 404, []string{`"type":"index_not_found_exception"`}}},
		{"allow_no_indices=false", call{"GET", "/zzz*/_search?allow_no_indices=false", "", 404, []string{`"type":"index_not_found_exception"`}}},

		// Stats, nodes, health.
		{"stats", call{"GET", "/_stats", "", 200, []string{`"_all":{"primaries":{"docs":{"count":3`, `"logs-2026":{`}}},
		{"index stats", call{"GET", "/logs-2025/_stats", "", 200, []string{`"_all":{"primaries":{"docs":{"count":1`}}},
		{"nodes", call{"GET", "/_nodes", "", 200, []string{`"_nodes":{"failed":0,"successful":1,"total":1}`, `"name":"n1"`, `"publish_address":"`}}},
		{"nodes http", call{"GET", "/_nodes/http", "", 200, []string{`"publish_address":"`}}},
		{"health reached", call{"GET", "/_cluster/health?wait_for_status=green&timeout=1s", "", 200, []string{`"timed_out":false`}}},
		{"health bad status", call{"GET", "/_cluster/health?wait_for_status=blue", "", 400, []string{`unknown wait_for_status [blue]`}}},
		{"health bad timeout", call{"GET", "/_cluster/health?timeout=soon", "", 400, []string{`[timeout]`}}},

		// Templates and aliases go with their indices.
		{"delete template", call{"DELETE", "/_index_template/logs", "", 200, nil}},
		{"delete index", call{"DELETE", "/logs-2026", "", 200, nil}},
		{"its aliases are gone", call{"GET", "/_alias/current", "", 200, []string{`"logs-2025"`}}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) { do(t, ts.URL, st.call) })
	}
}

func TestHealthWaitTimesOut(t *testing.T) {
	_, ts := newTestNode(t, t.TempDir(), t.TempDir(), "")
	do(t, ts.URL, call{"PUT", "/replicated", `{"settings":{"number_of_replicas":1}}`, 200, nil})
	start := time.Now()
	do(t, ts.URL, call{"GET", "/_cluster/health?wait_for_status=green&timeout=300ms", "", 408, []string{`"timed_out":true`, `"status":"yellow"`}})
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("answered after %s: it did not wait for its timeout", waited)
	}
}

func TestCatTables(t *testing.T) {
	_, ts := newTestNode(t, t.TempDir(), t.TempDir(), "")
	do(t, ts.URL, call{"PUT", "/books", `{"settings":{"number_of_replicas":0},"aliases":{"library":{}}}`, 200, nil})
	do(t, ts.URL, call{"POST", "/books/_bulk?refresh=true", "{\"index\":{\"_id\":\"1\"}}\n{\"t\":\"a\"}\n{\"index\":{\"_id\":\"2\"}}\n{\"t\":\"b\"}\n", 200, nil})
	do(t, ts.URL, call{"PUT", "/_index_template/t1", `{"index_patterns":["x-*"],"priority":3}`, 200, nil})
	tests := []struct {
		path  string
		code  int
		lines []string // substrings, each expected in the text
	}{
		{"/_cat/indices?v&h=health,index,docs.count", 200, []string{"health index docs.count", "green  books          2"}},
		{"/_cat/indices?format=json&h=index,dc", 200, []string{`[{"dc":"2","index":"books"}]`}},
		{"/_cat/count/books?h=count", 200, []string{"2"}},
		{"/_cat/health?h=cluster,status,node.total", 200, []string{"dep1 green 1"}},
		{"/_cat/nodes?h=name,master", 200, []string{"n1 *"}},
		{"/_cat/aliases?v", 200, []string{"alias   index filter routing.index routing.search is_write_index", "library books -      -             -              -"}},
		{"/_cat/templates?h=name,index_patterns,order", 200, []string{"t1 [x-*] 3"}},
		{"/_cat/indices?h=nope", 400, []string{`unknown column [nope]`}},
		{"/_cat/indices?format=yaml", 400, []string{`format [yaml]`}},
		{"/_cat", 200, []string{"/_cat/indices"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(ts.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b := new(strings.Builder)
			_, _ = io.Copy(b, resp.Body)
			if resp.StatusCode != tt.code {
				t.Fatalf("%s = %d: %s", tt.path, resp.StatusCode, b)
			}
			if resp.Header.Get("X-Elastic-Product") != "Elasticsearch" {
				t.Fatalf("no X-Elastic-Product header on %s", tt.path)
			}
			for _, l := range tt.lines {
				if !strings.Contains(b.String(), l) {
					t.Fatalf("%s answered\n%s\nwant %q in it", tt.path, b, l)
				}
			}
		})
	}
}

// TestMetadataSurvivesRestart: aliases and templates are on disk.
func TestMetadataSurvivesRestart(t *testing.T) {
	dir, snaps := t.TempDir(), t.TempDir()
	s, ts := newTestNode(t, dir, snaps, "")
	do(t, ts.URL, call{"PUT", "/_index_template/t", `{"index_patterns":["m-*"],"template":{"aliases":{"all-m":{}}}}`, 200, nil})
	do(t, ts.URL, call{"PUT", "/m-1", "", 200, nil})
	ts.Close()
	s.Close()
	s2, err := NewServer(s.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ts2 := httptest.NewServer(s2)
	defer ts2.Close()
	do(t, ts2.URL, call{"GET", "/_alias/all-m", "", 200, []string{`"m-1":{"aliases":{"all-m":{}}}`}})
	do(t, ts2.URL, call{"GET", "/_index_template/t", "", 200, []string{`"index_patterns":["m-*"]`}})
}
