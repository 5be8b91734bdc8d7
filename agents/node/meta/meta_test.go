package meta

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"paddock/agents/node/eserr"
)

func open(t *testing.T) (*Registry, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "meta.json")
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	return r, p
}

// errType is the Elasticsearch error type of err ("" for nil).
func errType(err error) string {
	if err == nil {
		return ""
	}
	var e *eserr.Error
	if !errors.As(err, &e) {
		return "not an eserr: " + err.Error()
	}
	return e.Type
}

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "logs", true},
		{"logs-*", "logs-2026", true},
		{"logs-*", "logs", false},
		{"*-2026", "logs-2026", true},
		{"l*s-*6", "logs-2026", true},
		{"ab*ab", "ab", false},
		{"ab*ab", "abab", true},
		{"logs", "logs", true},
		{"logs", "logs2", false},
	}
	for _, tt := range tests {
		if got := Match(tt.pattern, tt.name); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestValidateIndexName(t *testing.T) {
	t.Parallel()
	for name, ok := range map[string]bool{
		"logs": true, "logs-2026.12.01": true, ".hidden": true,
		"": false, "Logs": false, "a b": false, "a,b": false, "_x": false, "-x": false, "+x": false,
		"a*": false, "a#b": false, ".": false, "..": false, strings.Repeat("a", 256): false,
	} {
		err := ValidateIndexName(name)
		if (err == nil) != ok {
			t.Errorf("ValidateIndexName(%q) = %v, want ok=%v", name, err, ok)
		}
		if err != nil && errType(err) != "invalid_index_name_exception" {
			t.Errorf("ValidateIndexName(%q): type %s", name, errType(err))
		}
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	r, _ := open(t)
	indices := []string{"logs-1", "logs-2", "metrics", ".internal"}
	if _, err := r.UpdateAliases([]byte(`{"actions":[
		{"add":{"index":"logs-*","alias":"logs"}},
		{"add":{"index":"logs-2","alias":"errors","filter":{"term":{"level":"error"}}}},
		{"add":{"index":"metrics","alias":"all-data"}},
		{"add":{"index":"logs-1","alias":"all-data"}}]}`), indices); err != nil {
		t.Fatal(err)
	}
	strict := ResolveOptions{ExpandWildcards: "open"}
	tests := []struct {
		name    string
		expr    string
		opts    ResolveOptions
		want    []string
		filters map[string]int // index → number of alias filters
		errType string
	}{
		{name: "all", expr: "_all", opts: SearchDefaults, want: []string{"logs-1", "logs-2", "metrics"}},
		{name: "empty is all", expr: "", opts: SearchDefaults, want: []string{"logs-1", "logs-2", "metrics"}},
		{name: "hidden when asked", expr: "*", opts: ResolveOptions{AllowNoIndices: true, ExpandWildcards: "all"}, want: []string{".internal", "logs-1", "logs-2", "metrics"}},
		{name: "dot pattern", expr: ".*", opts: SearchDefaults, want: []string{".internal"}},
		{name: "list", expr: "metrics,logs-1", opts: strict, want: []string{"logs-1", "metrics"}},
		{name: "alias", expr: "logs", opts: strict, want: []string{"logs-1", "logs-2"}},
		{name: "filtered alias", expr: "errors", opts: strict, want: []string{"logs-2"}, filters: map[string]int{"logs-2": 1}},
		{name: "named directly beats a filter", expr: "errors,logs-2", opts: strict, want: []string{"logs-2"}, filters: map[string]int{"logs-2": 0}},
		{name: "exclusion", expr: "*,-logs-1", opts: SearchDefaults, want: []string{"logs-2", "metrics"}},
		{name: "exclusion of an alias", expr: "*,-all-data", opts: SearchDefaults, want: []string{"logs-2"}},
		{name: "missing concrete", expr: "nope", opts: strict, errType: "index_not_found_exception"},
		{name: "missing ignored", expr: "nope,metrics", opts: ResolveOptions{IgnoreUnavailable: true, AllowNoIndices: true}, want: []string{"metrics"}},
		{name: "wildcard matching nothing", expr: "zzz*", opts: SearchDefaults, want: []string{}},
		{name: "wildcard matching nothing, strict", expr: "zzz*", opts: ResolveOptions{ExpandWildcards: "open"}, errType: "index_not_found_exception"},
		{name: "expand none", expr: "logs-*", opts: ResolveOptions{AllowNoIndices: true, ExpandWildcards: "none"}, want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Resolve(tt.expr, indices, tt.opts)
			if errType(err) != tt.errType {
				t.Fatalf("error %v, want type %q", err, tt.errType)
			}
			if err != nil {
				return
			}
			if names := Names(got); !reflect.DeepEqual(names, tt.want) {
				t.Fatalf("indices %v, want %v", names, tt.want)
			}
			for _, g := range got {
				if n, ok := tt.filters[g.Index]; ok && len(g.Filters) != n {
					t.Fatalf("%s: %d filters, want %d", g.Index, len(g.Filters), n)
				}
			}
		})
	}
}

func TestOptionsFrom(t *testing.T) {
	t.Parallel()
	o, err := OptionsFrom(url.Values{"ignore_unavailable": {"true"}, "allow_no_indices": {"false"}, "expand_wildcards": {"open,hidden"}}, SearchDefaults)
	if err != nil || !o.IgnoreUnavailable || o.AllowNoIndices || o.ExpandWildcards != "hidden" {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := OptionsFrom(url.Values{"ignore_unavailable": {"maybe"}}, SearchDefaults); errType(err) != "illegal_argument_exception" {
		t.Fatalf("bad boolean: %v", err)
	}
	if _, err := OptionsFrom(url.Values{"expand_wildcards": {"some"}}, SearchDefaults); errType(err) != "illegal_argument_exception" {
		t.Fatalf("bad expand_wildcards: %v", err)
	}
}

func TestWriteIndex(t *testing.T) {
	t.Parallel()
	r, _ := open(t)
	indices := []string{"a", "b", "c"}
	if _, err := r.UpdateAliases([]byte(`{"actions":[
		{"add":{"index":"a","alias":"one"}},
		{"add":{"indices":["a","b"],"alias":"two"}},
		{"add":{"index":"a","alias":"w"}},
		{"add":{"index":"b","alias":"w","is_write_index":true}},
		{"add":{"index":"c","alias":"off","is_write_index":false}}]}`), indices); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, want, errType string }{
		{"a", "a", ""},
		{"new-index", "new-index", ""},
		{"one", "a", ""},
		{"w", "b", ""},
		{"two", "", "illegal_argument_exception"},
		{"off", "", "illegal_argument_exception"},
	}
	for _, tt := range tests {
		got, err := r.WriteIndex(tt.name)
		if got != tt.want || errType(err) != tt.errType {
			t.Errorf("WriteIndex(%q) = %q, %v; want %q, %q", tt.name, got, err, tt.want, tt.errType)
		}
	}
}

func TestUpdateAliasesIsAtomic(t *testing.T) {
	t.Parallel()
	r, p := open(t)
	indices := []string{"a", "b"}
	if _, err := r.UpdateAliases([]byte(`{"actions":[{"add":{"index":"a","alias":"x"}}]}`), indices); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, body, errType string }{
		{"second action fails", `{"actions":[{"add":{"index":"b","alias":"y"}},{"add":{"index":"missing","alias":"z"}}]}`, "index_not_found_exception"},
		{"alias named as an index", `{"actions":[{"add":{"index":"a","alias":"b"}}]}`, "invalid_alias_name_exception"},
		{"two write indices", `{"actions":[{"add":{"index":"a","alias":"w","is_write_index":true}},{"add":{"index":"b","alias":"w","is_write_index":true}}]}`, "illegal_state_exception"},
		{"unknown action", `{"actions":[{"rename":{"index":"a","alias":"q"}}]}`, "x_content_parse_exception"},
		{"two kinds in one action", `{"actions":[{"add":{"index":"a","alias":"q"},"remove":{"index":"a","alias":"x"}}]}`, "x_content_parse_exception"},
		{"no actions", `{"actions":[]}`, "action_request_validation_exception"},
		{"unknown field", `{"actions":[{"add":{"index":"a","alias":"q","colour":1}}]}`, "x_content_parse_exception"},
		{"remove missing", `{"actions":[{"remove":{"index":"a","alias":"nope"}}]}`, "aliases_not_found_exception"},
		{"malformed", `{"actions":[`, "x_content_parse_exception"},
		{"bad filter", `{"actions":[{"add":{"index":"a","alias":"q","filter":"term"}}]}`, "parsing_exception"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.UpdateAliases([]byte(tt.body), indices)
			if errType(err) != tt.errType {
				t.Fatalf("error %v, want %s", err, tt.errType)
			}
			// Nothing of a refused request is kept, in memory or on disk.
			for _, reg := range []*Registry{r, mustOpen(t, p)} {
				got, _ := reg.GetAliases("", "", indices)
				want := map[string]map[string]Alias{"a": {"x": {}}, "b": {}}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("aliases after a refused request: %v", got)
				}
			}
		})
	}
	// remove with must_exist false is no error; remove_index is returned.
	rm, err := r.UpdateAliases([]byte(`{"actions":[{"remove":{"index":"a","alias":"nope","must_exist":false}},{"remove_index":{"index":"b"}}]}`), indices)
	if err != nil || !reflect.DeepEqual(rm, []string{"b"}) {
		t.Fatalf("remove_index: %v %v", rm, err)
	}
}

