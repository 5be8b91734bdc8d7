package node

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"paddock/engine/testenv"
)

// step is one request of a conformance sequence and what Elasticsearch
// answers to it.
type step struct {
	name string
	call call
}

func runSteps(t *testing.T, base string, steps []step) {
	t.Helper()
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) { do(t, base, st.call) })
	}
}

func TestConformanceIndices(t *testing.T) {
	_, ts := newTestNode(t, t.TempDir(), "", "")
	runSteps(t, ts.URL, []step{
		{"create with mappings and settings", call{"PUT", "/logs", `{"settings":{"number_of_shards":1,"number_of_replicas":0,"refresh_interval":"500ms"},
			"mappings":{"properties":{"msg":{"type":"text","analyzer":"english"},"level":{"type":"keyword"},"at":{"type":"date"}}}}`,
			200, []string{`"acknowledged":true`, `"shards_acknowledged":true`, `"index":"logs"`}}},
		{"create again", call{"PUT", "/logs", "", 400, []string{`"type":"resource_already_exists_exception"`, `"index":"logs"`}}},
		{"create with a bad mapping", call{"PUT", "/bad", `{"mappings":{"properties":{"x":{"type":"frob"}}}}`, 400,
			[]string{`"type":"mapper_parsing_exception"`, `No handler for type [frob] declared on field [x]`}}},
		{"create with a bad setting", call{"PUT", "/bad", `{"settings":{"index":{"refresh_interval":"soon"}}}`, 400, []string{`refresh_interval`}}},
		{"create with an unknown key", call{"PUT", "/bad", `{"mapping":{}}`, 400, []string{`unknown key [mapping] for create index`}}},
		{"create with malformed JSON", call{"PUT", "/bad", `{"settings":`, 400, []string{`parse_exception`}}},
		{"bad name", call{"PUT", "/Bad", "", 400, []string{`invalid_index_name_exception`, `must be lowercase`}}},
		{"nothing half-created", call{"GET", "/bad", "", 404, []string{`index_not_found_exception`}}},
		{"exists", call{"HEAD", "/logs", "", 200, nil}},
		{"does not exist", call{"HEAD", "/nope", "", 404, nil}},
		{"get", call{"GET", "/logs", "", 200, []string{`"logs":{`, `"analyzer":"english"`, `"number_of_replicas":"0"`, `"refresh_interval":"500ms"`}}},
		{"get mapping", call{"GET", "/logs/_mapping", "", 200, []string{`{"logs":{"mappings":{"properties":{`, `"level":{"type":"keyword"}`}}},
		{"put mapping adds a field", call{"PUT", "/logs/_mapping", `{"properties":{"host":{"type":"keyword"}}}`, 200, []string{`"acknowledged":true`}}},
		{"put mapping cannot change a type", call{"PUT", "/logs/_mapping", `{"properties":{"level":{"type":"long"}}}`, 400,
			[]string{`"type":"illegal_argument_exception"`, `mapper [level] cannot be changed from type [keyword] to [long]`}}},
		{"mapping has the new field", call{"GET", "/logs/_mapping", "", 200, []string{`"host":{"type":"keyword"}`}}},
		{"get settings", call{"GET", "/logs/_settings", "", 200, []string{`"number_of_shards":"1"`, `"provided_name":"logs"`}}},
		{"put settings", call{"PUT", "/logs/_settings", `{"index":{"number_of_replicas":1,"refresh_interval":"1s"}}`, 200, []string{`"acknowledged":true`}}},
		{"settings changed", call{"GET", "/logs/_settings", "", 200, []string{`"number_of_replicas":"1"`, `"refresh_interval":"1s"`}}},
		{"shards are not dynamic", call{"PUT", "/logs/_settings", `{"index":{"number_of_shards":2}}`, 400, []string{`number_of_shards`}}},
		{"one node, one replica wanted: yellow", call{"GET", "/_cluster/health", "", 200, []string{`"status":"yellow"`, `"unassigned_shards":1`}}},
		{"no replicas: green", call{"PUT", "/logs/_settings", `{"number_of_replicas":0}`, 200, nil}},
		{"green", call{"GET", "/_cluster/health", "", 200, []string{`"status":"green"`, `"active_primary_shards":1`}}},
		{"refresh", call{"POST", "/logs/_refresh", "", 200, []string{`"failed":0`}}},
		{"refresh missing", call{"POST", "/nope/_refresh", "", 404, []string{`index_not_found_exception`}}},
		{"delete", call{"DELETE", "/logs", "", 200, []string{`"acknowledged":true`}}},
		{"delete missing", call{"DELETE", "/logs", "", 404, []string{`"type":"index_not_found_exception"`, `"resource.id":"logs"`}}},
	})
}

