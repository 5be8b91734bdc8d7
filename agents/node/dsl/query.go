package dsl

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"paddock/agents/node/eserr"
)

// Query is one parsed node of the query DSL. It is compiled against each
// target's mapping when the search runs (the same field may be a keyword in
// one index and a number in another).
type Query interface{ name() string }

type matchAllQ struct{ boost float64 }
type matchNoneQ struct{}

type termQ struct {
	field           string
	value           any // string, json.Number or bool
	boost           float64
	caseInsensitive bool
}

type termsQ struct {
	field  string
	values []any
	boost  float64
}

type matchQ struct {
	field     string
	text      string
	and       bool   // operator and
	fuzziness string // "", "AUTO", "0", "1", "2"
	prefixLen int
	msm       string // minimum_should_match
	analyzer  string
	boost     float64
	zeroAll   bool // zero_terms_query: all
}

type phraseQ struct {
	field    string
	text     string
	slop     int
	analyzer string
	boost    float64
	prefix   bool // match_phrase_prefix
}

type multiMatchQ struct {
	fields    []string // may hold patterns and ^boosts
	text      string
	typ       string
	and       bool
	fuzziness string
	msm       string
	analyzer  string
	boost     float64
}

type rangeQ struct {
	field                      string
	gt, gte, lt, lte           any
	format, timeZone, relation string
	boost                      float64
}

type existsQ struct{ field string }

type prefixQ struct {
	field, value    string
	boost           float64
	caseInsensitive bool
}

type wildcardQ struct {
	field, value    string
	boost           float64
	caseInsensitive bool
}

type regexpQ struct {
	field, value string
	boost        float64
}

type fuzzyQ struct {
	field, value string
	fuzziness    string
	prefixLen    int
	boost        float64
}

type idsQ struct{ values []string }

type boolQ struct {
	must, should, filter, mustNot []Query
	msm                           string
	boost                         float64
}

type constantScoreQ struct {
	filter Query
	boost  float64
}

type queryStringQ struct {
	query           string
	fields          []string
	defaultField    string
	and             bool
	analyzeWildcard bool
	lenient         bool
	boost           float64
	simple          bool // simple_query_string
}

func (matchAllQ) name() string      { return "match_all" }
func (matchNoneQ) name() string     { return "match_none" }
func (termQ) name() string          { return "term" }
func (termsQ) name() string         { return "terms" }
func (matchQ) name() string         { return "match" }
func (phraseQ) name() string        { return "match_phrase" }
func (multiMatchQ) name() string    { return "multi_match" }
func (rangeQ) name() string         { return "range" }
func (existsQ) name() string        { return "exists" }
func (prefixQ) name() string        { return "prefix" }
func (wildcardQ) name() string      { return "wildcard" }
func (regexpQ) name() string        { return "regexp" }
func (fuzzyQ) name() string         { return "fuzzy" }
func (idsQ) name() string           { return "ids" }
func (boolQ) name() string          { return "bool" }
func (constantScoreQ) name() string { return "constant_score" }
func (queryStringQ) name() string   { return "query_string" }

// maxQueryDepth bounds the nesting of compound queries (Elasticsearch's
// indices.query.bool.max_nested_depth is 30).
const maxQueryDepth = 30

func parsingErr(format string, args ...any) error { return eserr.Parsing(format, args...) }

// parseQuery parses one query object {"<type>": {...}}.
func parseQuery(v any, depth int) (Query, error) {
	if depth > maxQueryDepth {
		return nil, parsingErr("query nested too deeply: more than %d levels", maxQueryDepth)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, parsingErr("[_na] query malformed, must start with start_object")
	}
	if len(obj) == 0 {
		return nil, parsingErr("query malformed, empty clause found")
	}
	if len(obj) > 1 {
		keys := sortedKeys(obj)
		return nil, parsingErr("[%s] malformed query, expected [END_OBJECT] but found [FIELD_NAME] (found [%s])", keys[0], keys[1])
	}
	for typ, body := range obj {
		return parseTyped(typ, body, depth)
	}
	panic("unreachable")
}

