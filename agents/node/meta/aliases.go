package meta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"paddock/agents/node/eserr"
)

// aliasSpec is one add/remove/remove_index action's body.
type aliasSpec struct {
	Index     string          `json:"index"`
	Indices   []string        `json:"indices"`
	Alias     string          `json:"alias"`
	Aliases   []string        `json:"aliases"`
	Filter    json.RawMessage `json:"filter"`
	Routing   json.RawMessage `json:"routing"`
	IndexR    json.RawMessage `json:"index_routing"`
	SearchR   json.RawMessage `json:"search_routing"`
	IsWrite   *bool           `json:"is_write_index"`
	IsHidden  *bool           `json:"is_hidden"`
	MustExist *bool           `json:"must_exist"`
}

func (a aliasSpec) indices() []string {
	if a.Index != "" {
		return append([]string{a.Index}, a.Indices...)
	}
	return a.Indices
}

func (a aliasSpec) aliases() []string {
	if a.Alias != "" {
		return append([]string{a.Alias}, a.Aliases...)
	}
	return a.Aliases
}

// routing accepts a string or a number, as Elasticsearch does.
func routing(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), nil
	}
	return "", eserr.New(http.StatusBadRequest, "x_content_parse_exception", "[routing] must be a string or a number, got %s", raw)
}

func (a aliasSpec) alias() (Alias, error) {
	out := Alias{IsWriteIndex: a.IsWrite, IsHidden: a.IsHidden}
	if len(a.Filter) > 0 && string(a.Filter) != "null" {
		if !json.Valid(a.Filter) || !bytes.HasPrefix(bytes.TrimSpace(a.Filter), []byte("{")) {
			return out, eserr.Parsing("[filter] of an alias must be a query object")
		}
		out.Filter = append(json.RawMessage(nil), a.Filter...)
	}
	var err error
	if out.Routing, err = routing(a.Routing); err != nil {
		return out, err
	}
	if out.IndexRouting, err = routing(a.IndexR); err != nil {
		return out, err
	}
	if out.SearchRouting, err = routing(a.SearchR); err != nil {
		return out, err
	}
	if out.Routing != "" {
		if out.IndexRouting == "" {
			out.IndexRouting = out.Routing
		}
		if out.SearchRouting == "" {
			out.SearchRouting = out.Routing
		}
		out.Routing = ""
	}
	return out, nil
}