func TestConformanceDocuments(t *testing.T) {
	_, ts := newTestNode(t, t.TempDir(), "", "")
	do(t, ts.URL, call{"PUT", "/books", `{"settings":{"refresh_interval":"-1"},"mappings":{"properties":{"year":{"type":"integer"},"title":{"type":"text"}}}}`, 200, nil})
	runSteps(t, ts.URL, []step{
		{"index", call{"PUT", "/books/_doc/1", `{"title":"Dune","year":1965}`, 201,
			[]string{`"result":"created"`, `"_version":1`, `"_seq_no":0`, `"_primary_term":1`, `"_shards":{"failed":0,"successful":1,"total":1}`}}},
		{"reindex", call{"PUT", "/books/_doc/1", `{"title":"Dune","year":1965}`, 200, []string{`"result":"updated"`, `"_version":2`, `"_seq_no":1`}}},
		{"get is real time", call{"GET", "/books/_doc/1", "", 200, []string{`"found":true`, `"_version":2`, `"_seq_no":1`, `"_source":{"title":"Dune","year":1965}`}}},
		{"search is not (refresh off)", call{"GET", "/books/_search", "", 200, []string{`"value":0`}}},
		{"refresh=true", call{"PUT", "/books/_doc/2?refresh=true", `{"title":"Emma","year":1815}`, 201, []string{`"forced_refresh":true`}}},
		{"now searchable", call{"GET", "/books/_count", "", 200, []string{`"count":2`}}},
		{"refresh=wait_for", call{"PUT", "/books/_doc/3?refresh=wait_for", `{"title":"Ubik","year":1969}`, 201, nil}},
		{"searchable after wait_for", call{"GET", "/books/_count", "", 200, []string{`"count":3`}}},
		{"bad refresh value", call{"PUT", "/books/_doc/3?refresh=maybe", `{}`, 400, []string{`Unknown value for refresh: [maybe]`}}},
		{"auto id", call{"POST", "/books/_doc", `{"title":"Solaris"}`, 201, []string{`"result":"created"`}}},
		{"op_type create conflict", call{"PUT", "/books/_doc/1?op_type=create", `{"title":"x"}`, 409,
			[]string{`"type":"version_conflict_engine_exception"`, `[1]: version conflict, document already exists (current version [2])`, `"index":"books"`}}},
		{"_create conflict", call{"PUT", "/books/_create/1", `{"title":"x"}`, 409, []string{`version_conflict_engine_exception`}}},
		{"_create", call{"PUT", "/books/_create/9", `{"title":"Nine"}`, 201, []string{`"result":"created"`}}},
		{"if_seq_no matches", call{"PUT", "/books/_doc/1?if_seq_no=1&if_primary_term=1", `{"title":"Dune","year":1966}`, 200, []string{`"_version":3`}}},
		{"if_seq_no stale", call{"PUT", "/books/_doc/1?if_seq_no=1&if_primary_term=1", `{"title":"x"}`, 409,
			[]string{`required seqNo [1], primary term [1]. current document has seqNo [`}}},
		{"if_seq_no alone", call{"PUT", "/books/_doc/1?if_seq_no=1", `{"title":"x"}`, 400, []string{`action_request_validation_exception`}}},
		{"external version", call{"PUT", "/books/_doc/5?version=10&version_type=external", `{"title":"Five"}`, 201, []string{`"_version":10`}}},
		{"external version not higher", call{"PUT", "/books/_doc/5?version=10&version_type=external", `{"title":"Five"}`, 409,
			[]string{`current version [10] is higher or equal to the one provided [10]`}}},
		{"external_gte equal", call{"PUT", "/books/_doc/5?version=10&version_type=external_gte", `{"title":"Five"}`, 200, []string{`"_version":10`}}},
		{"internal version refused", call{"PUT", "/books/_doc/5?version=3", `{"title":"Five"}`, 400, []string{`internal versioning can not be used`}}},
		{"contradicting value", call{"PUT", "/books/_doc/6", `{"title":"Six","year":"long ago"}`, 400,
			[]string{`"type":"mapper_parsing_exception"`, `failed to parse field [year] of type [integer] in document with id '6'`}}},
		{"nothing stored", call{"GET", "/books/_doc/6", "", 404, []string{`"found":false`}}},
		{"not an object", call{"PUT", "/books/_doc/6", `["a"]`, 400, []string{`mapper_parsing_exception`}}},
		{"malformed JSON", call{"PUT", "/books/_doc/6", `{"title":`, 400, []string{`mapper_parsing_exception`}}},
		{"deep nesting", call{"PUT", "/books/_doc/6", strings.Repeat(`{"a":`, 30) + "1" + strings.Repeat("}", 30), 400, []string{`Limit of mapping depth [20]`}}},
		{"very deep nesting", call{"PUT", "/books/_doc/6", strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000), 400, []string{`mapper_parsing_exception`}}},
		{"routing kept", call{"PUT", "/books/_doc/7?routing=user1", `{"title":"Seven"}`, 201, nil}},
		{"routing shown", call{"GET", "/books/_doc/7", "", 200, []string{`"_routing":"user1"`}}},
		{"head", call{"HEAD", "/books/_doc/1", "", 200, nil}},
		{"head missing", call{"HEAD", "/books/_doc/404", "", 404, nil}},
		{"_source", call{"GET", "/books/_source/1", "", 200, []string{`{"title":"Dune","year":1966}`}}},
		{"_source filtered", call{"GET", "/books/_doc/1?_source_includes=year", "", 200, []string{`"_source":{"year":1966}`}}},
		{"_source missing", call{"GET", "/books/_source/404", "", 404, []string{`resource_not_found_exception`}}},
		{"get missing", call{"GET", "/books/_doc/404", "", 404, []string{`{"_id":"404","_index":"books","found":false}`}}},
		{"get in missing index", call{"GET", "/nope/_doc/1", "", 404, []string{`"type":"index_not_found_exception"`, `"reason":"no such index [nope]"`}}},
		{"delete", call{"DELETE", "/books/_doc/9", "", 200, []string{`"result":"deleted"`, `"_version":2`}}},
		{"delete again", call{"DELETE", "/books/_doc/9", "", 404, []string{`"result":"not_found"`}}},
		{"delete with stale if_seq_no", call{"DELETE", "/books/_doc/1?if_seq_no=0&if_primary_term=1", "", 409, []string{`version_conflict_engine_exception`}}},
		{"auto-create on write", call{"PUT", "/fresh/_doc/1", `{"n":1,"s":"hello world","when":"2024-01-02"}`, 201, nil}},
		{"dynamic mapping", call{"GET", "/fresh/_mapping", "", 200,
			[]string{`"n":{"type":"long"}`, `"s":{"fields":{"keyword":{"ignore_above":256,"type":"keyword"}},"type":"text"}`, `"when":{"type":"date"}`}}},
		{"dynamic conflict", call{"PUT", "/fresh/_doc/2", `{"n":"x"}`, 400, []string{`failed to parse field [n] of type [long]`}}},
	})
}