func parseTyped(typ string, body any, depth int) (Query, error) {
	switch typ {
	case "match_all":
		o, err := object(typ, body)
		if err != nil {
			return nil, err
		}
		b, err := boostOf(typ, o)
		return matchAllQ{boost: b}, err
	case "match_none":
		if _, err := object(typ, body); err != nil {
			return nil, err
		}
		return matchNoneQ{}, nil
	case "term":
		return parseTerm(body)
	case "terms":
		return parseTerms(body)
	case "match", "match_bool_prefix":
		return parseMatch(typ, body)
	case "match_phrase", "match_phrase_prefix":
		return parsePhrase(typ, body)
	case "multi_match":
		return parseMultiMatch(body)
	case "range":
		return parseRange(body)
	case "exists":
		o, err := objectWith(typ, body, "field", "boost", "_name")
		if err != nil {
			return nil, err
		}
		f, _ := o["field"].(string)
		if f == "" {
			return nil, parsingErr("[exists] must be provided with a [field]")
		}
		return existsQ{field: f}, nil
	case "prefix", "wildcard", "regexp", "fuzzy":
		return parseSingleValue(typ, body)
	case "ids":
		o, err := objectWith(typ, body, "values", "boost", "_name")
		if err != nil {
			return nil, err
		}
		arr, ok := o["values"].([]any)
		if !ok && o["values"] != nil {
			return nil, parsingErr("[ids] values must be an array")
		}
		q := idsQ{}
		for _, v := range arr {
			s, ok := scalarString(v)
			if !ok {
				return nil, parsingErr("[ids] values must be strings, got %s", jsonKind(v))
			}
			q.values = append(q.values, s)
		}
		return q, nil
	case "bool":
		return parseBool(body, depth)
	case "constant_score":
		o, err := objectWith(typ, body, "filter", "boost", "_name")
		if err != nil {
			return nil, err
		}
		if o["filter"] == nil {
			return nil, parsingErr("[constant_score] requires a 'filter' element")
		}
		f, err := parseQuery(o["filter"], depth+1)
		if err != nil {
			return nil, err
		}
		b, err := boostOf(typ, o)
		return constantScoreQ{filter: f, boost: b}, err
	case "query_string", "simple_query_string":
		return parseQueryString(typ, body)
	}
	return nil, parsingErr("unknown query [%s]", typ)
}

// objectWith checks that a query body is a JSON object with only the
// given keys.
func objectWith(typ string, body any, allowed ...string) (map[string]any, error) {
	o, err := object(typ, body)
	if err != nil {
		return nil, err
	}
	return o, onlyKeys(typ, o, allowed...)
}

// object checks that a query body is a JSON object.
func object(typ string, body any) (map[string]any, error) {
	o, ok := body.(map[string]any)
	if !ok {
		return nil, parsingErr("[%s] query malformed, no start_object after query name", typ)
	}
	return o, nil
}

func onlyKeys(typ string, o map[string]any, allowed ...string) error {
	for _, k := range sortedKeys(o) {
		found := false
		for _, a := range allowed {
			if k == a {
				found = true
				break
			}
		}
		if !found {
			return parsingErr("[%s] query does not support [%s]", typ, k)
		}
	}
	return nil
}

func boostOf(typ string, o map[string]any) (float64, error) {
	v, ok := o["boost"]
	if !ok {
		return 1, nil
	}
	f, err := toFloat(v)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, parsingErr("[%s] query: [boost] must be a non-negative number, got %s", typ, jsonString(v))
	}
	return f, nil
}

// fieldBody returns the single field of a {"field": value} query body.
func fieldBody(typ string, body any) (string, any, error) {
	o, err := object(typ, body)
	if err != nil {
		return "", nil, err
	}
	var field string
	var val any
	for _, k := range sortedKeys(o) {
		if k == "boost" || k == "_name" {
			continue
		}
		if field != "" {
			return "", nil, parsingErr("[%s] query doesn't support multiple fields, found [%s] and [%s]", typ, field, k)
		}
		field, val = k, o[k]
	}
	if field == "" {
		return "", nil, parsingErr("[%s] query malformed, no field given", typ)
	}
	return field, val, nil
}

