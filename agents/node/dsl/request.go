package dsl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"paddock/agents/node/eserr"
)

// Request is a parsed _search or _count request.
type Request struct {
	Query       Query
	PostFilter  Query
	From, Size  int
	Sort        []SortSpec
	SearchAfter []any
	Source      SourceFilter
	// TrackTotalHits: -1 counts exactly, 0 reports no total, N counts up to N.
	TrackTotalHits   int
	TotalAsInt       bool // rest_total_hits_as_int
	TypedKeys        bool // typed_keys: aggregation names prefixed with their type
	Version          bool
	SeqNoPrimaryTerm bool
	TrackScores      bool
	MinScore         *float64
	TerminateAfter   int
	Highlight        *Highlight
	Aggs             []*Agg
	// Scroll is the keep-alive of a scroll search (0: not a scroll).
	Scroll time.Duration

	now time.Time
}

// SortSpec is one sort key.
type SortSpec struct {
	Field        string // a field path, "_score" or "_doc"
	Desc         bool
	MissingFirst bool
	Mode         string // min, max, ...
	UnmappedType string
}

// SourceFilter is the _source option.
type SourceFilter struct {
	Disabled           bool
	Includes, Excludes []string
}

func xcontentErr(format string, args ...any) error {
	return eserr.New(http.StatusBadRequest, "x_content_parse_exception", format, args...)
}

// decodeJSON decodes one JSON value keeping numbers exact, and refuses
// trailing data.
func decodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(body, se.Offset)
			return nil, xcontentErr("[%d:%d] Unexpected character: %v", line, col, err)
		}
		return nil, xcontentErr("malformed JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, xcontentErr("malformed JSON body: unexpected data after the end of the object")
	}
	return v, nil
}