func TestConformanceUpdate(t *testing.T) {
	_, ts := newTestNode(t, t.TempDir(), "", "")
	do(t, ts.URL, call{"PUT", "/u/_doc/1", `{"a":1,"o":{"x":1,"y":2}}`, 201, nil})
	runSteps(t, ts.URL, []step{
		{"partial doc", call{"POST", "/u/_update/1", `{"doc":{"b":2,"o":{"y":3}}}`, 200, []string{`"result":"updated"`, `"_version":2`}}},
		{"merged", call{"GET", "/u/_doc/1", "", 200, []string{`"a":1`, `"b":2`, `"o":{"x":1,"y":3}`}}},
		{"noop", call{"POST", "/u/_update/1", `{"doc":{"b":2}}`, 200, []string{`"result":"noop"`, `"_version":2`}}},
		{"detect_noop false", call{"POST", "/u/_update/1", `{"doc":{"b":2},"detect_noop":false}`, 200, []string{`"result":"updated"`, `"_version":3`}}},
		{"with _source", call{"POST", "/u/_update/1?_source=true", `{"doc":{"c":3}}`, 200, []string{`"get":{`, `"c":3`}}},
		{"missing", call{"POST", "/u/_update/2", `{"doc":{"a":1}}`, 404, []string{`"type":"document_missing_exception"`, `[2]: document missing`}}},
		{"doc_as_upsert", call{"POST", "/u/_update/2", `{"doc":{"a":1},"doc_as_upsert":true}`, 201, []string{`"result":"created"`}}},
		{"upsert", call{"POST", "/u/_update/3", `{"doc":{"a":1},"upsert":{"a":0}}`, 201, []string{`"result":"created"`}}},
		{"upsert kept", call{"GET", "/u/_doc/3", "", 200, []string{`"_source":{"a":0}`}}},
		{"script refused", call{"POST", "/u/_update/1", `{"script":{"source":"ctx._source.a++"}}`, 400, []string{`scripts are not supported`}}},
		{"no doc", call{"POST", "/u/_update/1", `{}`, 400, []string{`script or doc is missing`}}},
		{"unknown field", call{"POST", "/u/_update/1", `{"doc":{},"frob":1}`, 400, []string{`unknown field [frob]`}}},
		{"contradicting doc", call{"POST", "/u/_update/1", `{"doc":{"a":"x"}}`, 400, []string{`mapper_parsing_exception`}}},
		{"if_seq_no stale", call{"POST", "/u/_update/1?if_seq_no=0&if_primary_term=1", `{"doc":{"a":5}}`, 409, []string{`version_conflict_engine_exception`}}},
		{"missing index", call{"POST", "/nope/_update/1", `{"doc":{"a":1}}`, 404, []string{`index_not_found_exception`}}},
	})
}