func parseTerm(body any) (Query, error) {
	field, val, err := fieldBody("term", body)
	if err != nil {
		return nil, err
	}
	q := termQ{field: field, boost: 1}
	if o, ok := val.(map[string]any); ok {
		if err := onlyKeys("term", o, "value", "boost", "case_insensitive", "_name"); err != nil {
			return nil, err
		}
		val, ok = o["value"]
		if !ok {
			return nil, parsingErr("[term] query malformed, no value given for field [%s]", field)
		}
		if q.boost, err = boostOf("term", o); err != nil {
			return nil, err
		}
		q.caseInsensitive, _ = o["case_insensitive"].(bool)
	}
	switch val.(type) {
	case string, json.Number, bool:
	default:
		return nil, parsingErr("[term] query does not support a value of type %s for field [%s]", jsonKind(val), field)
	}
	q.value = val
	return q, nil
}

func parseTerms(body any) (Query, error) {
	o, err := object("terms", body)
	if err != nil {
		return nil, err
	}
	q := termsQ{boost: 1}
	if q.boost, err = boostOf("terms", o); err != nil {
		return nil, err
	}
	for _, k := range sortedKeys(o) {
		if k == "boost" || k == "_name" {
			continue
		}
		if q.field != "" {
			return nil, parsingErr("[terms] query does not support multiple fields, found [%s] and [%s]", q.field, k)
		}
		arr, ok := o[k].([]any)
		if !ok {
			return nil, parsingErr("[terms] query does not support [%s]: the values of a field must be an array (terms lookup is not supported)", k)
		}
		for _, v := range arr {
			switch v.(type) {
			case string, json.Number, bool:
			default:
				return nil, parsingErr("[terms] query: values must be strings, numbers or booleans, got %s", jsonKind(v))
			}
		}
		q.field, q.values = k, arr
	}
	if q.field == "" {
		return nil, parsingErr("[terms] query requires a field")
	}
	return q, nil
}

// textOf turns a match value into query text.
func textOf(typ string, v any) (string, error) {
	s, ok := scalarString(v)
	if !ok {
		return "", parsingErr("[%s] query does not support a query of type %s", typ, jsonKind(v))
	}
	return s, nil
}

func parseMatch(typ string, body any) (Query, error) {
	field, val, err := fieldBody(typ, body)
	if err != nil {
		return nil, err
	}
	q := matchQ{field: field, boost: 1}
	o, isObj := val.(map[string]any)
	if !isObj {
		q.text, err = textOf(typ, val)
		return q, err
	}
	if err := onlyKeys(typ, o, "query", "operator", "fuzziness", "prefix_length", "max_expansions",
		"minimum_should_match", "analyzer", "boost", "lenient", "zero_terms_query",
		"auto_generate_synonyms_phrase_query", "fuzzy_transpositions", "fuzzy_rewrite", "_name"); err != nil {
		return nil, err
	}
	qv, ok := o["query"]
	if !ok {
		return nil, parsingErr("[%s] query malformed, no query given for field [%s]", typ, field)
	}
	if q.text, err = textOf(typ, qv); err != nil {
		return nil, err
	}
	if q.and, err = operatorOf(typ, o["operator"]); err != nil {
		return nil, err
	}
	if q.fuzziness, err = fuzzinessOf(typ, o["fuzziness"]); err != nil {
		return nil, err
	}
	if v, ok := o["prefix_length"]; ok {
		n, err := toInt(v)
		if err != nil || n < 0 {
			return nil, parsingErr("[%s] query: [prefix_length] must be a non-negative integer", typ)
		}
		q.prefixLen = n
	}
	if q.msm, err = msmOf(typ, o["minimum_should_match"]); err != nil {
		return nil, err
	}
	q.analyzer, _ = o["analyzer"].(string)
	if z, ok := o["zero_terms_query"].(string); ok {
		switch strings.ToLower(z) {
		case "all":
			q.zeroAll = true
		case "none":
		default:
			return nil, parsingErr("[%s] query: unsupported zero_terms_query value [%s]", typ, z)
		}
	}
	q.boost, err = boostOf(typ, o)
	return q, err
}

func operatorOf(typ string, v any) (bool, error) {
	if v == nil {
		return false, nil
	}
	s, _ := v.(string)
	switch strings.ToLower(s) {
	case "and":
		return true, nil
	case "or":
		return false, nil
	}
	return false, parsingErr("[%s] query: unknown operator %s, use [and] or [or]", typ, jsonString(v))
}

