package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/numeric"
	index "github.com/blevesearch/bleve_index_api"

	"paddock/agents/node/eserr"
)

// AllField is the composite field holding every text and keyword field.
const AllField = "_all"

// DecodeSource reads a document's JSON source (numbers kept exact). A body
// that is not one JSON object is a 400 mapper_parsing_exception.
func DecodeSource(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, notObject(err)
	}
	if dec.More() {
		return nil, notObject(errors.New("unexpected data after the document's closing brace"))
	}
	if _, err := dec.Token(); err == nil {
		return nil, notObject(errors.New("unexpected data after the document's closing brace"))
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, notObject(fmt.Errorf("the document is a %s, not an object", jsonKind(v)))
	}
	return m, nil
}

func notObject(err error) error {
	e := eserr.MapperParsing("failed to parse")
	e.Cause = eserr.New(http.StatusBadRequest, "not_x_content_exception", "the document must be one JSON object: %v", err)
	return e
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	default:
		return "number"
	}
}

// builder turns one document into bleve fields.
type builder struct {
	m     *Mapping
	id    string
	doc   *document.Document
	added map[string]*Field // dynamic fields of this document, by path
	all   []string          // fields going to _all
	seen  map[string]bool
}

// Document validates a decoded source against m and returns its bleve
// document and the mapping with the dynamic fields it introduced (m
// itself when there are none). A value contradicting the mapping is a
// 400 mapper_parsing_exception; the caller stores nothing then.
func (m *Mapping) Document(id string, src map[string]any) (*document.Document, *Mapping, error) {
	b := &builder{m: m, id: id, doc: document.NewDocument(id), seen: map[string]bool{}}
	dyn := m.Dynamic
	if dyn == "" {
		dyn = "true"
	}
	if err := b.object(src, "", dyn, 1); err != nil {
		return nil, nil, err
	}
	if len(b.all) > 0 {
		b.doc.AddField(document.NewCompositeFieldWithIndexingOptions(AllField, false, b.all, nil,
			index.IndexField|index.IncludeTermVectors))
	}
	if len(b.added) == 0 {
		return b.doc, m, nil
	}
	out, err := m.withAdded(b.added)
	if err != nil {
		return nil, nil, err
	}
	return b.doc, out, nil
}

// withAdded returns m with dynamic fields inserted (parents first).
func (m *Mapping) withAdded(added map[string]*Field) (*Mapping, error) {
	out := m.clone()
	paths := make([]string, 0, len(added))
	for p := range added {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		props := out.Properties
		parent, name := "", p
		if i := strings.LastIndexByte(p, '.'); i >= 0 {
			parent, name = p[:i], p[i+1:]
		}
		if parent != "" {
			o := out.lookupObject(parent)
			if o == nil {
				return nil, eserr.MapperParsing("internal: parent object [%s] of dynamic field [%s] missing", parent, p)
			}
			props = o.Properties
		}
		props[name] = added[p].clone()
	}
	out.index()
	if out.count > TotalFieldsLimit {
		return nil, eserr.BadRequest("Limit of total fields [%d] has been exceeded while adding new fields [%d]", TotalFieldsLimit, len(added))
	}
	return out, nil
}

func (m *Mapping) lookupObject(p string) *Field {
	props := m.Properties
	var f *Field
	for _, part := range strings.Split(p, ".") {
		f = props[part]
		if f == nil || !f.isObject() {
			return nil
		}
		props = f.Properties
	}
	return f
}

func (b *builder) leaf(p string) *Field {
	if f, ok := b.m.leaves[p]; ok {
		return f
	}
	if f, ok := b.added[p]; ok && !f.isObject() {
		return f
	}
	return nil
}

func (b *builder) obj(p string) *Field {
	if f, ok := b.m.objects[p]; ok {
		return f
	}
	if f, ok := b.added[p]; ok && f.isObject() {
		return f
	}
	return nil
}

func (b *builder) add(p string, f *Field) {
	if b.added == nil {
		b.added = map[string]*Field{}
	}
	b.added[p] = f
}