func TestConformanceMgetBulk(t *testing.T) {
	_, ts := newTestNode(t, t.TempDir(), "", "")
	do(t, ts.URL, call{"PUT", "/a/_doc/1", `{"n":1}`, 201, nil})
	do(t, ts.URL, call{"PUT", "/b/_doc/1", `{"n":2}`, 201, nil})
	bulk := strings.Join([]string{
		`{"index":{"_index":"a","_id":"2"}}`, `{"n":2}`,
		`{"create":{"_index":"a","_id":"1"}}`, `{"n":9}`,
		`{"update":{"_index":"a","_id":"1"}}`, `{"doc":{"m":1}}`,
		`{"update":{"_index":"a","_id":"404"}}`, `{"doc":{"m":1}}`,
		`{"delete":{"_index":"a","_id":"nope"}}`,
		`{"index":{"_index":"a","_id":"3"}}`, `{"n":"not a number"}`,
		`this is not json`, `{"n":5}`,
		`{"index":{"_id":"4"}}`, `{"n":4}`,
		`{"index":{"_index":"a"}}`, `{"n":6}`,
	}, "\n") + "\n"
	runSteps(t, ts.URL, []step{
		{"mget docs", call{"POST", "/_mget", `{"docs":[{"_index":"a","_id":"1"},{"_index":"b","_id":"1","_source":false},{"_index":"a","_id":"9"},{"_index":"zz","_id":"1"}]}`, 200,
			[]string{`"_source":{"n":1}`, `{"_id":"1","_index":"b","_primary_term":1,"_seq_no":0,"_version":1,"found":true}`, `{"_id":"9","_index":"a","found":false}`, `"type":"index_not_found_exception"`}}},
		{"mget ids", call{"GET", "/a/_mget", `{"ids":["1"]}`, 200, []string{`"_id":"1"`, `"found":true`}}},
		{"mget nothing", call{"POST", "/_mget", `{}`, 400, []string{`action_request_validation_exception`}}},
		{"bulk", call{"POST", "/_bulk?refresh=true", bulk, 200, []string{
			`"errors":true`,
			`{"index":{"_id":"2","_index":"a","_primary_term":1,"_seq_no":1,"_shards":{"failed":0,"successful":1,"total":1},"_version":1,"result":"created","status":201}}`,
			`{"create":{"_id":"1","_index":"a","error":{`, `"status":409`,
			`{"update":{"_id":"1","_index":"a","_primary_term":1,"_seq_no":2,`,
			`"type":"document_missing_exception"`, `"result":"not_found","status":404`,
			`"type":"mapper_parsing_exception"`, `Malformed action/metadata line [12]`,
			`"reason":"Validation Failed: 1: index is missing;","type":"action_request_validation_exception"`,
		}}},
		{"bulk applied the good items", call{"GET", "/a/_count", "", 200, []string{`"count":3`}}},
		{"bulk update merged", call{"GET", "/a/_doc/1", "", 200, []string{`"_source":{"m":1,"n":1}`}}},
		{"bulk with a default index", call{"POST", "/b/_bulk", "{\"index\":{\"_id\":\"2\"}}\n{\"n\":3}\n{\"delete\":{\"_id\":\"1\"}}\n", 200,
			[]string{`"errors":false`, `"result":"deleted"`}}},
		{"bulk unknown action", call{"POST", "/_bulk", "{\"frobnicate\":{}}\n", 400, []string{`expected one of [create, delete, index, update] but found [frobnicate]`}}},
		{"bulk source missing", call{"POST", "/_bulk", "{\"index\":{\"_index\":\"a\"}}\n", 400, []string{`source missing`}}},
		{"bulk script", call{"POST", "/_bulk", "{\"update\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"script\":\"x\"}\n", 200, []string{`scripts are not supported`}}},
	})
}

