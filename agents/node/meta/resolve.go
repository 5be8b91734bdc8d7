package meta

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"paddock/agents/node/eserr"
)

// ResolveOptions are a multi-index request's URL parameters.
type ResolveOptions struct {
	IgnoreUnavailable bool // ignore_unavailable: a missing concrete name is left out, not a 404
	AllowNoIndices    bool // allow_no_indices: an expression matching nothing is no error
	// ExpandWildcards: "open" (default), "all", "hidden", "none" (and
	// "closed", which matches nothing: the node has no closed indices).
	ExpandWildcards string
}

// SearchDefaults are the options of searches, counts and by-query
// requests in Elasticsearch.
var SearchDefaults = ResolveOptions{AllowNoIndices: true, ExpandWildcards: "open"}

// StrictDefaults are the options of requests that need their indices
// (GET /idx, _mapping, _settings, DELETE /idx).
var StrictDefaults = ResolveOptions{ExpandWildcards: "open", AllowNoIndices: true}

// OptionsFrom reads ignore_unavailable, allow_no_indices and
// expand_wildcards from q over defaults; a bad value is a 400.
func OptionsFrom(q url.Values, defaults ResolveOptions) (ResolveOptions, error) {
	o := defaults
	for key, dst := range map[string]*bool{"ignore_unavailable": &o.IgnoreUnavailable, "allow_no_indices": &o.AllowNoIndices} {
		if v, ok := q[key]; ok {
			s := v[0]
			if s == "" {
				s = "true"
			}
			b, err := strconv.ParseBool(s)
			if err != nil {
				return o, eserr.BadRequest("Failed to parse value [%s] as only [true] or [false] are allowed for [%s]", v[0], key)
			}
			*dst = b
		}
	}
	if v := q.Get("expand_wildcards"); v != "" {
		o.ExpandWildcards = ""
		for _, w := range strings.Split(v, ",") {
			switch w {
			case "open", "closed", "hidden", "all", "none":
				if o.ExpandWildcards == "" || w == "all" || w == "hidden" {
					o.ExpandWildcards = w
				}
			default:
				return o, eserr.BadRequest("No enum constant for expand_wildcards [%s]: use open, closed, hidden, all or none", w)
			}
		}
	}
	return o, nil
}

// Resolved is one concrete index an expression names, with the alias
// filters that apply to searches on it (nil: unfiltered, because the
// index was named directly, by a wildcard, or through an alias without
// a filter).
type Resolved struct {
	Index   string
	Filters []json.RawMessage
}

// Names returns the indices of rs.
func Names(rs []Resolved) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Index
	}
	return out
}

// Match reports whether name matches pattern, whose only wildcard is
// '*' (Elasticsearch's simple match).
func Match(pattern, name string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == name
	}
	parts := strings.Split(pattern, "*")
	if !strings.HasPrefix(name, parts[0]) {
		return false
	}
	name = name[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(name, p)
		if i < 0 {
			return false
		}
		name = name[i+len(p):]
	}
	return strings.HasSuffix(name, last) && len(name) >= len(last)
}

// hidden: dot-prefixed names are left out of wildcards unless the
// pattern itself starts with a dot or hidden indices are asked for.
func wildcardSees(pattern, name string, o ResolveOptions) bool {
	if o.ExpandWildcards == "none" || o.ExpandWildcards == "closed" {
		return false
	}
	if strings.HasPrefix(name, ".") && !strings.HasPrefix(pattern, ".") && o.ExpandWildcards != "all" && o.ExpandWildcards != "hidden" {
		return false
	}
	return Match(pattern, name)
}