func (b *builder) object(obj map[string]any, prefix, dyn string, depth int) error {
	if depth > DepthLimit {
		return eserr.BadRequest("Limit of mapping depth [%d] has been exceeded due to object field [%s]", DepthLimit, prefix)
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys) // dynamic types do not depend on map order
	for _, k := range keys {
		v := obj[k]
		if strings.Trim(k, " ") == "" || strings.HasPrefix(k, ".") || strings.HasSuffix(k, ".") || strings.Contains(k, "..") {
			return eserr.MapperParsing("field name cannot be an empty string or contain empty path parts: [%s] in object [%s]", k, orRoot(prefix))
		}
		if i := strings.IndexByte(k, '.'); i > 0 {
			// {"a.b": v} is {"a": {"b": v}}.
			v = map[string]any{k[i+1:]: v}
			k = k[:i]
		}
		if err := b.value(join(prefix, k), v, dyn, depth, nil); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) value(full string, v any, dyn string, depth int, ap []uint64) error {
	switch val := v.(type) {
	case nil:
		return nil
	case []any:
		for i, e := range val {
			pos := ap
			if pos == nil {
				pos = []uint64{uint64(i)}
			}
			if err := b.value(full, e, dyn, depth, pos); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		if f := b.leaf(full); f != nil {
			return b.badValue(full, f, val, errors.New("an object cannot go into a "+f.Type+" field"))
		}
		o := b.obj(full)
		if o == nil {
			switch dyn {
			case "strict":
				return strict(full)
			case "false":
				return nil
			}
			o = &Field{Type: Object, Properties: map[string]*Field{}}
			b.add(full, o)
		}
		childDyn := dyn
		if o.Dynamic != "" {
			childDyn = o.Dynamic
		}
		return b.object(val, full, childDyn, depth+1)
	}
	if b.obj(full) != nil {
		return eserr.MapperParsing("object mapping for [%s] tried to parse field [%s] as object, but found a concrete value", full, full)
	}
	f := b.leaf(full)
	if f == nil {
		switch dyn {
		case "strict":
			return strict(full)
		case "false":
			return nil
		}
		f = detect(v)
		b.add(full, f)
	}
	if err := b.index(full, f, v, ap); err != nil {
		return err
	}
	for sub, sf := range f.Fields {
		if err := b.index(full+"."+sub, sf, v, ap); err != nil {
			return err
		}
	}
	return nil
}

func strict(full string) error {
	parent, name := "_doc", full
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		parent, name = full[:i], full[i+1:]
	}
	return eserr.New(http.StatusBadRequest, "strict_dynamic_mapping_exception",
		"[1:1] mapping set to strict, dynamic introduction of [%s] within [%s] is not allowed", name, parent)
}

// detect is Elasticsearch's dynamic type for a first value.
func detect(v any) *Field {
	switch val := v.(type) {
	case bool:
		return &Field{Type: Boolean}
	case json.Number:
		if strings.ContainsAny(string(val), ".eE") {
			return &Field{Type: Float}
		}
		return &Field{Type: Long}
	case float64:
		if val == math.Trunc(val) {
			return &Field{Type: Long}
		}
		return &Field{Type: Float}
	case string:
		if looksLikeDate(val) {
			return &Field{Type: Date}
		}
	}
	return &Field{Type: Text, Fields: map[string]*Field{"keyword": {Type: Keyword, IgnoreAbove: DynamicIgnoreAbove}}}
}

func (b *builder) badValue(full string, f *Field, v any, cause error) error {
	preview := ""
	switch val := v.(type) {
	case string:
		preview = val
	default:
		pb, _ := json.Marshal(val)
		preview = string(pb)
	}
	if len(preview) > 80 {
		preview = preview[:80] + "..."
	}
	e := eserr.MapperParsing("failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%s'", full, f.Type, b.id, preview)
	e.Cause = eserr.BadRequest("%v", cause)
	return e
}

func (b *builder) index(full string, f *Field, v any, ap []uint64) error {
	if !f.indexed() {
		// Still validate: Elasticsearch parses non-indexed values too.
		_, err := f.Convert(v)
		if err != nil {
			return b.badValue(full, f, v, err)
		}
		return nil
	}
	val, err := f.Convert(v)
	if err != nil {
		return b.badValue(full, f, v, err)
	}
	dv := f.DocValues == nil || *f.DocValues
	switch f.Type {
	case Text:
		s := val.(string)
		b.doc.AddField(document.NewTextFieldCustom(full, ap, []byte(s), index.IndexField|index.IncludeTermVectors, analyzer(orStd(f.Analyzer, Text))))
		b.toAll(full)
	case Keyword:
		s := val.(string)
		if f.IgnoreAbove > 0 && utf8.RuneCountInString(s) > f.IgnoreAbove {
			return nil
		}
		opts := index.IndexField
		if dv {
			opts |= index.DocValues
		}
		b.doc.AddField(document.NewTextFieldCustom(full, ap, []byte(s), opts, nil))
		b.toAll(full)
	case Long, Integer, Short, Byte, Double, Float:
		// Numbers and dates keep their doc values in the companion
		// only: bleve's own would hold the 16 precision-step terms of
		// each value again, which nothing reads.
		b.doc.AddField(document.NewNumericFieldWithIndexingOptions(full, ap, val.(float64), index.IndexField))
		if dv {
			b.companion(full, ap, numeric.Float64ToInt64(val.(float64)))
		}
	case Date:
		df, err := document.NewDateTimeFieldWithIndexingOptions(full, ap, val.(time.Time), time.RFC3339Nano, index.IndexField)
		if err != nil {
			return b.badValue(full, f, v, err)
		}
		b.doc.AddField(df)
		if dv {
			b.companion(full, ap, val.(time.Time).UnixNano())
		}
	case Boolean:
		opts := index.IndexField
		if dv {
			opts |= index.DocValues
		}
		b.doc.AddField(document.NewBooleanFieldWithIndexingOptions(full, ap, val.(bool), opts))
	}
	return nil
}

// CompanionPrefix starts the name of a number's or date's companion
// doc-values field: one shift-0 prefix-coded term per value, which sorts
// and aggregations read instead of bleve's 16 precision-step terms.
const CompanionPrefix = "_dv#"

// Companion is the companion doc-values field of a number or date field.
func Companion(path string) string { return CompanionPrefix + path }

func (b *builder) companion(full string, ap []uint64, v int64) {
	b.doc.AddField(document.NewTextFieldCustom(Companion(full), ap, numeric.MustNewPrefixCodedInt64(v, 0), index.IndexField|index.DocValues, nil))
}

func (b *builder) toAll(full string) {
	if !b.seen[full] {
		b.seen[full] = true
		b.all = append(b.all, full)
	}
}

// Convert checks a JSON value against the field's type and returns it as
// indexed: string (text, keyword), float64 (numbers), time.Time (date),
// bool (boolean).
func (f *Field) Convert(v any) (any, error) {
	switch f.Type {
	case Text, Keyword:
		switch val := v.(type) {
		case string:
			return val, nil
		case json.Number:
			return string(val), nil
		case float64:
			return strconv.FormatFloat(val, 'f', -1, 64), nil
		case bool:
			return strconv.FormatBool(val), nil
		}
		return nil, fmt.Errorf("expected a string, got %s", jsonKind(v))
	case Long, Integer, Short, Byte:
		return f.integer(v)
	case Double, Float:
		var s string
		switch val := v.(type) {
		case json.Number:
			s = string(val)
		case float64:
			return val, nil
		case string:
			if !f.coerce() {
				return nil, fmt.Errorf("a string is not a number when coerce is false")
			}
			s = strings.TrimSpace(val)
		default:
			return nil, fmt.Errorf("expected a number, got %s", jsonKind(v))
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, fmt.Errorf("For input string: %q", s)
		}
		if f.Type == Float && math.Abs(x) > math.MaxFloat32 {
			return nil, fmt.Errorf("[float] supports only finite values, but got [%s]", s)
		}
		return x, nil
	case Date:
		formats, err := dateFormats(f.Format)
		if err != nil {
			return nil, err
		}
		return parseDate(formats, v)
	case Boolean:
		switch val := v.(type) {
		case bool:
			return val, nil
		case string:
			switch val {
			case "true":
				return true, nil
			case "false", "":
				return false, nil
			}
		}
		return nil, fmt.Errorf("Failed to parse value [%v] as only [true] or [false] are allowed", v)
	}
	return nil, fmt.Errorf("no value of type [%s]", f.Type)
}

var intRange = map[string][2]float64{
	Long:    {math.MinInt64, math.MaxInt64},
	Integer: {math.MinInt32, math.MaxInt32},
	Short:   {math.MinInt16, math.MaxInt16},
	Byte:    {math.MinInt8, math.MaxInt8},
}

func (f *Field) integer(v any) (float64, error) {
	var s string
	switch val := v.(type) {
	case json.Number:
		s = string(val)
	case float64:
		s = strconv.FormatFloat(val, 'f', -1, 64)
	case string:
		if !f.coerce() {
			return 0, fmt.Errorf("a string is not a number when coerce is false")
		}
		s = strings.TrimSpace(val)
	default:
		return 0, fmt.Errorf("expected a number, got %s", jsonKind(v))
	}
	var x float64
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		x = float64(n)
	} else {
		fl, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsInf(fl, 0) || math.IsNaN(fl) {
			return 0, fmt.Errorf("For input string: %q", s)
		}
		if fl != math.Trunc(fl) && !f.coerce() {
			return 0, fmt.Errorf("Value [%s] has a decimal part", s)
		}
		x = math.Trunc(fl)
	}
	r := intRange[f.Type]
	if x < r[0] || x > r[1] {
		return 0, fmt.Errorf("Value [%s] is out of range for %s", s, articleType(f.Type))
	}
	return x, nil
}

func articleType(t string) string {
	if t == Integer {
		return "an integer"
	}
	return "a " + t
}