func fuzzinessOf(typ string, v any) (string, error) {
	if v == nil {
		return "", nil
	}
	s, ok := scalarString(v)
	if ok {
		u := strings.ToUpper(s)
		if u == "AUTO" || strings.HasPrefix(u, "AUTO:") {
			return "AUTO", nil
		}
		if n, err := strconv.ParseFloat(s, 64); err == nil && n >= 0 {
			if n > 2 {
				n = 2
			}
			return strconv.Itoa(int(n)), nil
		}
	}
	return "", parsingErr("[%s] query: invalid fuzziness %s, use AUTO, 0, 1 or 2", typ, jsonString(v))
}

func msmOf(typ string, v any) (string, error) {
	if v == nil {
		return "", nil
	}
	s, ok := scalarString(v)
	if !ok {
		return "", parsingErr("[%s] query: [minimum_should_match] must be a number or a percentage", typ)
	}
	if _, err := resolveMSM(s, 10); err != nil {
		return "", parsingErr("[%s] query: %v", typ, err)
	}
	return s, nil
}

// resolveMSM turns a minimum_should_match spec into a count of optional
// clauses out of n: "2", "-1", "75%", "-25%".
func resolveMSM(spec string, n int) (int, error) {
	s := strings.TrimSpace(spec)
	if s == "" {
		return 0, nil
	}
	if strings.Contains(s, "<") {
		return 0, fmt.Errorf("conditional minimum_should_match [%s] is not supported", spec)
	}
	var m int
	if strings.HasSuffix(s, "%") {
		p, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
		if err != nil {
			return 0, fmt.Errorf("invalid minimum_should_match [%s]", spec)
		}
		if p < 0 {
			m = n - (n*-p)/100
		} else {
			m = n * p / 100
		}
	} else {
		c, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("invalid minimum_should_match [%s]", spec)
		}
		if c < 0 {
			m = n + c
		} else {
			m = c
		}
	}
	if m < 0 {
		m = 0
	}
	if m > n {
		m = n
	}
	return m, nil
}

func parsePhrase(typ string, body any) (Query, error) {
	field, val, err := fieldBody(typ, body)
	if err != nil {
		return nil, err
	}
	q := phraseQ{field: field, boost: 1, prefix: typ == "match_phrase_prefix"}
	o, isObj := val.(map[string]any)
	if !isObj {
		q.text, err = textOf(typ, val)
		return q, err
	}
	if err := onlyKeys(typ, o, "query", "slop", "analyzer", "boost", "zero_terms_query", "max_expansions", "_name"); err != nil {
		return nil, err
	}
	qv, ok := o["query"]
	if !ok {
		return nil, parsingErr("[%s] query malformed, no query given for field [%s]", typ, field)
	}
	if q.text, err = textOf(typ, qv); err != nil {
		return nil, err
	}
	if v, ok := o["slop"]; ok {
		n, err := toInt(v)
		if err != nil || n < 0 {
			return nil, parsingErr("[%s] query: [slop] must be a non-negative integer", typ)
		}
		q.slop = n
	}
	q.analyzer, _ = o["analyzer"].(string)
	q.boost, err = boostOf(typ, o)
	return q, err
}

func parseMultiMatch(body any) (Query, error) {
	const typ = "multi_match"
	o, err := object(typ, body)
	if err != nil {
		return nil, err
	}
	if err := onlyKeys(typ, o, "query", "fields", "type", "operator", "fuzziness", "prefix_length",
		"minimum_should_match", "analyzer", "boost", "tie_breaker", "lenient", "zero_terms_query",
		"slop", "max_expansions", "auto_generate_synonyms_phrase_query", "_name"); err != nil {
		return nil, err
	}
	q := multiMatchQ{boost: 1, typ: "best_fields"}
	qv, ok := o["query"]
	if !ok {
		return nil, parsingErr("[multi_match] requires query value")
	}
	if q.text, err = textOf(typ, qv); err != nil {
		return nil, err
	}
	switch f := o["fields"].(type) {
	case nil:
	case string:
		q.fields = []string{f}
	case []any:
		for _, v := range f {
			s, ok := v.(string)
			if !ok {
				return nil, parsingErr("[multi_match] fields must be strings, got %s", jsonKind(v))
			}
			q.fields = append(q.fields, s)
		}
	default:
		return nil, parsingErr("[multi_match] fields must be a string or an array of strings")
	}
	if t, ok := o["type"].(string); ok {
		switch t {
		case "best_fields", "most_fields", "cross_fields", "phrase", "phrase_prefix", "bool_prefix":
			q.typ = t
		default:
			return nil, parsingErr("[multi_match] query does not support type %s", t)
		}
	}
	if q.and, err = operatorOf(typ, o["operator"]); err != nil {
		return nil, err
	}
	if q.fuzziness, err = fuzzinessOf(typ, o["fuzziness"]); err != nil {
		return nil, err
	}
	if q.msm, err = msmOf(typ, o["minimum_should_match"]); err != nil {
		return nil, err
	}
	q.analyzer, _ = o["analyzer"].(string)
	q.boost, err = boostOf(typ, o)
	return q, err
}