// UpdateAliases applies a POST /_aliases body atomically: every action
// is checked first, then all are saved at once, or none. It returns the
// indices a remove_index action asks to delete (the caller deletes
// them, and then calls IndexDeleted). indices are the existing indices.
func (r *Registry) UpdateAliases(body []byte, indices []string) (removeIndices []string, err error) {
	var req struct {
		Actions []map[string]aliasSpec `json:"actions"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, eserr.New(http.StatusBadRequest, "x_content_parse_exception", "[aliases] failed to parse: %v", err)
	}
	if len(req.Actions) == 0 {
		return nil, eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: no action requested;")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st.clone()
	for _, action := range req.Actions {
		if len(action) != 1 {
			return nil, eserr.New(http.StatusBadRequest, "x_content_parse_exception", "each action holds exactly one of add, remove, remove_index")
		}
		for kind, spec := range action {
			idxs, err := expand(spec.indices(), indices)
			if err != nil {
				return nil, err
			}
			switch kind {
			case "add":
				if err := addAliases(&st, idxs, spec, indices); err != nil {
					return nil, err
				}
			case "remove":
				if err := removeAliases(&st, idxs, spec.aliases(), spec.MustExist); err != nil {
					return nil, err
				}
			case "remove_index":
				removeIndices = append(removeIndices, idxs...)
			default:
				return nil, eserr.New(http.StatusBadRequest, "x_content_parse_exception", "[aliases] unknown action [%s]: use add, remove or remove_index", kind)
			}
		}
	}
	if err := checkWriteIndices(st); err != nil {
		return nil, err
	}
	if err := r.save(st); err != nil {
		return nil, err
	}
	return removeIndices, nil
}

// expand turns an action's index names and patterns into existing
// indices (a missing concrete name is a 404).
func expand(names, indices []string) ([]string, error) {
	if len(names) == 0 {
		return nil, eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: One of [index] or [indices] is required;")
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		found := false
		for _, idx := range indices {
			if Match(n, idx) && !seen[idx] {
				seen[idx] = true
				out = append(out, idx)
			}
			found = found || Match(n, idx)
		}
		if !found && !strings.Contains(n, "*") {
			return nil, eserr.IndexNotFound(n)
		}
	}
	return out, nil
}

func addAliases(st *state, idxs []string, spec aliasSpec, indices []string) error {
	names := spec.aliases()
	if len(names) == 0 {
		return eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: One of [alias] or [aliases] is required;")
	}
	a, err := spec.alias()
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := ValidateIndexName(name); err != nil {
			e := eserr.From(err)
			e.Type = "invalid_alias_name_exception"
			return e
		}
		for _, idx := range indices {
			if idx == name {
				return eserr.New(http.StatusBadRequest, "invalid_alias_name_exception",
					"Invalid alias name [%s]: an index or data stream exists with the same name as the alias", name)
			}
		}
		for _, idx := range idxs {
			if st.Aliases[idx] == nil {
				st.Aliases[idx] = map[string]Alias{}
			}
			st.Aliases[idx][name] = a
		}
	}
	return nil
}

func removeAliases(st *state, idxs, patterns []string, mustExist *bool) error {
	if len(patterns) == 0 {
		return eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: One of [alias] or [aliases] is required;")
	}
	removed := 0
	for _, idx := range idxs {
		for name := range st.Aliases[idx] {
			for _, p := range patterns {
				if Match(p, name) {
					delete(st.Aliases[idx], name)
					removed++
					break
				}
			}
		}
		if len(st.Aliases[idx]) == 0 {
			delete(st.Aliases, idx)
		}
	}
	if removed == 0 && (mustExist == nil || *mustExist) {
		return aliasesMissing(patterns)
	}
	return nil
}

func aliasesMissing(names []string) error {
	return eserr.New(http.StatusNotFound, "aliases_not_found_exception", "aliases [%s] missing", strings.Join(names, ",")).
		With("resource.type", "aliases").With("resource.id", strings.Join(names, ","))
}

// checkWriteIndices refuses an alias with two write indices.
func checkWriteIndices(st state) error {
	write := map[string][]string{}
	for idx, as := range st.Aliases {
		for name, a := range as {
			if a.IsWriteIndex != nil && *a.IsWriteIndex {
				write[name] = append(write[name], idx)
			}
		}
	}
	for name, idxs := range write {
		if len(idxs) > 1 {
			sort.Strings(idxs)
			return eserr.New(http.StatusBadRequest, "illegal_state_exception", "alias [%s] has more than one write index [%s]", name, strings.Join(idxs, ","))
		}
	}
	return nil
}

// PutAlias adds alias to the indices indexExpr names (PUT
// /{index}/_alias/{name}); body may be empty or hold filter, routing,
// is_write_index.
func (r *Registry) PutAlias(indexExpr, alias string, body []byte, indices []string) error {
	spec := aliasSpec{}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec); err != nil {
			return eserr.New(http.StatusBadRequest, "x_content_parse_exception", "[alias] failed to parse: %v", err)
		}
	}
	spec.Index, spec.Indices = "", strings.Split(indexExpr, ",")
	spec.Alias, spec.Aliases = alias, nil
	r.mu.Lock()
	defer r.mu.Unlock()
	idxs, err := expand(spec.indices(), indices)
	if err != nil {
		return err
	}
	st := r.st.clone()
	if err := addAliases(&st, idxs, spec, indices); err != nil {
		return err
	}
	if err := checkWriteIndices(st); err != nil {
		return err
	}
	return r.save(st)
}

// DeleteAliases removes the aliases matching aliasExpr from the indices
// indexExpr names (DELETE /{index}/_alias/{name}); nothing matched is a 404.
func (r *Registry) DeleteAliases(indexExpr, aliasExpr string, indices []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if indexExpr == "" || indexExpr == "_all" {
		indexExpr = "*"
	}
	idxs, err := expand(strings.Split(indexExpr, ","), indices)
	if err != nil {
		return err
	}
	if aliasExpr == "_all" {
		aliasExpr = "*"
	}
	st := r.st.clone()
	if err := removeAliases(&st, idxs, strings.Split(aliasExpr, ","), nil); err != nil {
		return err
	}
	return r.save(st)
}

// GetAliases answers GET /_alias, /{index}/_alias, /_alias/{name},
// /{index}/_alias/{name}: index → its matching aliases. An alias name
// (not a pattern) that matches nothing is a 404 naming it; the answer
// still holds what was found.
func (r *Registry) GetAliases(indexExpr, aliasExpr string, indices []string) (map[string]map[string]Alias, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if indexExpr == "" || indexExpr == "_all" {
		indexExpr = "*"
	}
	idxs, err := expand(strings.Split(indexExpr, ","), indices)
	if err != nil {
		return nil, err
	}
	var patterns []string
	if aliasExpr != "" && aliasExpr != "_all" && aliasExpr != "*" {
		patterns = strings.Split(aliasExpr, ",")
	}
	out := map[string]map[string]Alias{}
	found := map[string]bool{}
	for _, idx := range idxs {
		m := map[string]Alias{}
		for name, a := range r.st.Aliases[idx] {
			if patterns == nil {
				m[name] = a
				continue
			}
			for _, p := range patterns {
				if Match(p, name) {
					m[name] = a
					found[p] = true
				}
			}
		}
		// Without an alias name every index is listed; with one, only
		// those that have it.
		if patterns == nil || len(m) > 0 {
			out[idx] = m
		}
	}
	var missing []string
	for _, p := range patterns {
		if !found[p] && !strings.Contains(p, "*") {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return out, eserr.New(http.StatusNotFound, "aliases_not_found_exception", "alias [%s] missing", strings.Join(missing, ","))
	}
	return out, nil
}

// AliasesOf returns index's aliases (GET /{index} shows them).
func (r *Registry) AliasesOf(index string) map[string]Alias {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string]Alias{}
	for k, v := range r.st.Aliases[index] {
		out[k] = v
	}
	return out
}

// IndexCreated gives a new index the aliases of its creation request or
// template (alias name → alias), checked as PUT /_alias checks them.
func (r *Registry) IndexCreated(index string, aliases map[string]Alias, indices []string) error {
	if len(aliases) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st.clone()
	for name, a := range aliases {
		if err := ValidateIndexName(name); err != nil {
			return err
		}
		for _, idx := range indices {
			if idx == name {
				return eserr.New(http.StatusBadRequest, "invalid_alias_name_exception",
					"Invalid alias name [%s]: an index or data stream exists with the same name as the alias", name)
			}
		}
		if st.Aliases[index] == nil {
			st.Aliases[index] = map[string]Alias{}
		}
		st.Aliases[index][name] = a
	}
	if err := checkWriteIndices(st); err != nil {
		return err
	}
	return r.save(st)
}

// IndexDeleted forgets a deleted index's aliases.
func (r *Registry) IndexDeleted(index string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.st.Aliases[index]; !ok {
		return nil
	}
	st := r.st.clone()
	delete(st.Aliases, index)
	return r.save(st)
}

// ParseAliases reads the "aliases" object of an index creation body or
// a template ({"name": {filter, routing, is_write_index}}).
func ParseAliases(raw json.RawMessage) (map[string]Alias, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var specs map[string]aliasSpec
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&specs); err != nil {
		return nil, eserr.New(http.StatusBadRequest, "x_content_parse_exception", "[aliases] failed to parse: %v", err)
	}
	out := make(map[string]Alias, len(specs))
	for name, s := range specs {
		a, err := s.alias()
		if err != nil {
			return nil, fmt.Errorf("alias [%s]: %w", name, err)
		}
		out[name] = a
	}
	return out, nil
}