func mustOpen(t *testing.T, p string) *Registry {
	t.Helper()
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAliasAPIs(t *testing.T) {
	t.Parallel()
	r, p := open(t)
	indices := []string{"logs-1", "logs-2"}
	if err := r.PutAlias("logs-*", "logs", []byte(`{"routing":1,"is_write_index":false}`), indices); err != nil {
		t.Fatal(err)
	}
	if err := r.PutAlias("logs-2", "current", nil, indices); err != nil {
		t.Fatal(err)
	}
	got, err := r.GetAliases("logs-2", "", indices)
	if err != nil || len(got["logs-2"]) != 2 || got["logs-2"]["logs"].SearchRouting != "1" {
		t.Fatalf("GetAliases(logs-2) = %v, %v", got, err)
	}
	got, err = r.GetAliases("", "current", indices)
	if err != nil || len(got) != 1 || len(got["logs-2"]) != 1 {
		t.Fatalf("GetAliases(_, current) = %v, %v", got, err)
	}
	if _, err := r.GetAliases("", "current,nope", indices); errType(err) != "aliases_not_found_exception" {
		t.Fatalf("a missing alias name: %v", err)
	}
	if !r.IsAlias("logs") || r.IsAlias("logs-1") {
		t.Fatal("IsAlias")
	}
	if err := r.DeleteAliases("logs-1", "logs", indices); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteAliases("logs-1", "logs", indices); errType(err) != "aliases_not_found_exception" {
		t.Fatalf("deleting again: %v", err)
	}
	if err := r.IndexDeleted("logs-2"); err != nil {
		t.Fatal(err)
	}
	if r2 := mustOpen(t, p); r2.IsAlias("current") || r2.IsAlias("logs") {
		t.Fatal("aliases of a deleted index survive a reopen")
	}
	// Aliases given at index creation.
	as, err := ParseAliases(json.RawMessage(`{"w":{"is_write_index":true},"f":{"filter":{"match_all":{}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.IndexCreated("logs-3", as, append(indices, "logs-3")); err != nil {
		t.Fatal(err)
	}
	if w, err := r.WriteIndex("w"); err != nil || w != "logs-3" {
		t.Fatalf("write index of a creation alias: %q %v", w, err)
	}
}

func TestTemplates(t *testing.T) {
	t.Parallel()
	r, p := open(t)
	put := func(name, body string) error { return r.PutTemplate(name, []byte(body), false) }
	if err := put("logs", `{"index_patterns":["logs-*"],"priority":10,"template":{"settings":{"number_of_shards":1},"mappings":{"properties":{"at":{"type":"date"}}},"aliases":{"all-logs":{}}}}`); err != nil {
		t.Fatal(err)
	}
	if err := put("catch-all", `{"index_patterns":"*","priority":0}`); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, body, errType string }{
		{"same priority overlap", `{"index_patterns":["logs-app-*"],"priority":10}`, "illegal_argument_exception"},
		{"no patterns", `{"template":{}}`, "action_request_validation_exception"},
		{"data stream", `{"index_patterns":["x-*"],"data_stream":{}}`, "illegal_argument_exception"},
		{"component templates", `{"index_patterns":["x-*"],"composed_of":["base"]}`, "illegal_argument_exception"},
		{"unknown field", `{"index_patterns":["x-*"],"order":1}`, "x_content_parse_exception"},
		{"negative priority", `{"index_patterns":["x-*"],"priority":-1}`, "action_request_validation_exception"},
		{"malformed", `{"index_patterns":`, "x_content_parse_exception"},
	}
	for _, tt := range tests {
		if err := put("t-"+strings.ReplaceAll(tt.name, " ", "-"), tt.body); errType(err) != tt.errType {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.errType)
		}
	}
	if err := r.PutTemplate("logs", []byte(`{"index_patterns":["logs-*"],"priority":10}`), true); errType(err) != "illegal_argument_exception" {
		t.Fatalf("create=true over an existing template: %v", err)
	}
	for index, want := range map[string]string{"logs-2026": "logs", "metrics": "catch-all", ".internal": ""} {
		name, _, ok := r.MatchTemplate(index)
		if name != want || ok != (want != "") {
			t.Errorf("MatchTemplate(%q) = %q %v, want %q", index, name, ok, want)
		}
	}
	_, tpl, _ := r.MatchTemplate("logs-1")
	if _, ok := tpl.Template.Aliases["all-logs"]; !ok {
		t.Fatalf("template aliases: %+v", tpl.Template.Aliases)
	}
	got, err := mustOpen(t, p).GetTemplates("log*")
	if err != nil || len(got) != 1 || got[0].Name != "logs" || got[0].IndexTemplate.Priority != 10 {
		t.Fatalf("GetTemplates after reopen: %+v %v", got, err)
	}
	if _, err := r.GetTemplates("nope"); errType(err) != "resource_not_found_exception" {
		t.Fatalf("a missing template: %v", err)
	}
	if err := r.DeleteTemplate("catch-all"); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteTemplate("catch-all"); errType(err) != "resource_not_found_exception" {
		t.Fatalf("deleting again: %v", err)
	}
}

func TestMergeAndFlatten(t *testing.T) {
	t.Parallel()
	tests := []struct{ base, over, want string }{
		{`{"properties":{"a":{"type":"keyword"},"b":{"type":"long"}}}`, `{"properties":{"b":{"type":"integer"},"c":{"type":"text"}}}`,
			`{"properties":{"a":{"type":"keyword"},"b":{"type":"integer"},"c":{"type":"text"}}}`},
		{``, `{"x":1}`, `{"x":1}`},
		{`{"x":1}`, ``, `{"x":1}`},
		{`{"x":{"y":1}}`, `{"x":2}`, `{"x":2}`},
	}
	for _, tt := range tests {
		got, err := Merge(json.RawMessage(tt.base), json.RawMessage(tt.over))
		if err != nil {
			t.Fatal(err)
		}
		var g, w any
		_ = json.Unmarshal(got, &g)
		_ = json.Unmarshal([]byte(tt.want), &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("Merge(%s, %s) = %s, want %s", tt.base, tt.over, got, tt.want)
		}
	}
	for _, raw := range []string{`{"number_of_shards":1,"refresh_interval":"5s"}`, `{"index":{"number_of_shards":1,"refresh_interval":"5s"}}`, `{"index.number_of_shards":1,"index":{"refresh_interval":"5s"}}`} {
		got, err := FlattenSettings(json.RawMessage(raw))
		want := map[string]any{"index.number_of_shards": float64(1), "index.refresh_interval": "5s"}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("FlattenSettings(%s) = %v %v", raw, got, err)
		}
	}
	if _, err := FlattenSettings(json.RawMessage(`[1]`)); errType(err) != "settings_exception" {
		t.Errorf("settings as a list: %v", err)
	}
}

func TestOpenDamaged(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "meta.json")
	if err := writeFile(p, "{not json"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("a damaged file: %v", err)
	}
}

// FuzzUpdateAliases: no body panics, a refused one changes nothing, and
// every refusal is an Elasticsearch error.
func FuzzUpdateAliases(f *testing.F) {
	for _, s := range []string{`{"actions":[{"add":{"index":"a","alias":"x"}}]}`, `{"actions":[{"remove":{"index":"*","aliases":["x","y"]}}]}`,
		`{"actions":[{"remove_index":{"index":"a"}}]}`, `{"actions":[{"add":{"indices":["a","b"],"alias":"w","is_write_index":true,"filter":{"term":{"a":1}},"routing":"1"}}]}`, `[]`, `{"actions":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Open(filepath.Join(t.TempDir(), "meta.json"))
		if err != nil {
			t.Fatal(err)
		}
		indices := []string{"a", "b"}
		before, _ := r.GetAliases("", "", indices)
		if _, err := r.UpdateAliases(body, indices); err != nil {
			var e *eserr.Error
			if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 {
				t.Fatalf("refusal %v is not a 4xx Elasticsearch error", err)
			}
			after, _ := r.GetAliases("", "", indices)
			if !reflect.DeepEqual(before, after) {
				t.Fatalf("a refused body changed the aliases: %v → %v", before, after)
			}
		}
	})
}

// FuzzPutTemplate: no body panics; refusals are 4xx Elasticsearch errors.
func FuzzPutTemplate(f *testing.F) {
	for _, s := range []string{`{"index_patterns":["logs-*"],"priority":1,"template":{"settings":{"a":1},"mappings":{},"aliases":{"x":{}}}}`, `{"index_patterns":"x"}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Open(filepath.Join(t.TempDir(), "meta.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.PutTemplate("t", body, false); err != nil {
			var e *eserr.Error
			if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 {
				t.Fatalf("refusal %v is not a 4xx Elasticsearch error", err)
			}
		}
	})
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }
