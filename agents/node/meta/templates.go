package meta

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"paddock/agents/node/eserr"
)

// templateRequest is the PUT /_index_template body, strictly decoded.
type templateRequest struct {
	IndexPatterns json.RawMessage `json:"index_patterns"`
	Priority      *int64          `json:"priority"`
	Version       *int64          `json:"version"`
	Template      *struct {
		Settings json.RawMessage `json:"settings"`
		Mappings json.RawMessage `json:"mappings"`
		Aliases  json.RawMessage `json:"aliases"`
	} `json:"template"`
	ComposedOf []string        `json:"composed_of"`
	DataStream json.RawMessage `json:"data_stream"`
	Meta       json.RawMessage `json:"_meta"`
	// Accepted and ignored: the node has no lifecycle management.
	AllowAutoCreate *bool `json:"allow_auto_create"`
}

// PutTemplate stores an index template (PUT /_index_template/{name});
// create refuses to replace one (?create=true).
func (r *Registry) PutTemplate(name string, body []byte, create bool) error {
	if err := ValidateIndexName(name); err != nil && !strings.Contains(name, "*") {
		e := eserr.From(err)
		return eserr.New(http.StatusBadRequest, "invalid_index_template_exception", "index_template [%s] invalid, cause [%s]", name, e.Reason)
	}
	var req templateRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return eserr.New(http.StatusBadRequest, "x_content_parse_exception", "[index_template] failed to parse: %v", err)
	}
	var patterns []string
	if len(req.IndexPatterns) > 0 {
		// A single string or a list, as Elasticsearch takes it.
		var one string
		if err := json.Unmarshal(req.IndexPatterns, &one); err == nil {
			patterns = []string{one}
		} else if err := json.Unmarshal(req.IndexPatterns, &patterns); err != nil {
			return eserr.New(http.StatusBadRequest, "x_content_parse_exception", "[index_patterns] must be a string or a list of strings")
		}
	}
	if len(patterns) == 0 {
		return eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
	}
	if len(req.ComposedOf) > 0 {
		return eserr.BadRequest("index template [%s] is composed of component templates %v: component templates are not supported by this node; put the settings and mappings in the template itself", name, req.ComposedOf)
	}
	if len(req.DataStream) > 0 && string(req.DataStream) != "null" {
		return eserr.BadRequest("index template [%s] asks for a data stream: data streams are not supported by this node; use an index template with an alias and is_write_index", name)
	}
	t := Template{IndexPatterns: patterns, Version: req.Version, Meta: req.Meta}
	if req.Priority != nil {
		if *req.Priority < 0 {
			return eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: index template priority must be >= 0;")
		}
		t.Priority = *req.Priority
	}
	if req.Template != nil {
		t.Template.Settings = nonNull(req.Template.Settings)
		t.Template.Mappings = nonNull(req.Template.Mappings)
		aliases, err := ParseAliases(req.Template.Aliases)
		if err != nil {
			return err
		}
		t.Template.Aliases = aliases
		for _, raw := range []json.RawMessage{t.Template.Settings, t.Template.Mappings} {
			if len(raw) > 0 && !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
				return eserr.New(http.StatusBadRequest, "x_content_parse_exception", "[template] settings and mappings must be objects")
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.st.Templates[name]; ok && create {
		return eserr.BadRequest("index template [%s] already exists", name)
	}
	for other, ot := range r.st.Templates {
		if other == name || ot.Priority != t.Priority {
			continue
		}
		if overlap(ot.IndexPatterns, t.IndexPatterns) {
			return eserr.BadRequest("index template [%s] has index patterns %v matching patterns from existing templates [%s] with patterns (%s => %v) that have the same priority [%d], multiple index templates may not match during index creation, please use a different priority",
				name, t.IndexPatterns, other, other, ot.IndexPatterns, t.Priority)
		}
	}
	st := r.st.clone()
	st.Templates[name] = t
	return r.save(st)
}

func nonNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return append(json.RawMessage(nil), raw...)
}

// overlap reports whether two pattern lists can match a common name:
// one pattern matches the other read as a name.
func overlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if Match(x, y) || Match(y, x) {
				return true
			}
		}
	}
	return false
}

// NamedTemplate is a template with its name (GET answers a list).
type NamedTemplate struct {
	Name          string   `json:"name"`
	IndexTemplate Template `json:"index_template"`
}

// GetTemplates answers GET /_index_template[/{name}] (name may be a
// comma list or a pattern); a name that matches nothing is a 404.
func (r *Registry) GetTemplates(nameExpr string) ([]NamedTemplate, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := []NamedTemplate{}
	patterns := []string{"*"}
	if nameExpr != "" && nameExpr != "_all" {
		patterns = strings.Split(nameExpr, ",")
	}
	for _, name := range sortedKeys(r.st.Templates) {
		for _, p := range patterns {
			if Match(p, name) {
				out = append(out, NamedTemplate{Name: name, IndexTemplate: r.st.Templates[name]})
				break
			}
		}
	}
	if len(out) == 0 && nameExpr != "" && !strings.Contains(nameExpr, "*") && nameExpr != "_all" {
		return nil, templateMissing(nameExpr)
	}
	return out, nil
}

func templateMissing(name string) error {
	return eserr.New(http.StatusNotFound, "resource_not_found_exception", "index template matching [%s] not found", name)
}

// DeleteTemplate removes the templates nameExpr names; none is a 404.
func (r *Registry) DeleteTemplate(nameExpr string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st.clone()
	n := 0
	for _, p := range strings.Split(nameExpr, ",") {
		for name := range st.Templates {
			if Match(p, name) {
				delete(st.Templates, name)
				n++
			}
		}
	}
	if n == 0 {
		return templateMissing(nameExpr)
	}
	return r.save(st)
}

// MatchTemplate returns the template a new index takes: the matching
// template of highest priority. Dot-prefixed (hidden) indices match
// only patterns that name the dot.
func (r *Registry) MatchTemplate(index string) (string, Template, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	type cand struct {
		name string
		t    Template
	}
	var cs []cand
	for name, t := range r.st.Templates {
		for _, p := range t.IndexPatterns {
			if wildcardSees(p, index, ResolveOptions{ExpandWildcards: "open"}) {
				cs = append(cs, cand{name, t})
				break
			}
		}
	}
	if len(cs) == 0 {
		return "", Template{}, false
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].t.Priority != cs[j].t.Priority {
			return cs[i].t.Priority > cs[j].t.Priority
		}
		return cs[i].name < cs[j].name
	})
	return cs[0].name, cs[0].t, true
}

// Merge lays over onto base: objects merge key by key (recursively),
// anything else in over replaces base's. It combines a template's
// settings or mappings with those of the creation request (the request
// wins). Settings should be flattened first (FlattenSettings) so that
// {"index":{"x":1}} and {"index.x":1} meet.
func Merge(base, over json.RawMessage) (json.RawMessage, error) {
	if len(base) == 0 {
		return over, nil
	}
	if len(over) == 0 {
		return base, nil
	}
	var b, o any
	if err := json.Unmarshal(base, &b); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(over, &o); err != nil {
		return nil, err
	}
	return json.Marshal(merge(b, o))
}

func merge(b, o any) any {
	bm, ok1 := b.(map[string]any)
	om, ok2 := o.(map[string]any)
	if !ok1 || !ok2 {
		return o
	}
	out := make(map[string]any, len(bm)+len(om))
	for k, v := range bm {
		out[k] = v
	}
	for k, v := range om {
		if old, ok := out[k]; ok {
			out[k] = merge(old, v)
		} else {
			out[k] = v
		}
	}
	return out
}

// FlattenSettings turns settings in any of Elasticsearch's shapes
// ({"number_of_shards":1}, {"index":{"number_of_shards":1}},
// {"index.number_of_shards":1}) into flat "index.*" keys.
func FlattenSettings(raw json.RawMessage) (map[string]any, error) {
	out := map[string]any{}
	if len(raw) == 0 || string(raw) == "null" {
		return out, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, eserr.New(http.StatusBadRequest, "settings_exception", "settings must be an object: %v", err)
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if sub, ok := v.(map[string]any); ok {
			for k, vv := range sub {
				walk(prefix+"."+k, vv)
			}
			return
		}
		out[prefix] = v
	}
	for k, v := range m {
		if k != "index" && !strings.HasPrefix(k, "index.") {
			k = "index." + k
		}
		walk(k, v)
	}
	return out, nil
}