func parseRange(body any) (Query, error) {
	field, val, err := fieldBody("range", body)
	if err != nil {
		return nil, err
	}
	o, ok := val.(map[string]any)
	if !ok {
		return nil, parsingErr("[range] query malformed, after field [%s] must be an object", field)
	}
	q := rangeQ{field: field, boost: 1}
	includeLower, includeUpper := true, true
	var from, to any
	for _, k := range sortedKeys(o) {
		v := o[k]
		switch k {
		case "gt":
			q.gt = v
		case "gte":
			q.gte = v
		case "lt":
			q.lt = v
		case "lte":
			q.lte = v
		case "from":
			from = v
		case "to":
			to = v
		case "include_lower":
			includeLower, _ = v.(bool)
		case "include_upper":
			includeUpper, _ = v.(bool)
		case "format":
			q.format, _ = v.(string)
		case "time_zone":
			q.timeZone, _ = v.(string)
		case "relation":
			q.relation, _ = v.(string)
		case "boost":
			if q.boost, err = boostOf("range", o); err != nil {
				return nil, err
			}
		case "_name":
		default:
			return nil, parsingErr("[range] query does not support [%s]", k)
		}
	}
	if from != nil {
		if includeLower {
			q.gte = from
		} else {
			q.gt = from
		}
	}
	if to != nil {
		if includeUpper {
			q.lte = to
		} else {
			q.lt = to
		}
	}
	for _, v := range []any{q.gt, q.gte, q.lt, q.lte} {
		switch v.(type) {
		case nil, string, json.Number:
		default:
			return nil, parsingErr("[range] query: bounds must be strings or numbers, got %s", jsonKind(v))
		}
	}
	if q.timeZone != "" {
		if _, err := parseTimeZone(q.timeZone); err != nil {
			return nil, parsingErr("[range] query: %v", err)
		}
	}
	return q, nil
}

func parseSingleValue(typ string, body any) (Query, error) {
	field, val, err := fieldBody(typ, body)
	if err != nil {
		return nil, err
	}
	boost, ci, fuzz, prefixLen := 1.0, false, "", 0
	if o, ok := val.(map[string]any); ok {
		if err := onlyKeys(typ, o, "value", "wildcard", "boost", "case_insensitive", "rewrite", "flags",
			"max_determinized_states", "fuzziness", "prefix_length", "max_expansions", "transpositions", "_name"); err != nil {
			return nil, err
		}
		v, ok := o["value"]
		if !ok && typ == "wildcard" {
			v, ok = o["wildcard"]
		}
		if !ok {
			return nil, parsingErr("[%s] query malformed, no value given for field [%s]", typ, field)
		}
		val = v
		if boost, err = boostOf(typ, o); err != nil {
			return nil, err
		}
		ci, _ = o["case_insensitive"].(bool)
		if fuzz, err = fuzzinessOf(typ, o["fuzziness"]); err != nil {
			return nil, err
		}
		if v, ok := o["prefix_length"]; ok {
			prefixLen, _ = toInt(v)
		}
	}
	s, ok := scalarString(val)
	if !ok {
		return nil, parsingErr("[%s] query: the value must be a string, got %s", typ, jsonKind(val))
	}
	switch typ {
	case "prefix":
		return prefixQ{field: field, value: s, boost: boost, caseInsensitive: ci}, nil
	case "wildcard":
		return wildcardQ{field: field, value: s, boost: boost, caseInsensitive: ci}, nil
	case "regexp":
		return regexpQ{field: field, value: s, boost: boost}, nil
	}
	if fuzz == "" {
		fuzz = "AUTO"
	}
	return fuzzyQ{field: field, value: s, fuzziness: fuzz, prefixLen: prefixLen, boost: boost}, nil
}

