package dsl

import (
	"bytes"
	"encoding/json"
	"path"
	"strings"
)

// filterSource applies _source includes/excludes (with * wildcards, on
// dotted paths) to a document's source. Without patterns the source is
// returned as stored.
func filterSource(src []byte, f SourceFilter) (json.RawMessage, error) {
	if len(f.Includes) == 0 && len(f.Excludes) == 0 {
		return src, nil
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return src, nil // not an object: nothing to filter
	}
	out := filterObject(doc, "", f)
	return json.Marshal(out)
}

func filterObject(obj map[string]any, prefix string, f SourceFilter) map[string]any {
	out := map[string]any{}
	for k, v := range obj {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		if matchesAny(f.Excludes, p) {
			continue
		}
		included := len(f.Includes) == 0 || matchesAny(f.Includes, p)
		switch x := v.(type) {
		case map[string]any:
			if included && len(f.Excludes) == 0 {
				out[k] = x
				continue
			}
			if included || couldInclude(f.Includes, p) {
				sub := f
				if included {
					sub.Includes = nil
				}
				if o := filterObject(x, p, sub); len(o) > 0 || included {
					out[k] = o
				}
			}
		case []any:
			if included {
				out[k] = filterArray(x, p, f)
			} else if couldInclude(f.Includes, p) {
				if arr := filterArray(x, p, f); len(arr) > 0 {
					out[k] = arr
				}
			}
		default:
			if included {
				out[k] = v
			}
		}
	}
	return out
}

func filterArray(arr []any, p string, f SourceFilter) []any {
	out := make([]any, 0, len(arr))
	for _, e := range arr {
		if o, ok := e.(map[string]any); ok {
			sub := f
			if matchesAny(f.Includes, p) {
				sub.Includes = nil
			}
			if fo := filterObject(o, p, sub); len(fo) > 0 {
				out = append(out, fo)
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

// matchesAny reports whether a dotted path matches a pattern, or lies
// under a path a pattern names.
func matchesAny(patterns []string, p string) bool {
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
		if strings.HasPrefix(p, pat+".") {
			return true
		}
		if strings.HasSuffix(pat, "*") && strings.HasPrefix(p, strings.TrimSuffix(pat, "*")) {
			return true
		}
	}
	return false
}

// couldInclude reports whether something under path p may match a pattern.
func couldInclude(patterns []string, p string) bool {
	for _, pat := range patterns {
		if strings.HasPrefix(pat, p+".") || strings.HasPrefix(pat, "*") {
			return true
		}
		if i := strings.Index(pat, "*"); i >= 0 && strings.HasPrefix(p+".", pat[:i]) {
			return true
		}
	}
	return false
}