// Resolve turns an index expression into the concrete indices it means,
// sorted: a comma-separated list of names, aliases and '*' patterns,
// "_all" (or "*" or "") for every index, "-pattern" to take away what an
// earlier part added. indices are the existing indices.
func (r *Registry) Resolve(expr string, indices []string, o ResolveOptions) ([]Resolved, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	exists := make(map[string]bool, len(indices))
	for _, i := range indices {
		exists[i] = true
	}
	// index → filters; a nil entry with direct=true means unfiltered.
	type hit struct {
		direct  bool
		filters []json.RawMessage
	}
	got := map[string]*hit{}
	add := func(idx string, filter json.RawMessage, direct bool) {
		h := got[idx]
		if h == nil {
			h = &hit{}
			got[idx] = h
		}
		if direct || len(filter) == 0 {
			h.direct = true
			return
		}
		h.filters = append(h.filters, filter)
	}
	aliasIndices := r.aliasIndicesLocked()
	if expr == "" || expr == "_all" {
		expr = "*"
	}
	parts := strings.Split(expr, ",")
	wildcardSeen := false
	for i, part := range parts {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.HasPrefix(part, "-") && i > 0 && wildcardSeen {
			pat := part[1:]
			for idx := range got {
				if Match(pat, idx) {
					delete(got, idx)
				}
			}
			// Aliases taken away take their indices with them.
			for alias, idxs := range aliasIndices {
				if Match(pat, alias) {
					for _, idx := range idxs {
						delete(got, idx)
					}
				}
			}
			continue
		}
		if part == "_all" {
			part = "*"
		}
		if strings.Contains(part, "*") {
			wildcardSeen = true
			matched := false
			for _, idx := range indices {
				if wildcardSees(part, idx, o) {
					add(idx, nil, true)
					matched = true
				}
			}
			for alias, idxs := range aliasIndices {
				if !wildcardSees(part, alias, o) {
					continue
				}
				for _, idx := range idxs {
					if exists[idx] {
						add(idx, r.st.Aliases[idx][alias].Filter, false)
						matched = true
					}
				}
			}
			if !matched && !o.AllowNoIndices {
				return nil, eserr.IndexNotFound(part)
			}
			continue
		}
		if exists[part] {
			add(part, nil, true)
			continue
		}
		if idxs, ok := aliasIndices[part]; ok {
			for _, idx := range idxs {
				if exists[idx] {
					add(idx, r.st.Aliases[idx][part].Filter, false)
				}
			}
			continue
		}
		if !o.IgnoreUnavailable {
			return nil, eserr.IndexNotFound(part)
		}
	}
	if len(got) == 0 && !o.AllowNoIndices {
		return nil, eserr.IndexNotFound(expr)
	}
	out := make([]Resolved, 0, len(got))
	for idx, h := range got {
		rv := Resolved{Index: idx}
		if !h.direct {
			rv.Filters = h.filters
		}
		out = append(out, rv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

// aliasIndicesLocked maps each alias to its indices, sorted.
func (r *Registry) aliasIndicesLocked() map[string][]string {
	out := map[string][]string{}
	for idx, as := range r.st.Aliases {
		for a := range as {
			out[a] = append(out[a], idx)
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// IsAlias reports whether name is an alias.
func (r *Registry) IsAlias(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.aliasIndicesLocked()[name]
	return ok
}

// WriteIndex is the index a write to name goes to: name itself when it
// is not an alias (an index, or one to create), else the alias's only
// index or its write index. An alias with several indices and no write
// index is a 400, as in Elasticsearch.
func (r *Registry) WriteIndex(name string) (string, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	idxs, ok := r.aliasIndicesLocked()[name]
	if !ok {
		return name, nil
	}
	var write []string
	for _, idx := range idxs {
		if w := r.st.Aliases[idx][name].IsWriteIndex; w != nil && *w {
			write = append(write, idx)
		}
	}
	switch {
	case len(write) == 1:
		return write[0], nil
	case len(idxs) == 1:
		if w := r.st.Aliases[idxs[0]][name].IsWriteIndex; w == nil || *w {
			return idxs[0], nil
		}
	}
	return "", eserr.New(http.StatusBadRequest, "illegal_argument_exception",
		"no write index is defined for alias [%s]. The write index may be explicitly disabled using is_write_index=false or the alias points to multiple indices without one being designated as a write index", name)
}
