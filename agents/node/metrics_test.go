package node

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

// TestDocValuesStats: the doc-values cache of searches shows in _stats
// (as Elasticsearch's fielddata) and on the metrics endpoint: empty
// before a search sorts or aggregates, holding memory after.
func TestDocValuesStats(t *testing.T) {
	s, ts := newTestNode(t, t.TempDir(), t.TempDir(), "")
	for _, c := range []call{
		{"PUT", "/logs", `{"mappings":{"properties":{"level":{"type":"keyword"}}}}`, 200, nil},
		{"POST", "/_bulk?refresh=true", "{\"index\":{\"_index\":\"logs\"}}\n{\"level\":\"info\"}\n{\"index\":{\"_index\":\"logs\"}}\n{\"level\":\"warn\"}\n", 200, []string{`"errors":false`}},
	} {
		do(t, ts.URL, c)
	}
	fielddata := regexp.MustCompile(`"fielddata":\{"evictions":(\d+),"memory_size_in_bytes":(\d+)\}`)
	docValues := regexp.MustCompile(`(?m)^paddock_node_docvalues_bytes (\S+)$`)
	budget := `paddock_node_docvalues_budget_bytes 2.68435456e+08`
	steps := []struct {
		name   string
		search string // run first ("": none)
		cached bool   // the cache holds memory after it
	}{
		{"before any sort or aggregation", "", false},
		{"after a terms aggregation", `{"size":0,"aggs":{"l":{"terms":{"field":"level"}}}}`, true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.search != "" {
				do(t, ts.URL, call{"POST", "/logs/_search", st.search, 200, []string{`"key":"info"`}})
			}
			for _, path := range []string{"/_stats", "/logs/_stats"} {
				body := getBody(t, ts.URL+path)
				all := fielddata.FindAllStringSubmatch(body, -1)
				if len(all) == 0 {
					t.Fatalf("%s has no fielddata: %s", path, body)
				}
				for _, m := range all {
					if m[1] != "0" || (m[2] != "0") != st.cached {
						t.Fatalf("%s: %s, want evictions 0 and memory held %v", path, m[0], st.cached)
					}
				}
			}
			body := getBody(t, ts.URL+MetricsPath)
			m := docValues.FindStringSubmatch(body)
			if m == nil || !regexp.MustCompile(regexp.QuoteMeta(budget)).MatchString(body) {
				t.Fatalf("metrics lack the doc-values gauges: %s", body)
			}
			if n, _ := strconv.ParseFloat(m[1], 64); (n > 0) != st.cached || int64(n) != s.dv.Used() {
				t.Fatalf("paddock_node_docvalues_bytes %s, budget used %d, want memory held %v", m[1], s.dv.Used(), st.cached)
			}
		})
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d: %s", url, resp.StatusCode, b)
	}
	return string(b)
}