func TestConformanceByQuery(t *testing.T) {
	_, ts := newTestNode(t, t.TempDir(), "", "")
	do(t, ts.URL, call{"POST", "/_bulk?refresh=true", "{\"index\":{\"_index\":\"q\",\"_id\":\"1\"}}\n{\"k\":\"a\"}\n{\"index\":{\"_index\":\"q\",\"_id\":\"2\"}}\n{\"k\":\"a\"}\n{\"index\":{\"_index\":\"q\",\"_id\":\"3\"}}\n{\"k\":\"b\"}\n", 200, []string{`"errors":false`}})
	runSteps(t, ts.URL, []step{
		{"update by query", call{"POST", "/q/_update_by_query?refresh=true", `{"query":{"term":{"k.keyword":"a"}}}`, 200, []string{`"updated":2`, `"total":2`}}},
		{"versions moved", call{"GET", "/q/_doc/1", "", 200, []string{`"_version":2`}}},
		{"update by query script", call{"POST", "/q/_update_by_query", `{"script":{"source":"x"}}`, 400, []string{`scripts are not supported`}}},
		{"delete by query", call{"POST", "/q/_delete_by_query?refresh=true", `{"query":{"match":{"k":"a"}}}`, 200, []string{`"deleted":2`, `"failures":[]`}}},
		{"left", call{"GET", "/q/_count", "", 200, []string{`"count":1`}}},
		{"delete by query bad query", call{"POST", "/q/_delete_by_query", `{"query":{"frob":{}}}`, 400, []string{`parsing_exception`}}},
		{"delete by query missing index", call{"POST", "/nope/_delete_by_query", `{"query":{"match_all":{}}}`, 404, []string{`index_not_found_exception`}}},
		{"max_docs", call{"POST", "/q/_delete_by_query", `{"query":{"match_all":{}},"max_docs":0}`, 200, []string{`"deleted":0`}}},
	})
}

func TestConformanceProtocol(t *testing.T) {
	s, ts := newTestNode(t, t.TempDir(), "", "")
	runSteps(t, ts.URL, []step{
		{"root", call{"GET", "/", "", 200, []string{`"tagline":"You Know, for Search"`, `"lucene_version"`}}},
		{"unknown endpoint", call{"GET", "/_frobnicate", "", 400, []string{`no handler found for uri [/_frobnicate] and method [GET]`}}},
		{"unknown nested endpoint", call{"POST", "/idx/_frob/1", "", 400, []string{`no handler found for uri [/idx/_frob/1] and method [POST]`}}},
		{"wrong method", call{"PATCH", "/", "", 405, []string{`Incorrect HTTP method for uri [/] and method [PATCH], allowed: [GET, HEAD]`}}},
		{"wrong method on a document", call{"PATCH", "/idx/_doc/1", "", 405, []string{`"status":405`}}},
	})
	// Every answer carries the product header, errors and HEAD included.
	for _, c := range []struct{ method, path string }{{"GET", "/"}, {"GET", "/nope/_doc/1"}, {"GET", "/_frob"}, {"HEAD", "/"}, {"PATCH", "/"}, {"GET", HealthPath}} {
		req, _ := http.NewRequest(c.method, ts.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Elastic-Product"); got != "Elasticsearch" {
			t.Errorf("%s %s: X-Elastic-Product = %q", c.method, c.path, got)
		}
	}
	// A body over http.max_content_length is a 413 before it is read.
	req := httptest.NewRequest("PUT", "/big/_doc/1", strings.NewReader(`{}`))
	req.ContentLength = MaxContentLength + 1
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "http.max_content_length") {
		t.Fatalf("oversized body: %d %s", rec.Code, rec.Body)
	}
}

