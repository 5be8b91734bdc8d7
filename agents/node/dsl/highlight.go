package dsl

import (
	"bytes"
	"encoding/json"
	"html"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/search"
)

// Highlight is the highlight option of a search (the plain highlighter:
// the source value is analysed again with the field's analyzer and the
// tokens the query looks for are wrapped in tags).
type Highlight struct {
	PreTags, PostTags []string
	FragmentSize      int
	NumberOfFragments int
	RequireFieldMatch bool
	Fields            []HighlightField
	Encoder           string
	NoMatchSize       int
}

// HighlightField is one field (or field pattern) to highlight.
type HighlightField struct {
	Name              string
	FragmentSize      int
	NumberOfFragments int
	PreTags, PostTags []string
	NoMatchSize       int
}

func parseHighlight(v any) (*Highlight, error) {
	o, ok := v.(map[string]any)
	if !ok {
		return nil, parsingErr("[highlight] must be an object")
	}
	h := &Highlight{PreTags: []string{"<em>"}, PostTags: []string{"</em>"}, FragmentSize: 100,
		NumberOfFragments: 5, RequireFieldMatch: true}
	var err error
	for _, k := range sortedKeys(o) {
		val := o[k]
		switch k {
		case "pre_tags":
			if h.PreTags, err = stringList("highlight", k, val); err != nil {
				return nil, err
			}
		case "post_tags":
			if h.PostTags, err = stringList("highlight", k, val); err != nil {
				return nil, err
			}
		case "fragment_size":
			if h.FragmentSize, err = nonNegative(k, val); err != nil {
				return nil, err
			}
		case "number_of_fragments":
			if h.NumberOfFragments, err = nonNegative(k, val); err != nil {
				return nil, err
			}
		case "no_match_size":
			if h.NoMatchSize, err = nonNegative(k, val); err != nil {
				return nil, err
			}
		case "require_field_match":
			h.RequireFieldMatch, _ = val.(bool)
		case "encoder":
			h.Encoder, _ = val.(string)
		case "tags_schema":
			if s, _ := val.(string); s == "styled" {
				h.PreTags = []string{`<em class="hlt1">`}
				h.PostTags = []string{"</em>"}
			}
		case "fields":
			if h.Fields, err = parseHighlightFields(val); err != nil {
				return nil, err
			}
		case "type", "order", "boundary_scanner", "boundary_chars", "boundary_max_scan", "fragmenter",
			"highlight_query", "phrase_limit", "max_analyzed_offset", "boundary_scanner_locale", "force_source", "fragment_offset", "matched_fields":
		default:
			return nil, parsingErr("[highlight] unknown field [%s]", k)
		}
	}
	if len(h.Fields) == 0 {
		return nil, parsingErr("[highlight] requires [fields]")
	}
	if len(h.PreTags) == 0 || len(h.PostTags) == 0 {
		return nil, parsingErr("[highlight] pre_tags and post_tags must not be empty")
	}
	for i := range h.Fields {
		f := &h.Fields[i]
		if f.FragmentSize < 0 {
			f.FragmentSize = h.FragmentSize
		}
		if f.NumberOfFragments < 0 {
			f.NumberOfFragments = h.NumberOfFragments
		}
		if f.NoMatchSize < 0 {
			f.NoMatchSize = h.NoMatchSize
		}
		if f.PreTags == nil {
			f.PreTags = h.PreTags
		}
		if f.PostTags == nil {
			f.PostTags = h.PostTags
		}
	}
	return h, nil
}

func stringList(where, key string, v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, parsingErr("[%s] [%s] must hold strings", where, key)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, parsingErr("[%s] [%s] must be a string or an array of strings", where, key)
}