func position(body []byte, off int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < off && i < int64(len(body)); i++ {
		if body[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// ParseSearch parses a _search or _count body and its URL parameters.
// Errors are *eserr.Error values (400 parsing_exception and the like).
func ParseSearch(body []byte, params url.Values) (*Request, error) {
	r := &Request{Size: 10, TrackTotalHits: defaultTrackTotalHits, now: time.Now()}
	if len(bytes.TrimSpace(body)) > 0 {
		v, err := decodeJSON(body)
		if err != nil {
			return nil, err
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, parsingErr("request body must be a JSON object, got %s", jsonKind(v))
		}
		if err := r.parseBody(obj); err != nil {
			return nil, err
		}
	}
	if err := r.parseParams(params); err != nil {
		return nil, err
	}
	if r.Scroll > 0 && r.From > 0 {
		return nil, eserr.BadRequest("using [from] is not allowed in a scroll context")
	}
	if r.Scroll > 0 && len(r.SearchAfter) > 0 {
		return nil, eserr.BadRequest("[search_after] cannot be used in a scroll context")
	}
	if len(r.SearchAfter) > 0 && r.From > 0 {
		return nil, eserr.BadRequest("[from] parameter must be set to 0 when [search_after] is used")
	}
	if len(r.SearchAfter) > 0 && len(r.SearchAfter) != max(len(r.Sort), 1) {
		return nil, eserr.BadRequest("search_after has %d value(s) but sort has %d", len(r.SearchAfter), max(len(r.Sort), 1))
	}
	if r.From+r.Size > MaxResultWindow {
		return nil, eserr.BadRequest("Result window is too large, from + size must be less than or equal to: [%d] but was [%d]. "+
			"See the scroll api for a more efficient way to request large data sets. "+
			"This limit can be set by changing the [index.max_result_window] index level setting.", MaxResultWindow, r.From+r.Size)
	}
	return r, nil
}

func (r *Request) parseBody(obj map[string]any) error {
	var err error
	for _, k := range sortedKeys(obj) {
		v := obj[k]
		switch k {
		case "query":
			if r.Query, err = parseQuery(v, 0); err != nil {
				return err
			}
		case "post_filter":
			if r.PostFilter, err = parseQuery(v, 0); err != nil {
				return err
			}
		case "from":
			if r.From, err = nonNegative(k, v); err != nil {
				return err
			}
		case "size":
			if r.Size, err = nonNegative(k, v); err != nil {
				return err
			}
		case "sort":
			if r.Sort, err = parseSort(v); err != nil {
				return err
			}
		case "search_after":
			arr, ok := v.([]any)
			if !ok {
				return parsingErr("[search_after] must be an array")
			}
			r.SearchAfter = arr
		case "_source":
			if r.Source, err = parseSourceFilter(v); err != nil {
				return err
			}
		case "track_total_hits":
			if r.TrackTotalHits, err = parseTrackTotalHits(v); err != nil {
				return err
			}
		case "version":
			r.Version, _ = v.(bool)
		case "seq_no_primary_term":
			r.SeqNoPrimaryTerm, _ = v.(bool)
		case "track_scores":
			r.TrackScores, _ = v.(bool)
		case "min_score":
			f, err := toFloat(v)
			if err != nil {
				return parsingErr("[min_score] must be a number")
			}
			r.MinScore = &f
		case "terminate_after":
			if r.TerminateAfter, err = nonNegative(k, v); err != nil {
				return err
			}
		case "highlight":
			if r.Highlight, err = parseHighlight(v); err != nil {
				return err
			}
		case "aggs", "aggregations":
			if r.Aggs, err = parseAggs(v, 0); err != nil {
				return err
			}
		case "stored_fields":
			// "_none_" leaves out _source as well; the node stores no other field
			if f, ok := v.(string); ok && f == "_none_" {
				r.Source = SourceFilter{Disabled: true}
			}
		case "timeout", "explain", "docvalue_fields", "fields", "profile", "stats",
			"indices_boost", "_name", "collapse", "pit", "runtime_mappings", "script_fields", "ext", "rescore", "suggest":
			// accepted and not acted upon (explain, profile) or answered
			// without them; fields from _source are in _source.
		default:
			return parsingErr("Unknown key for a %s in [%s].", xcontentToken(v), k)
		}
	}
	return nil
}

func xcontentToken(v any) string {
	switch v.(type) {
	case map[string]any:
		return "START_OBJECT"
	case []any:
		return "START_ARRAY"
	case string:
		return "VALUE_STRING"
	case json.Number:
		return "VALUE_NUMBER"
	case bool:
		return "VALUE_BOOLEAN"
	}
	return "VALUE_NULL"
}

func nonNegative(name string, v any) (int, error) {
	n, err := toInt(v)
	if err != nil {
		return 0, parsingErr("[%s] must be an integer, got %s", name, jsonString(v))
	}
	if n < 0 {
		return 0, eserr.BadRequest("[%s] parameter cannot be negative, found [%d]", name, n)
	}
	return n, nil
}

func parseTrackTotalHits(v any) (int, error) {
	switch x := v.(type) {
	case bool:
		if x {
			return -1, nil
		}
		return 0, nil
	case string:
		switch x {
		case "true":
			return -1, nil
		case "false":
			return 0, nil
		}
	}
	n, err := toInt(v)
	if err != nil || n < -1 {
		return 0, eserr.BadRequest("[track_total_hits] must be true, false or a non-negative number, got %s", jsonString(v))
	}
	if n == -1 {
		return -1, nil
	}
	if n == 0 {
		// counting up to 0 is not counting
		return 0, nil
	}
	return n, nil
}

// parseSort reads the sort option: "field", {"field": "desc"},
// {"field": {"order": "desc", "missing": "_first"}}, or an array of these.
func parseSort(v any) ([]SortSpec, error) {
	items, ok := v.([]any)
	if !ok {
		items = []any{v}
	}
	var out []SortSpec
	for _, it := range items {
		switch x := it.(type) {
		case string:
			out = append(out, defaultSort(x))
		case map[string]any:
			for _, field := range sortedKeys(x) {
				s := defaultSort(field)
				switch o := x[field].(type) {
				case string:
					if err := s.setOrder(o); err != nil {
						return nil, err
					}
				case map[string]any:
					for _, k := range sortedKeys(o) {
						val := o[k]
						switch k {
						case "order":
							str, _ := val.(string)
							if err := s.setOrder(str); err != nil {
								return nil, err
							}
						case "missing":
							str, _ := scalarString(val)
							switch str {
							case "_first":
								s.MissingFirst = true
							case "_last":
								s.MissingFirst = false
							default:
								return nil, eserr.BadRequest("sort [missing] value [%s] is not supported, use _first or _last", str)
							}
						case "mode":
							s.Mode, _ = val.(string)
							switch s.Mode {
							case "min", "max", "avg", "sum", "median":
							default:
								return nil, eserr.BadRequest("Unknown SortMode [%s]", s.Mode)
							}
						case "unmapped_type":
							s.UnmappedType, _ = val.(string)
						case "format", "numeric_type", "nested":
						default:
							return nil, parsingErr("[%s] sort option does not support [%s]", field, k)
						}
					}
				default:
					return nil, parsingErr("[sort] malformed for field [%s]", field)
				}
				out = append(out, s)
			}
		default:
			return nil, parsingErr("[sort] must be a field name, an object or an array of them, got %s", jsonKind(it))
		}
	}
	return out, nil
}

func defaultSort(field string) SortSpec {
	return SortSpec{Field: field, Desc: field == "_score"}
}

func (s *SortSpec) setOrder(o string) error {
	switch strings.ToLower(o) {
	case "asc":
		s.Desc = false
	case "desc":
		s.Desc = true
	default:
		return eserr.BadRequest("Unknown sort order [%s], use [asc] or [desc]", o)
	}
	return nil
}

func parseSourceFilter(v any) (SourceFilter, error) {
	var f SourceFilter
	strs := func(v any) ([]string, error) {
		switch x := v.(type) {
		case nil:
			return nil, nil
		case string:
			return []string{x}, nil
		case []any:
			var out []string
			for _, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, parsingErr("[_source] patterns must be strings, got %s", jsonKind(e))
				}
				out = append(out, s)
			}
			return out, nil
		}
		return nil, parsingErr("[_source] patterns must be strings, got %s", jsonKind(v))
	}
	var err error
	switch x := v.(type) {
	case bool:
		f.Disabled = !x
	case string, []any:
		f.Includes, err = strs(x)
	case map[string]any:
		for _, k := range sortedKeys(x) {
			switch k {
			case "includes", "include":
				f.Includes, err = strs(x[k])
			case "excludes", "exclude":
				f.Excludes, err = strs(x[k])
			default:
				return f, parsingErr("[_source] does not support [%s], use includes and excludes", k)
			}
			if err != nil {
				return f, err
			}
		}
	default:
		return f, parsingErr("[_source] must be a boolean, a string, an array or an object")
	}
	return f, err
}

func (r *Request) parseParams(p url.Values) error {
	get := func(k string) (string, bool) {
		if vs, ok := p[k]; ok && len(vs) > 0 {
			return vs[len(vs)-1], true
		}
		return "", false
	}
	if q, ok := get("q"); ok {
		qs := queryStringQ{query: q, boost: 1}
		if df, ok := get("df"); ok {
			qs.defaultField = df
		}
		if op, ok := get("default_operator"); ok {
			and, err := operatorOf("query_string", op)
			if err != nil {
				return err
			}
			qs.and = and
		}
		if _, err := parseQS(q, false); err != nil {
			return err
		}
		r.Query = qs
	}
	intParam := func(k string, dst *int) error {
		if s, ok := get(k); ok {
			n, err := strconv.Atoi(s)
			if err != nil {
				return eserr.BadRequest("Failed to parse int parameter [%s] with value [%s]", k, s)
			}
			if n < 0 {
				return eserr.BadRequest("[%s] parameter cannot be negative, found [%d]", k, n)
			}
			*dst = n
		}
		return nil
	}
	if err := intParam("from", &r.From); err != nil {
		return err
	}
	if err := intParam("size", &r.Size); err != nil {
		return err
	}
	if err := intParam("terminate_after", &r.TerminateAfter); err != nil {
		return err
	}
	if s, ok := get("sort"); ok && s != "" {
		r.Sort = nil
		for _, part := range strings.Split(s, ",") {
			field, order, hasOrder := strings.Cut(part, ":")
			spec := defaultSort(field)
			if hasOrder {
				if err := spec.setOrder(order); err != nil {
					return err
				}
			}
			r.Sort = append(r.Sort, spec)
		}
	}
	if s, ok := get("_source"); ok {
		switch s {
		case "false":
			r.Source = SourceFilter{Disabled: true}
		case "true", "":
			r.Source = SourceFilter{}
		default:
			r.Source = SourceFilter{Includes: strings.Split(s, ",")}
		}
	}
	if s, ok := get("_source_includes"); ok && s != "" {
		r.Source.Disabled = false
		r.Source.Includes = strings.Split(s, ",")
	}
	if s, ok := get("_source_excludes"); ok && s != "" {
		r.Source.Disabled = false
		r.Source.Excludes = strings.Split(s, ",")
	}
	if s, ok := get("track_total_hits"); ok {
		n, err := parseTrackTotalHits(s)
		if err != nil {
			return err
		}
		r.TrackTotalHits = n
	}
	boolParam := func(k string, dst *bool) {
		if s, ok := get(k); ok {
			*dst = s == "" || s == "true"
		}
	}
	boolParam("version", &r.Version)
	boolParam("seq_no_primary_term", &r.SeqNoPrimaryTerm)
	boolParam("track_scores", &r.TrackScores)
	boolParam("rest_total_hits_as_int", &r.TotalAsInt)
	boolParam("typed_keys", &r.TypedKeys)
	if r.TotalAsInt {
		r.TrackTotalHits = -1
	}
	if s, ok := get("scroll"); ok {
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		r.Scroll = d
	}
	return nil
}

// parseDuration reads an Elasticsearch time value ("1m", "30s", "500ms").
func parseDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		d      time.Duration
	}{{"nanos", time.Nanosecond}, {"micros", time.Microsecond}, {"ms", time.Millisecond},
		{"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour}}
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err == nil && v >= 0 {
				return time.Duration(v * float64(u.d)), nil
			}
			if u.suffix == "ms" || u.suffix == "nanos" || u.suffix == "micros" {
				break
			}
		}
	}
	return 0, eserr.New(http.StatusBadRequest, "parse_exception",
		"failed to parse setting [scroll] with value [%s] as a time value: unit is missing or unrecognized", s)
}

// String renders a sort spec for messages.
func (s SortSpec) String() string {
	o := "asc"
	if s.Desc {
		o = "desc"
	}
	return fmt.Sprintf("%s:%s", s.Field, o)
}
