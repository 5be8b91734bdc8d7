package dsl

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"

	"paddock/agents/node/eserr"
)

// allField is bleve's composite field holding every text and keyword field.
const allField = "_all"

// compiler turns parsed queries into bleve queries for one target.
type compiler struct {
	fields Fields
	m      mapping.IndexMapping
	index  string // the target's name, for _index queries
	now    time.Time
	// defaults are the fields of a query_string clause without a field.
	defaults []string
}

func queryShardErr(format string, args ...any) error {
	return eserr.New(http.StatusBadRequest, "query_shard_exception", format, args...)
}

// bleveAnalyzer maps an Elasticsearch analyzer name to the name the node
// registers in the bleve mapping (the same names; "" is standard).
func bleveAnalyzer(es string) string {
	switch es {
	case "", "default":
		return "standard"
	}
	return es
}

// analyzerNamed finds an analyzer in the index mapping, falling back to
// bleve's own names for a mapping that did not register Elasticsearch's.
func (c *compiler) analyzerNamed(name string) analysis.Analyzer {
	if a := c.m.AnalyzerNamed(name); a != nil {
		return a
	}
	if name == "english" {
		return c.m.AnalyzerNamed("en")
	}
	return nil
}

func (c *compiler) analyzerFor(field, override string) string {
	if override != "" {
		return bleveAnalyzer(override)
	}
	if field == allField {
		return "standard"
	}
	return bleveAnalyzer(c.fields.Analyzer(field))
}

func (c *compiler) fieldType(path string) (FieldType, bool) {
	if c.fields == nil {
		return "", false
	}
	return c.fields.Field(path)
}

func none() query.Query { return query.NewMatchNoneQuery() }

func boosted(q query.Query, b float64) query.Query {
	if b != 1 {
		if bq, ok := q.(query.BoostableQuery); ok {
			bq.SetBoost(b)
		}
	}
	return q
}

func (c *compiler) compile(q Query) (query.Query, error) {
	switch q := q.(type) {
	case nil:
		return query.NewMatchAllQuery(), nil
	case matchAllQ:
		return boosted(query.NewMatchAllQuery(), q.boost), nil
	case matchNoneQ:
		return none(), nil
	case termQ:
		return c.term(q.field, q.value, q.boost, q.caseInsensitive)
	case termsQ:
		if q.field == "_id" {
			ids := make([]string, 0, len(q.values))
			for _, v := range q.values {
				s, _ := scalarString(v)
				ids = append(ids, s)
			}
			return boosted(query.NewDocIDQuery(ids), q.boost), nil
		}
		var parts []query.Query
		for _, v := range q.values {
			p, err := c.term(q.field, v, 1, false)
			if err != nil {
				return nil, err
			}
			parts = append(parts, p)
		}
		if len(parts) == 0 {
			return none(), nil
		}
		return constantScore(query.NewDisjunctionQuery(parts), q.boost), nil
	case matchQ:
		return c.match(q)
	case phraseQ:
		return c.phrase(q)
	case multiMatchQ:
		return c.multiMatch(q)
	case rangeQ:
		return c.rangeQuery(q)
	case existsQ:
		return c.exists(q.field)
	case prefixQ:
		return c.perField(q.field, func(f string) (query.Query, error) {
			if q.caseInsensitive && hasLetters(q.value) {
				return boosted(newRegexp(f, ciPattern(regexp.QuoteMeta(q.value))+".*"), q.boost), nil
			}
			p := query.NewPrefixQuery(q.value)
			p.SetField(f)
			return boosted(p, q.boost), nil
		})
	case wildcardQ:
		return c.perField(q.field, func(f string) (query.Query, error) {
			if q.caseInsensitive && hasLetters(q.value) {
				return boosted(newRegexp(f, wildcardPattern(q.value, true)), q.boost), nil
			}
			w := query.NewWildcardQuery(q.value)
			w.SetField(f)
			return boosted(w, q.boost), nil
		})
	case regexpQ:
		if _, err := regexp.Compile(q.value); err != nil {
			return nil, queryShardErr("failed to create query: invalid regular expression [%s]: %v", q.value, err)
		}
		return c.perField(q.field, func(f string) (query.Query, error) {
			return boosted(newRegexp(f, q.value), q.boost), nil
		})
	case fuzzyQ:
		return c.perField(q.field, func(f string) (query.Query, error) {
			fq := query.NewFuzzyQuery(q.value)
			fq.SetField(f)
			fq.SetPrefix(q.prefixLen)
			setFuzziness(fq, q.fuzziness)
			return boosted(fq, q.boost), nil
		})
	case idsQ:
		return query.NewDocIDQuery(q.values), nil
	case boolQ:
		return c.boolQuery(q)
	case constantScoreQ:
		f, err := c.compile(q.filter)
		if err != nil {
			return nil, err
		}
		return constantScore(f, q.boost), nil
	case queryStringQ:
		return c.queryString(q)
	case qsQ:
		return c.qsGroup(q, false)
	case qsWrapped:
		return c.compileQS(q.q, 1)
	}
	return nil, parsingErr("unknown query [%s]", q.name())
}