func parseHighlightFields(v any) ([]HighlightField, error) {
	var objs []map[string]any
	switch x := v.(type) {
	case map[string]any:
		objs = []map[string]any{x}
	case []any:
		for _, e := range x {
			o, ok := e.(map[string]any)
			if !ok {
				return nil, parsingErr("[highlight] fields must be objects")
			}
			objs = append(objs, o)
		}
	default:
		return nil, parsingErr("[highlight] fields must be an object or an array of objects")
	}
	var out []HighlightField
	for _, o := range objs {
		for _, name := range sortedKeys(o) {
			f := HighlightField{Name: name, FragmentSize: -1, NumberOfFragments: -1, NoMatchSize: -1}
			opts, ok := o[name].(map[string]any)
			if !ok {
				return nil, parsingErr("[highlight] options of field [%s] must be an object", name)
			}
			var err error
			for _, k := range sortedKeys(opts) {
				val := opts[k]
				switch k {
				case "fragment_size":
					f.FragmentSize, err = nonNegative(k, val)
				case "number_of_fragments":
					f.NumberOfFragments, err = nonNegative(k, val)
				case "no_match_size":
					f.NoMatchSize, err = nonNegative(k, val)
				case "pre_tags":
					f.PreTags, err = stringList("highlight", k, val)
				case "post_tags":
					f.PostTags, err = stringList("highlight", k, val)
				case "type", "order", "boundary_scanner", "boundary_chars", "boundary_max_scan", "fragmenter",
					"highlight_query", "phrase_limit", "matched_fields", "require_field_match", "force_source", "fragment_offset":
				default:
					return nil, parsingErr("[highlight] field [%s]: unknown option [%s]", name, k)
				}
				if err != nil {
					return nil, err
				}
			}
			out = append(out, f)
		}
	}
	return out, nil
}

// termMatcher says whether an analysed token is one the query looks for.
type termMatcher struct {
	exact    map[string]bool
	prefixes []string
	patterns []*regexp.Regexp
	fuzzy    []fuzzyTerm
}

type fuzzyTerm struct {
	term string
	dist int
}

func (m *termMatcher) empty() bool {
	return m == nil || (len(m.exact) == 0 && len(m.prefixes) == 0 && len(m.patterns) == 0 && len(m.fuzzy) == 0)
}

func (m *termMatcher) matches(tok string) bool {
	if m.exact[tok] {
		return true
	}
	for _, p := range m.prefixes {
		if strings.HasPrefix(tok, p) {
			return true
		}
	}
	for _, r := range m.patterns {
		if r.MatchString(tok) {
			return true
		}
	}
	for _, f := range m.fuzzy {
		if search.LevenshteinDistance(tok, f.term) <= f.dist {
			return true
		}
	}
	return false
}

// highlighter highlights the hits of one search.
type highlighter struct {
	h        *Highlight
	query    Query
	perShard map[*shard]map[string]*termMatcher // field → matcher ("" = any field)
}

func newHighlighter(h *Highlight, q Query) *highlighter {
	if h == nil {
		return nil
	}
	return &highlighter{h: h, query: q, perShard: map[*shard]map[string]*termMatcher{}}
}