func FuzzBulk(f *testing.F) {
	for _, s := range []string{
		"{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"n\":1}\n",
		"{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n",
		"{\"update\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"doc\":{\"n\":1},\"doc_as_upsert\":true}\n",
		"{\"create\":{\"_index\":\"a\"}}\n{\"n\":1}\n{\"index\":{\"_index\":\"a\",\"version\":3,\"version_type\":\"external\"}}\n{}\n",
		"not json\n{\"n\":1}\n{\"index\":{}}\n",
		"{\"frob\":{}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := parseBulk(body, "d", writeParams{})
		if err != nil {
			if e, ok := err.(interface{ Error() string }); !ok || e.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, it := range items {
			if it.err == nil && (it.index == "" || it.id == "") {
				t.Fatalf("item without index or id accepted: %+v", it)
			}
			if it.err == nil && it.action == "update" && it.op.Update == nil {
				t.Fatalf("update without an update function: %+v", it)
			}
		}
	})
}

// TestConformanceDocValuesAtScale: sorts and aggregations read each
// document's own doc values over several persisted segments of 1,000
// documents (the small conformance indices hold one chunk of doc values
// at most).
func TestConformanceDocValuesAtScale(t *testing.T) {
	s, ts := newTestNode(t, t.TempDir(), "", "")
	// Five segments of 1,000 documents (a refresh per bulk).
	for batch := range 5 {
		var b strings.Builder
		for i := batch * 1000; i < (batch+1)*1000; i++ {
			fmt.Fprintf(&b, "{\"index\":{\"_index\":\"dv\",\"_id\":\"%d\"}}\n{\"n\":%d,\"at\":\"2026-01-01T00:00:%02d.%03dZ\",\"k\":\"k%d\",\"msg\":\"word\"}\n", i, i, i/1000, i%1000, i%4)
		}
		do(t, ts.URL, call{"POST", "/_bulk?refresh=true", b.String(), 200, []string{`"errors":false`}})
	}
	// Read from the persisted segment, as a node does once bleve's
	// persister has run.
	idx := s.index("dv").Index()
	testenv.EventuallyDetail(t, 30*time.Second, "bleve to persist its segments", func() (bool, string) {
		mem, _ := idx.StatsMap()["index"].(map[string]any)["num_root_memorysegments"].(uint64)
		return mem == 0, fmt.Sprintf("%d segments in memory", mem)
	})
	runSteps(t, ts.URL, []step{
		{"sort on a number", call{"POST", "/dv/_search", `{"query":{"match":{"msg":"word"}},"sort":[{"n":"desc"}],"size":3,"_source":false}`,
			200, []string{`"_id":"4999","_score":null,"sort":[4999]},{"_index":"dv","_id":"4998","_score":null,"sort":[4998]},{"_index":"dv","_id":"4997"`}}},
		{"sort on a date", call{"POST", "/dv/_search", `{"sort":[{"at":"asc"}],"size":2,"_source":false}`,
			200, []string{`"_id":"0","_score":null,"sort":[1767225600000]},{"_index":"dv","_id":"1","_score":null,"sort":[1767225600001]}`}}},
		{"terms aggregation", call{"POST", "/dv/_search", `{"size":0,"aggs":{"k":{"terms":{"field":"k.keyword"}}}}`,
			200, []string{`{"doc_count":1250,"key":"k0"},{"doc_count":1250,"key":"k1"},{"doc_count":1250,"key":"k2"},{"doc_count":1250,"key":"k3"}`}}},
		{"max", call{"POST", "/dv/_search", `{"size":0,"aggs":{"m":{"max":{"field":"n"}},"s":{"sum":{"field":"n"}}}}`,
			200, []string{`"m":{"value":4999`, `"s":{"value":12497500`}}},
	})
}