func hasLetters(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}

func newRegexp(field, pattern string) query.Query {
	r := query.NewRegexpQuery(pattern)
	r.SetField(field)
	return r
}

// ciPattern makes every letter of a (quoted) pattern match both cases.
func ciPattern(p string) string {
	var b strings.Builder
	for _, r := range p {
		lo, up := unicode.ToLower(r), unicode.ToUpper(r)
		if lo != up {
			b.WriteString("[" + string(lo) + string(up) + "]")
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func wildcardPattern(w string, ci bool) string {
	var b strings.Builder
	for _, r := range w {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			s := regexp.QuoteMeta(string(r))
			if ci {
				s = ciPattern(s)
			}
			b.WriteString(s)
		}
	}
	return b.String()
}

type fuzzySetter interface {
	SetFuzziness(int)
	SetAutoFuzziness(bool)
}

func setFuzziness(q fuzzySetter, f string) {
	switch f {
	case "":
	case "AUTO":
		q.SetAutoFuzziness(true)
	default:
		n, _ := strconv.Atoi(f)
		q.SetFuzziness(n)
	}
}

// constScoreQuery scores every match with a fixed score.
type constScoreQuery struct {
	q     query.Query
	score float64
}

func constantScore(q query.Query, score float64) query.Query {
	return &constScoreQuery{q: q, score: score}
}

func (q *constScoreQuery) Searcher(ctx context.Context, i index.IndexReader, m mapping.IndexMapping, options search.SearcherOptions) (search.Searcher, error) {
	inner := options
	inner.Score = "none"
	inner.Explain = false
	s, err := q.q.Searcher(ctx, i, m, inner)
	if err != nil {
		return nil, err
	}
	if options.Score == "none" {
		return s, nil
	}
	score := q.score
	return searcher.NewCustomScoreSearcher(ctx, s, func(context.Context, *search.DocumentMatch) (float64, error) {
		return score, nil
	}, nil, i, nil, false), nil
}

// existsQuery matches documents with any term in a field.
type existsQuery struct{ field string }

func (q *existsQuery) Searcher(ctx context.Context, i index.IndexReader, m mapping.IndexMapping, options search.SearcherOptions) (search.Searcher, error) {
	return searcher.NewTermRangeSearcher(ctx, i, nil, nil, nil, nil, q.field, 1, options)
}

// perField applies a query to a field, or to every field a pattern matches.
func (c *compiler) perField(field string, build func(f string) (query.Query, error)) (query.Query, error) {
	fields := c.expand(field)
	if len(fields) == 0 {
		return none(), nil
	}
	var parts []query.Query
	for _, f := range fields {
		q, err := build(f)
		if err != nil {
			return nil, err
		}
		parts = append(parts, q)
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	return query.NewDisjunctionQuery(parts), nil
}

// expand resolves a field name or pattern to the mapped leaf fields. "" is
// the query_string default fields; "*" (or all of them) is bleve's _all.
func (c *compiler) expand(field string) []string {
	if field == "" {
		if len(c.defaults) == 0 {
			return []string{allField}
		}
		var out []string
		for _, d := range c.defaults {
			out = append(out, c.expand(d)...)
		}
		return out
	}
	f, _ := splitBoost(field)
	if f == "*" || f == allField {
		return []string{allField}
	}
	if strings.Contains(f, "*") {
		if c.fields == nil {
			return nil
		}
		var out []string
		for _, p := range c.fields.Match(f) {
			if t, ok := c.fieldType(p); ok && t != Object {
				out = append(out, p)
			}
		}
		return out
	}
	if _, ok := c.fieldType(f); ok {
		return []string{f}
	}
	return nil
}

func splitBoost(field string) (string, float64) {
	f, b, ok := strings.Cut(field, "^")
	if !ok {
		return field, 1
	}
	boost, err := strconv.ParseFloat(b, 64)
	if err != nil {
		return f, 1
	}
	return f, boost
}

// term builds an exact-value query on one field.
func (c *compiler) term(field string, v any, boost float64, ci bool) (query.Query, error) {
	s, _ := scalarString(v)
	switch field {
	case "_id":
		return boosted(query.NewDocIDQuery([]string{s}), boost), nil
	case "_index":
		if s == c.index {
			return boosted(query.NewMatchAllQuery(), boost), nil
		}
		return none(), nil
	}
	typ, ok := c.fieldType(field)
	if !ok {
		return none(), nil
	}
	switch {
	case typ.Numeric():
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, queryShardErr("failed to create query: For input string: \"%s\" (field [%s] is of type [%s])", s, field, typ)
		}
		yes := true
		q := query.NewNumericRangeInclusiveQuery(&f, &f, &yes, &yes)
		q.SetField(field)
		return boosted(q, boost), nil
	case typ == Date:
		t, err := parseDateMath(s, "", time.UTC, c.now, false)
		if err != nil {
			return nil, queryShardErr("failed to create query: %v", err)
		}
		end, _ := parseDateMath(s, "", time.UTC, c.now, true)
		yes := true
		q := query.NewDateRangeInclusiveQuery(t, end, &yes, &yes)
		q.SetField(field)
		return boosted(q, boost), nil
	case typ == Boolean:
		b, err := parseBoolValue(v)
		if err != nil {
			return nil, queryShardErr("failed to create query: %v", err)
		}
		q := query.NewBoolFieldQuery(b)
		q.SetField(field)
		return boosted(q, boost), nil
	}
	if ci && hasLetters(s) {
		return boosted(newRegexp(field, ciPattern(regexp.QuoteMeta(s))), boost), nil
	}
	q := query.NewTermQuery(s)
	q.SetField(field)
	return boosted(q, boost), nil
}

func parseBoolValue(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch x {
		case "true":
			return true, nil
		case "false", "":
			return false, nil
		}
	}
	return false, fmt.Errorf("can't parse boolean value [%v], expected [true] or [false]", v)
}

// analyze splits text into terms with a field's analyzer.
func (c *compiler) analyze(field, analyzer, text string) ([]string, error) {
	name := c.analyzerFor(field, analyzer)
	a := c.analyzerNamed(name)
	if a == nil {
		return nil, eserr.BadRequest("failed to find analyzer [%s]", analyzer)
	}
	var terms []string
	for _, tok := range a.Analyze([]byte(text)) {
		terms = append(terms, string(tok.Term))
	}
	return terms, nil
}

func (c *compiler) match(q matchQ) (query.Query, error) {
	if q.field == "_id" || q.field == "_index" {
		return c.term(q.field, q.text, q.boost, false)
	}
	fields := c.expand(q.field)
	if len(fields) == 0 {
		return none(), nil
	}
	var parts []query.Query
	for _, f := range fields {
		p, err := c.matchField(q, f)
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	return query.NewDisjunctionQuery(parts), nil
}

func (c *compiler) matchField(q matchQ, f string) (query.Query, error) {
	typ, _ := c.fieldType(f)
	if f != allField && typ != Text {
		return c.term(f, q.text, q.boost, false)
	}
	terms, err := c.analyze(f, q.analyzer, q.text)
	if err != nil {
		return nil, err
	}
	if len(terms) == 0 {
		if q.zeroAll {
			return query.NewMatchAllQuery(), nil
		}
		return none(), nil
	}
	var parts []query.Query
	for _, t := range terms {
		if q.fuzziness != "" && q.fuzziness != "0" {
			fq := query.NewFuzzyQuery(t)
			fq.SetField(f)
			fq.SetPrefix(q.prefixLen)
			setFuzziness(fq, q.fuzziness)
			parts = append(parts, fq)
			continue
		}
		tq := query.NewTermQuery(t)
		tq.SetField(f)
		parts = append(parts, tq)
	}
	if len(parts) == 1 {
		return boosted(parts[0], q.boost), nil
	}
	if q.and {
		return boosted(query.NewConjunctionQuery(parts), q.boost), nil
	}
	d := query.NewDisjunctionQuery(parts)
	if q.msm != "" {
		n, _ := resolveMSM(q.msm, len(parts))
		d.SetMin(float64(n))
	}
	return boosted(d, q.boost), nil
}

func (c *compiler) phrase(q phraseQ) (query.Query, error) {
	return c.perField(q.field, func(f string) (query.Query, error) {
		typ, _ := c.fieldType(f)
		if f != allField && typ != Text {
			if q.prefix {
				p := query.NewPrefixQuery(q.text)
				p.SetField(f)
				return boosted(p, q.boost), nil
			}
			return c.term(f, q.text, q.boost, false)
		}
		terms, err := c.analyze(f, q.analyzer, q.text)
		if err != nil {
			return nil, err
		}
		if len(terms) == 0 {
			return none(), nil
		}
		var last query.Query
		if q.prefix {
			p := query.NewPrefixQuery(terms[len(terms)-1])
			p.SetField(f)
			last = p
			terms = terms[:len(terms)-1]
			if len(terms) == 0 {
				return boosted(last, q.boost), nil
			}
		}
		var base query.Query
		if q.slop > 0 {
			// bleve's phrase searcher has no slop: every term must occur.
			var parts []query.Query
			for _, t := range terms {
				tq := query.NewTermQuery(t)
				tq.SetField(f)
				parts = append(parts, tq)
			}
			base = query.NewConjunctionQuery(parts)
		} else {
			pq := query.NewPhraseQuery(terms, f)
			base = pq
		}
		if last != nil {
			base = query.NewConjunctionQuery([]query.Query{base, last})
		}
		return boosted(base, q.boost), nil
	})
}

func (c *compiler) multiMatch(q multiMatchQ) (query.Query, error) {
	specs := q.fields
	if len(specs) == 0 {
		specs = c.defaults
		if len(specs) == 0 {
			specs = []string{"*"}
		}
	}
	var parts []query.Query
	for _, spec := range specs {
		name, boost := splitBoost(spec)
		for _, f := range c.expand(name) {
			var p query.Query
			var err error
			switch q.typ {
			case "phrase", "phrase_prefix":
				p, err = c.phrase(phraseQ{field: f, text: q.text, analyzer: q.analyzer, boost: boost, prefix: q.typ == "phrase_prefix"})
			default:
				p, err = c.matchField(matchQ{field: f, text: q.text, and: q.and, fuzziness: q.fuzziness,
					msm: q.msm, analyzer: q.analyzer, boost: boost}, f)
			}
			if err != nil {
				return nil, err
			}
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return none(), nil
	}
	if len(parts) == 1 {
		return boosted(parts[0], q.boost), nil
	}
	return boosted(query.NewDisjunctionQuery(parts), q.boost), nil
}

func (c *compiler) rangeQuery(q rangeQ) (query.Query, error) {
	typ, ok := c.fieldType(q.field)
	if !ok {
		return none(), nil
	}
	yes, no := true, false
	incl := func(b bool) *bool {
		if b {
			return &yes
		}
		return &no
	}
	switch {
	case typ.Numeric():
		var lo, hi *float64
		var loIn, hiIn bool
		for _, b := range []struct {
			v    any
			low  bool
			incl bool
		}{{q.gt, true, false}, {q.gte, true, true}, {q.lt, false, false}, {q.lte, false, true}} {
			if b.v == nil {
				continue
			}
			f, err := toFloat(b.v)
			if err != nil {
				return nil, queryShardErr("failed to create query: For input string: %s (field [%s] is of type [%s])", jsonString(b.v), q.field, typ)
			}
			if b.low {
				lo, loIn = &f, b.incl
			} else {
				hi, hiIn = &f, b.incl
			}
		}
		if lo == nil && hi == nil {
			return c.exists(q.field)
		}
		if lo == nil {
			v := -math.MaxFloat64
			lo, loIn = &v, true
		}
		if hi == nil {
			v := math.MaxFloat64
			hi, hiIn = &v, true
		}
		r := query.NewNumericRangeInclusiveQuery(lo, hi, incl(loIn), incl(hiIn))
		r.SetField(q.field)
		return boosted(r, q.boost), nil
	case typ == Date:
		loc, err := parseTimeZone(q.timeZone)
		if err != nil {
			return nil, parsingErr("[range] query: %v", err)
		}
		start, end := query.MinRFC3339CompatibleTime, query.MaxRFC3339CompatibleTime
		startIn, endIn := true, true
		bound := func(v any, roundUp bool) (time.Time, error) {
			s, _ := scalarString(v)
			t, err := parseDateMath(s, q.format, loc, c.now, roundUp)
			if err != nil {
				return t, queryShardErr("failed to create query: %v", err)
			}
			return t, nil
		}
		if q.gte != nil {
			if start, err = bound(q.gte, false); err != nil {
				return nil, err
			}
		}
		if q.gt != nil {
			if start, err = bound(q.gt, true); err != nil {
				return nil, err
			}
			startIn = false
		}
		if q.lte != nil {
			if end, err = bound(q.lte, true); err != nil {
				return nil, err
			}
		}
		if q.lt != nil {
			if end, err = bound(q.lt, false); err != nil {
				return nil, err
			}
			endIn = false
		}
		r := query.NewDateRangeInclusiveQuery(start, end, incl(startIn), incl(endIn))
		r.SetField(q.field)
		return boosted(r, q.boost), nil
	}
	var lo, hi string
	loIn, hiIn := true, true
	if q.gte != nil {
		lo, _ = scalarString(q.gte)
	}
	if q.gt != nil {
		lo, _ = scalarString(q.gt)
		loIn = false
	}
	if q.lte != nil {
		hi, _ = scalarString(q.lte)
	}
	if q.lt != nil {
		hi, _ = scalarString(q.lt)
		hiIn = false
	}
	if lo == "" && hi == "" {
		return c.exists(q.field)
	}
	r := query.NewTermRangeInclusiveQuery(lo, hi, incl(loIn), incl(hiIn))
	r.SetField(q.field)
	return boosted(r, q.boost), nil
}

func (c *compiler) exists(field string) (query.Query, error) {
	switch field {
	case "_id", "_index", "_source":
		return query.NewMatchAllQuery(), nil
	}
	typ, ok := c.fieldType(field)
	var fields []string
	if ok && typ != Object {
		fields = []string{field}
	} else if c.fields != nil {
		for _, p := range c.fields.Match(field + ".*") {
			if t, ok := c.fieldType(p); ok && t != Object {
				fields = append(fields, p)
			}
		}
	}
	if strings.Contains(field, "*") {
		fields = c.expand(field)
	}
	var parts []query.Query
	for _, f := range fields {
		t, _ := c.fieldType(f)
		switch {
		case t.Numeric():
			lo, hi := -math.MaxFloat64, math.MaxFloat64
			yes := true
			r := query.NewNumericRangeInclusiveQuery(&lo, &hi, &yes, &yes)
			r.SetField(f)
			parts = append(parts, r)
		case t == Date:
			yes := true
			r := query.NewDateRangeInclusiveQuery(query.MinRFC3339CompatibleTime, query.MaxRFC3339CompatibleTime, &yes, &yes)
			r.SetField(f)
			parts = append(parts, r)
		default:
			parts = append(parts, &existsQuery{field: f})
		}
	}
	switch len(parts) {
	case 0:
		return none(), nil
	case 1:
		return constantScore(parts[0], 1), nil
	}
	return constantScore(query.NewDisjunctionQuery(parts), 1), nil
}

func (c *compiler) boolQuery(q boolQ) (query.Query, error) {
	list := func(qs []Query) ([]query.Query, error) {
		var out []query.Query
		for _, x := range qs {
			cq, err := c.compile(x)
			if err != nil {
				return nil, err
			}
			out = append(out, cq)
		}
		return out, nil
	}
	must, err := list(q.must)
	if err != nil {
		return nil, err
	}
	should, err := list(q.should)
	if err != nil {
		return nil, err
	}
	filter, err := list(q.filter)
	if err != nil {
		return nil, err
	}
	mustNot, err := list(q.mustNot)
	if err != nil {
		return nil, err
	}
	// minimum_should_match defaults to 1 with only should clauses, else 0.
	msm := 0
	if len(should) > 0 && len(must) == 0 && len(filter) == 0 {
		msm = 1
	}
	if q.msm != "" {
		msm, _ = resolveMSM(q.msm, len(should))
	}
	if len(should) > 0 && msm > len(should) {
		return none(), nil
	}
	b := query.NewBooleanQuery(nil, nil, nil)
	if len(must) > 0 {
		b.AddMust(must...)
	}
	if len(should) > 0 {
		if msm == 0 {
			// optional: scores only. bleve requires a should clause when
			// there is nothing else to drive the search.
			if len(must) == 0 {
				b.AddMust(query.NewMatchAllQuery())
			}
			d := query.NewDisjunctionQuery(should)
			b.Should = d
		} else {
			d := query.NewDisjunctionQuery(should)
			d.SetMin(float64(msm))
			if len(must) == 0 {
				b.Should = d
			} else {
				b.AddMust(d)
			}
		}
	}
	if len(mustNot) > 0 {
		b.AddMustNot(mustNot...)
	}
	if len(filter) > 0 {
		if len(filter) == 1 {
			b.AddFilter(filter[0])
		} else {
			b.AddFilter(query.NewConjunctionQuery(filter))
		}
	}
	if b.Must == nil && b.Should == nil && b.MustNot == nil && b.Filter == nil {
		return boosted(query.NewMatchAllQuery(), q.boost), nil
	}
	if len(q.must) == 0 && len(q.should) == 0 {
		// filters and exclusions alone do not score
		return constantScore(b, 0), nil
	}
	return boosted(b, q.boost), nil
}

func (c *compiler) queryString(q queryStringQ) (query.Query, error) {
	parsed, err := parseQS(q.query, q.simple)
	if err != nil {
		return nil, err
	}
	sub := *c
	sub.defaults = q.fields
	if len(sub.defaults) == 0 && q.defaultField != "" {
		sub.defaults = []string{q.defaultField}
	}
	g := parsed.(qsQ)
	out, err := sub.qsGroup(g, q.and)
	if err != nil {
		return nil, err
	}
	return boosted(out, q.boost), nil
}

// qsGroup builds a bool query from query_string clauses. A field-less
// clause over several default fields matches any of them.
func (c *compiler) qsGroup(g qsQ, and bool) (query.Query, error) {
	var must, should, mustNot []Query
	for _, cl := range g.clauses {
		q := cl.q
		if sub, ok := q.(qsQ); ok {
			q = qsAnd{qsQ: sub, and: and}
		}
		switch cl.occur {
		case '+':
			must = append(must, q)
		case '-':
			mustNot = append(mustNot, q)
		case 'o':
			should = append(should, q)
		default:
			if and {
				must = append(must, q)
			} else {
				should = append(should, q)
			}
		}
	}
	if len(must) == 0 && len(should) == 0 && len(mustNot) > 0 {
		must = append(must, matchAllQ{boost: 1})
	}
	if len(must) == 1 && len(should) == 0 && len(mustNot) == 0 {
		return c.compileQS(must[0], g.boost)
	}
	if len(must) == 0 && len(should) == 1 && len(mustNot) == 0 {
		return c.compileQS(should[0], g.boost)
	}
	if len(g.clauses) == 0 {
		return none(), nil
	}
	return c.compileQS(boolQ{must: must, should: should, mustNot: mustNot, boost: g.boost}, 1)
}

// qsAnd carries the default operator into nested groups.
type qsAnd struct {
	qsQ
	and bool
}

func (c *compiler) compileQS(q Query, boost float64) (query.Query, error) {
	var out query.Query
	var err error
	switch x := q.(type) {
	case qsAnd:
		out, err = c.qsGroup(x.qsQ, x.and)
	case boolQ:
		// compile children through compileQS so that groups keep the operator
		out, err = c.qsBool(x)
	case rangeQ:
		out, err = c.perField(x.field, func(f string) (query.Query, error) {
			y := x
			y.field = f
			return c.rangeQuery(y)
		})
	case matchQ, phraseQ:
		out, err = c.compile(x)
		if err != nil {
			if e, ok := err.(*eserr.Error); ok && e.Type == "query_shard_exception" {
				return none(), nil // lenient over numeric default fields
			}
		}
	default:
		out, err = c.compile(x)
	}
	if err != nil {
		return nil, err
	}
	return boosted(out, boost), nil
}

func (c *compiler) qsBool(q boolQ) (query.Query, error) {
	wrap := func(qs []Query) []Query {
		out := make([]Query, len(qs))
		for i, x := range qs {
			out[i] = qsWrapped{x}
		}
		return out
	}
	return c.boolQuery(boolQ{must: wrap(q.must), should: wrap(q.should), mustNot: wrap(q.mustNot), msm: q.msm, boost: q.boost})
}

// qsWrapped is a query_string clause compiled through compileQS.
type qsWrapped struct{ q Query }

func (qsWrapped) name() string { return "query_string" }