func parseBool(body any, depth int) (Query, error) {
	o, err := object("bool", body)
	if err != nil {
		return nil, err
	}
	q := boolQ{boost: 1}
	for _, k := range sortedKeys(o) {
		v := o[k]
		var dst *[]Query
		switch k {
		case "must":
			dst = &q.must
		case "should":
			dst = &q.should
		case "filter":
			dst = &q.filter
		case "must_not", "mustNot":
			dst = &q.mustNot
		case "minimum_should_match":
			if q.msm, err = msmOf("bool", v); err != nil {
				return nil, err
			}
			continue
		case "boost":
			if q.boost, err = boostOf("bool", o); err != nil {
				return nil, err
			}
			continue
		case "_name", "adjust_pure_negative":
			continue
		default:
			return nil, parsingErr("[bool] query does not support [%s]", k)
		}
		clauses, ok := v.([]any)
		if !ok {
			clauses = []any{v}
		}
		for _, c := range clauses {
			cq, err := parseQuery(c, depth+1)
			if err != nil {
				return nil, err
			}
			*dst = append(*dst, cq)
		}
	}
	return q, nil
}

func parseQueryString(typ string, body any) (Query, error) {
	o, err := object(typ, body)
	if err != nil {
		return nil, err
	}
	q := queryStringQ{boost: 1, simple: typ == "simple_query_string"}
	for _, k := range sortedKeys(o) {
		v := o[k]
		switch k {
		case "query":
			s, ok := scalarString(v)
			if !ok {
				return nil, parsingErr("[%s] query must be a string", typ)
			}
			q.query = s
		case "fields":
			arr, ok := v.([]any)
			if !ok {
				return nil, parsingErr("[%s] fields must be an array of strings", typ)
			}
			for _, f := range arr {
				s, ok := f.(string)
				if !ok {
					return nil, parsingErr("[%s] fields must be an array of strings", typ)
				}
				q.fields = append(q.fields, s)
			}
		case "default_field":
			q.defaultField, _ = v.(string)
		case "default_operator":
			if q.and, err = operatorOf(typ, v); err != nil {
				return nil, err
			}
		case "analyze_wildcard":
			q.analyzeWildcard, _ = v.(bool)
		case "lenient":
			q.lenient, _ = v.(bool)
		case "boost":
			if q.boost, err = boostOf(typ, o); err != nil {
				return nil, err
			}
		case "analyzer", "allow_leading_wildcard", "fuzziness", "fuzzy_max_expansions", "fuzzy_prefix_length",
			"fuzzy_transpositions", "max_determinized_states", "minimum_should_match", "phrase_slop",
			"quote_field_suffix", "rewrite", "time_zone", "type", "tie_breaker", "flags",
			"auto_generate_synonyms_phrase_query", "escape", "enable_position_increments", "_name":
		default:
			return nil, parsingErr("[%s] query does not support [%s]", typ, k)
		}
	}
	if _, ok := o["query"]; !ok {
		return nil, parsingErr("[%s] must be provided with a [query]", typ)
	}
	// Parse now so that a syntax error is a 400 before any index is touched.
	if _, err := parseQS(q.query, q.simple); err != nil {
		return nil, err
	}
	return q, nil
}

// --- small JSON helpers ---

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// scalarString renders a string, number or boolean as text.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case int:
		return strconv.Itoa(x), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	}
	return "", false
}

func toFloat(v any) (float64, error) {
	switch x := v.(type) {
	case json.Number:
		return x.Float64()
	case string:
		return strconv.ParseFloat(strings.TrimSpace(x), 64)
	case float64:
		return x, nil
	}
	return 0, fmt.Errorf("not a number: %s", jsonString(v))
}

func toInt(v any) (int, error) {
	f, err := toFloat(v)
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || f > math.MaxInt32 || f < math.MinInt32 {
		return 0, fmt.Errorf("not an integer: %s", jsonString(v))
	}
	return int(f), nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