// matchers collects, per field, what the query looks for in one shard.
func (hl *highlighter) matchers(s *shard) map[string]*termMatcher {
	if m, ok := hl.perShard[s]; ok {
		return m
	}
	c := &compiler{fields: s.t.Fields, m: s.m, index: s.t.Name}
	out := map[string]*termMatcher{}
	get := func(field string) *termMatcher {
		if field == "*" || field == allField {
			field = ""
		}
		m := out[field]
		if m == nil {
			m = &termMatcher{exact: map[string]bool{}}
			out[field] = m
		}
		return m
	}
	var addText func(field, analyzer, text string, prefixLast bool, fuzz string)
	addText = func(field, analyzer, text string, prefixLast bool, fuzz string) {
		for _, f := range hlFields(c, field) {
			typ, _ := c.fieldType(f)
			if f != allField && typ != Text {
				get(f).exact[text] = true
				continue
			}
			terms, err := c.analyze(f, analyzer, text)
			if err != nil {
				continue
			}
			m := get(f)
			for i, t := range terms {
				switch {
				case prefixLast && i == len(terms)-1:
					m.prefixes = append(m.prefixes, t)
				case fuzz != "" && fuzz != "0":
					m.fuzzy = append(m.fuzzy, fuzzyTerm{t, fuzzDistance(fuzz, t)})
				default:
					m.exact[t] = true
				}
			}
		}
	}
	var walk func(q Query, defaults []string)
	walk = func(q Query, defaults []string) {
		fieldOf := func(f string) string {
			if f == "" && len(defaults) > 0 {
				return strings.Join(defaults, ",")
			}
			return f
		}
		switch x := q.(type) {
		case termQ:
			s, _ := scalarString(x.value)
			get(x.field).exact[s] = true
		case termsQ:
			for _, v := range x.values {
				s, _ := scalarString(v)
				get(x.field).exact[s] = true
			}
		case matchQ:
			addText(fieldOf(x.field), x.analyzer, x.text, false, x.fuzziness)
		case phraseQ:
			addText(fieldOf(x.field), x.analyzer, x.text, x.prefix, "")
		case multiMatchQ:
			fs := x.fields
			if len(fs) == 0 {
				fs = []string{"*"}
			}
			for _, f := range fs {
				name, _ := splitBoost(f)
				addText(name, x.analyzer, x.text, x.typ == "phrase_prefix", x.fuzziness)
			}
		case prefixQ:
			for _, f := range hlFields(c, fieldOf(x.field)) {
				get(f).prefixes = append(get(f).prefixes, x.value)
			}
		case wildcardQ:
			if r, err := regexp.Compile("^(?i:" + wildcardPattern(x.value, false) + ")$"); err == nil {
				for _, f := range hlFields(c, fieldOf(x.field)) {
					get(f).patterns = append(get(f).patterns, r)
				}
			}
		case regexpQ:
			if r, err := regexp.Compile("^(?:" + x.value + ")$"); err == nil {
				get(x.field).patterns = append(get(x.field).patterns, r)
			}
		case fuzzyQ:
			for _, f := range hlFields(c, fieldOf(x.field)) {
				get(f).fuzzy = append(get(f).fuzzy, fuzzyTerm{x.value, fuzzDistance(x.fuzziness, x.value)})
			}
		case boolQ:
			for _, l := range [][]Query{x.must, x.should, x.filter} {
				for _, sub := range l {
					walk(sub, defaults)
				}
			}
		case constantScoreQ:
			walk(x.filter, defaults)
		case queryStringQ:
			parsed, err := parseQS(x.query, x.simple)
			if err != nil {
				return
			}
			d := x.fields
			if len(d) == 0 && x.defaultField != "" {
				d = []string{x.defaultField}
			}
			walk(parsed, d)
		case qsQ:
			for _, cl := range x.clauses {
				if cl.occur != '-' {
					walk(cl.q, defaults)
				}
			}
		case qsAnd:
			walk(x.qsQ, defaults)
		case qsWrapped:
			walk(x.q, defaults)
		}
	}
	walk(hl.query, nil)
	hl.perShard[s] = out
	return out
}

// hlFields expands a comma-joined list of field names or patterns.
func hlFields(c *compiler, spec string) []string {
	var out []string
	for _, f := range strings.Split(spec, ",") {
		name, _ := splitBoost(f)
		if name == "" || name == "*" || name == allField {
			out = append(out, allField)
			continue
		}
		out = append(out, c.expand(name)...)
	}
	return out
}

func fuzzDistance(fuzz, term string) int {
	switch fuzz {
	case "1":
		return 1
	case "2":
		return 2
	case "AUTO":
		n := utf8.RuneCountInString(term)
		switch {
		case n <= 2:
			return 0
		case n <= 5:
			return 1
		}
		return 2
	}
	return 0
}

// highlight returns the highlighted fragments of one hit.
func (hl *highlighter) highlight(s *shard, src []byte) map[string][]string {
	if hl == nil {
		return nil
	}
	ms := hl.matchers(s)
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil
	}
	c := &compiler{fields: s.t.Fields, m: s.m}
	out := map[string][]string{}
	for _, hf := range hl.h.Fields {
		var names []string
		if strings.Contains(hf.Name, "*") {
			names = c.expand(hf.Name)
		} else {
			names = []string{hf.Name}
		}
		for _, name := range names {
			typ, ok := c.fieldType(name)
			if !ok || (typ != Text && typ != Keyword) {
				continue
			}
			m := &termMatcher{exact: map[string]bool{}}
			merge(m, ms[name])
			merge(m, ms[""])
			if !hl.h.RequireFieldMatch {
				for _, other := range ms {
					merge(m, other)
				}
			}
			values := sourceValues(doc, name)
			frags := hl.fragments(c, name, typ, values, m, hf)
			if len(frags) > 0 {
				out[name] = frags
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func merge(dst, src *termMatcher) {
	if src == nil {
		return
	}
	for k := range src.exact {
		dst.exact[k] = true
	}
	dst.prefixes = append(dst.prefixes, src.prefixes...)
	dst.patterns = append(dst.patterns, src.patterns...)
	dst.fuzzy = append(dst.fuzzy, src.fuzzy...)
}

// sourceValues returns the string values at a dotted path of a source
// (a multi-field such as title.keyword reads title).
func sourceValues(doc map[string]any, p string) []string {
	var out []string
	var walk func(v any, parts []string)
	walk = func(v any, parts []string) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e, parts)
			}
			return
		case map[string]any:
			if len(parts) == 0 {
				return
			}
			// keys may themselves contain dots
			for i := len(parts); i >= 1; i-- {
				if sub, ok := x[strings.Join(parts[:i], ".")]; ok {
					walk(sub, parts[i:])
				}
			}
			return
		}
		if len(parts) == 0 {
			if s, ok := scalarString(v); ok {
				out = append(out, s)
			}
		}
	}
	walk(doc, strings.Split(p, "."))
	if len(out) == 0 {
		if i := strings.LastIndex(p, "."); i > 0 {
			return sourceValues(doc, p[:i])
		}
	}
	return out
}

type span struct{ start, end int }

func (hl *highlighter) fragments(c *compiler, field string, typ FieldType, values []string, m *termMatcher, hf HighlightField) []string {
	var frags []string
	for _, v := range values {
		var spans []span
		var tokens []span
		if typ == Keyword {
			if !m.empty() && m.matches(v) {
				spans = []span{{0, len(v)}}
			}
			tokens = []span{{0, len(v)}}
		} else {
			a := c.analyzerNamed(c.analyzerFor(field, ""))
			if a == nil {
				continue
			}
			for _, tok := range a.Analyze([]byte(v)) {
				tokens = append(tokens, span{tok.Start, tok.End})
				if !m.empty() && m.matches(string(tok.Term)) {
					spans = append(spans, span{tok.Start, tok.End})
				}
			}
		}
		if len(spans) == 0 {
			continue
		}
		sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
		if hf.NumberOfFragments == 0 || len(v) <= hf.FragmentSize {
			frags = append(frags, mark(v, 0, len(v), spans, hf, hl.h.Encoder == "html"))
			continue
		}
		// cut the value into fragments of about fragment_size at token
		// boundaries and keep those with a match
		start := 0
		for start < len(v) {
			end := start + hf.FragmentSize
			if end >= len(v) {
				end = len(v)
			} else {
				for _, t := range tokens {
					if t.start < end && t.end > end {
						end = t.end
						break
					}
				}
			}
			has := false
			for _, sp := range spans {
				if sp.start >= start && sp.end <= end {
					has = true
					break
				}
			}
			if has {
				frags = append(frags, strings.TrimSpace(mark(v, start, end, spans, hf, hl.h.Encoder == "html")))
			}
			start = end
		}
	}
	if hf.NumberOfFragments > 0 && len(frags) > hf.NumberOfFragments {
		frags = frags[:hf.NumberOfFragments]
	}
	return frags
}

// mark wraps the spans inside v[start:end] in tags (escaping the text
// for the html encoder).
func mark(v string, start, end int, spans []span, hf HighlightField, escape bool) string {
	text := func(s string) string {
		if escape {
			return html.EscapeString(s)
		}
		return s
	}
	var b strings.Builder
	pos := start
	for _, sp := range spans {
		if sp.start < pos || sp.end > end {
			continue
		}
		b.WriteString(text(v[pos:sp.start]))
		b.WriteString(hf.PreTags[0])
		b.WriteString(text(v[sp.start:sp.end]))
		b.WriteString(hf.PostTags[0])
		pos = sp.end
	}
	b.WriteString(text(v[pos:end]))
	return b.String()
}
