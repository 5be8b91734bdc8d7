// Package mapping is an Elasticsearch index mapping: explicit field
// definitions (PUT /idx with mappings, PUT /idx/_mapping) and the fields
// added dynamically from a document's first values, the validation of a
// document's values against it (a contradicting value is a 400
// mapper_parsing_exception and nothing is stored), and the bleve document
// and index mapping built from it.
//
// Layout in bleve (the contract with agents/node/dsl): one bleve field per
// leaf named by its full dotted path ("user.name", multi-fields as
// "title.keyword"); arrays index every element in the same field; text is
// analyzed with the field's analyzer and keeps term vectors; keyword,
// numbers, dates and booleans have doc values; nothing is stored (the
// source lives beside the index); text and keyword fields also go to the
// composite "_all" field.
package mapping

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"paddock/agents/node/eserr"
)

// Field types.
const (
	Text    = "text"
	Keyword = "keyword"
	Long    = "long"
	Integer = "integer"
	Short   = "short"
	Byte    = "byte"
	Double  = "double"
	Float   = "float"
	Date    = "date"
	Boolean = "boolean"
	Object  = "object"
)

// Analyzers are the analyzer names a text field may use.
var Analyzers = []string{"standard", "simple", "whitespace", "keyword", "english"}

// Limits, as Elasticsearch's defaults (index.mapping.depth.limit,
// index.mapping.total_fields.limit).
const (
	DepthLimit       = 20
	TotalFieldsLimit = 1000
	// DynamicIgnoreAbove is ignore_above of the .keyword sub-field added
	// to dynamic strings.
	DynamicIgnoreAbove = 256
)

// Field is one mapped field: a leaf (its Type), or an object (Properties).
type Field struct {
	Type           string            `json:"type,omitempty"`
	Analyzer       string            `json:"analyzer,omitempty"`
	SearchAnalyzer string            `json:"search_analyzer,omitempty"`
	IgnoreAbove    int               `json:"ignore_above,omitempty"`
	Format         string            `json:"format,omitempty"`
	Index          *bool             `json:"index,omitempty"`
	DocValues      *bool             `json:"doc_values,omitempty"`
	Store          *bool             `json:"store,omitempty"`
	Norms          *bool             `json:"norms,omitempty"`
	Coerce         *bool             `json:"coerce,omitempty"`
	Dynamic        string            `json:"dynamic,omitempty"`
	Fields         map[string]*Field `json:"fields,omitempty"`
	Properties     map[string]*Field `json:"properties,omitempty"`
}

func (f *Field) indexed() bool  { return f.Index == nil || *f.Index }
func (f *Field) coerce() bool   { return f.Coerce == nil || *f.Coerce }
func (f *Field) isObject() bool { return f.Type == Object || (f.Type == "" && f.Properties != nil) }

func (f *Field) clone() *Field {
	c := *f
	c.Fields = cloneProps(f.Fields)
	c.Properties = cloneProps(f.Properties)
	return &c
}

func cloneProps(p map[string]*Field) map[string]*Field {
	if p == nil {
		return nil
	}
	out := make(map[string]*Field, len(p))
	for k, v := range p {
		out[k] = v.clone()
	}
	return out
}

// Mapping is an index's mapping. It is immutable once built: changes
// (Merge, dynamic fields from Document) return a new Mapping.
type Mapping struct {
	// Dynamic is the root's dynamic setting: "true" (default), "false" or "strict".
	Dynamic    string
	Properties map[string]*Field
	Meta       map[string]any

	leaves  map[string]*Field // full path → leaf (multi-fields included)
	objects map[string]*Field // full path → object field
	count   int               // mapped fields (objects, leaves, multi-fields)
}

// New returns an empty mapping.
func New() *Mapping {
	m := &Mapping{Properties: map[string]*Field{}}
	m.index()
	return m
}

// Parse reads a mapping body: {"properties":{...},"dynamic":...,"_meta":...}.
// A body wrapped as {"_doc":{...}} (the pre-7 form) is refused clearly.
func Parse(body []byte) (*Mapping, error) {
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, eserr.MapperParsing("failed to parse mapping: %v", err)
	}
	return FromMap(raw)
}

// FromMap reads a decoded mapping body.
func FromMap(raw map[string]any) (*Mapping, error) {
	m := &Mapping{Properties: map[string]*Field{}}
	for k, v := range raw {
		switch k {
		case "properties":
			props, ok := v.(map[string]any)
			if !ok {
				return nil, eserr.MapperParsing("[properties] must be an object of field definitions")
			}
			p, err := parseProps(props, "", 1)
			if err != nil {
				return nil, err
			}
			m.Properties = p
		case "dynamic":
			d, err := parseDynamic(v, "")
			if err != nil {
				return nil, err
			}
			m.Dynamic = d
		case "_meta":
			meta, ok := v.(map[string]any)
			if !ok {
				return nil, eserr.MapperParsing("[_meta] must be an object")
			}
			m.Meta = meta
		case "_source", "_routing", "date_detection", "numeric_detection":
			// Accepted with Elasticsearch's defaults only: _source is
			// always kept, routing is optional, date detection on,
			// numeric detection off.
			if err := defaultsOnly(k, v); err != nil {
				return nil, err
			}
		case "_doc":
			return nil, eserr.MapperParsing("Root mapping definition has unsupported parameters: [_doc]: mapping types were removed in 7.0, send {\"properties\":{...}} directly")
		default:
			return nil, eserr.MapperParsing("Root mapping definition has unsupported parameters: [%s : %v] (the paddock node supports properties, dynamic and _meta)", k, compact(v))
		}
	}
	m.index()
	if m.count > TotalFieldsLimit {
		return nil, eserr.BadRequest("Limit of total fields [%d] has been exceeded", TotalFieldsLimit)
	}
	return m, nil
}

func defaultsOnly(k string, v any) error {
	switch k {
	case "_source":
		if o, ok := v.(map[string]any); ok {
			if en, ok := o["enabled"].(bool); ok && !en {
				return eserr.MapperParsing("[_source] cannot be disabled on the paddock node: it keeps every document's source")
			}
			return nil
		}
	case "_routing":
		if _, ok := v.(map[string]any); ok {
			return nil
		}
	case "date_detection":
		if b, ok := v.(bool); ok && b {
			return nil
		}
		return eserr.MapperParsing("[date_detection] false is not supported by the paddock node")
	case "numeric_detection":
		if b, ok := v.(bool); ok && !b {
			return nil
		}
		return eserr.MapperParsing("[numeric_detection] true is not supported by the paddock node")
	}
	return eserr.MapperParsing("[%s] must be an object", k)
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func parseDynamic(v any, where string) (string, error) {
	switch d := v.(type) {
	case bool:
		return fmt.Sprint(d), nil
	case string:
		switch d {
		case "true", "false", "strict":
			return d, nil
		}
	}
	return "", eserr.MapperParsing("[dynamic] of [%s] must be true, false or strict, got [%v]", orRoot(where), v)
}

func orRoot(p string) string {
	if p == "" {
		return "_doc"
	}
	return p
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func parseProps(props map[string]any, prefix string, depth int) (map[string]*Field, error) {
	if depth > DepthLimit {
		return nil, eserr.BadRequest("Limit of mapping depth [%d] has been exceeded due to object field [%s]", DepthLimit, prefix)
	}
	out := make(map[string]*Field, len(props))
	for name, v := range props {
		full := join(prefix, name)
		if name == "" || strings.Contains(name, ".") && strings.Trim(name, ".") != name {
			return nil, eserr.MapperParsing("field name [%s] cannot be empty or start or end with a dot", full)
		}
		def, ok := v.(map[string]any)
		if !ok {
			return nil, eserr.MapperParsing("Expected map for property [fields] on field [%s] but got a %T", full, v)
		}
		f, err := parseField(def, full, depth)
		if err != nil {
			return nil, err
		}
		// "a.b" as a name is object a with sub-field b, as in Elasticsearch.
		if i := strings.IndexByte(name, '.'); i > 0 {
			outer := name[:i]
			o := out[outer]
			if o == nil {
				o = &Field{Type: Object, Properties: map[string]*Field{}}
				out[outer] = o
			}
			if !o.isObject() {
				return nil, eserr.MapperParsing("field [%s] is both a %s and an object", join(prefix, outer), o.Type)
			}
			nested, err := parseProps(map[string]any{name[i+1:]: v}, join(prefix, outer), depth+1)
			if err != nil {
				return nil, err
			}
			maps.Copy(o.Properties, nested)
			continue
		}
		out[name] = f
	}
	return out, nil
}

// allowed lists the parameters each type accepts (beyond "type").
var allowed = map[string][]string{
	Text:    {"analyzer", "search_analyzer", "fields", "index", "store", "norms"},
	Keyword: {"ignore_above", "fields", "index", "doc_values", "store", "norms"},
	Long:    {"index", "doc_values", "store", "coerce", "fields"},
	Date:    {"format", "index", "doc_values", "store", "fields"},
	Boolean: {"index", "doc_values", "store", "fields"},
	Object:  {"properties", "dynamic"},
}

func init() {
	for _, t := range []string{Integer, Short, Byte, Double, Float} {
		allowed[t] = allowed[Long]
	}
}

func parseField(def map[string]any, full string, depth int) (*Field, error) {
	f := &Field{}
	if t, ok := def["type"]; ok {
		s, ok := t.(string)
		if !ok {
			return nil, eserr.MapperParsing("[type] of field [%s] must be a string", full)
		}
		f.Type = s
	} else if _, ok := def["properties"]; ok {
		f.Type = Object
	} else {
		return nil, eserr.MapperParsing("No type specified for field [%s]", full)
	}
	params, ok := allowed[f.Type]
	if !ok {
		if f.Type == "nested" {
			return nil, eserr.MapperParsing("field [%s]: type [nested] is not supported by the paddock node (use object)", full)
		}
		return nil, eserr.MapperParsing("No handler for type [%s] declared on field [%s]", f.Type, full)
	}
	for k, v := range def {
		if k == "type" {
			continue
		}
		if !slices.Contains(params, k) {
			return nil, eserr.MapperParsing("unknown parameter [%s] on mapper [%s] of type [%s]", k, full, f.Type)
		}
		var err error
		switch k {
		case "analyzer", "search_analyzer":
			s, ok := v.(string)
			if !ok || !slices.Contains(Analyzers, s) {
				return nil, eserr.MapperParsing("analyzer [%v] has not been configured in mappings (field [%s]; known: %s)", v, full, strings.Join(Analyzers, ", "))
			}
			if k == "analyzer" {
				f.Analyzer = s
			} else {
				f.SearchAnalyzer = s
			}
		case "ignore_above":
			n, ok := v.(float64)
			if !ok || n < 0 || n != float64(int(n)) {
				return nil, eserr.MapperParsing("[ignore_above] of field [%s] must be a non-negative integer, got [%v]", full, v)
			}
			f.IgnoreAbove = int(n)
		case "format":
			s, ok := v.(string)
			if !ok {
				return nil, eserr.MapperParsing("[format] of field [%s] must be a string", full)
			}
			if _, err := dateFormats(s); err != nil {
				return nil, eserr.MapperParsing("Invalid format: [%s] on field [%s]: %v", s, full, err)
			}
			f.Format = s
		case "index":
			f.Index, err = boolParam(k, full, v)
		case "doc_values":
			f.DocValues, err = boolParam(k, full, v)
		case "store":
			f.Store, err = boolParam(k, full, v)
		case "norms":
			f.Norms, err = boolParam(k, full, v)
		case "coerce":
			f.Coerce, err = boolParam(k, full, v)
		case "dynamic":
			f.Dynamic, err = parseDynamic(v, full)
		case "fields":
			sub, ok := v.(map[string]any)
			if !ok {
				return nil, eserr.MapperParsing("[fields] of field [%s] must be an object", full)
			}
			f.Fields = map[string]*Field{}
			for name, sv := range sub {
				sdef, ok := sv.(map[string]any)
				if !ok {
					return nil, eserr.MapperParsing("multi-field [%s.%s] must be an object", full, name)
				}
				sf, err := parseField(sdef, full+"."+name, depth)
				if err != nil {
					return nil, err
				}
				if sf.isObject() || sf.Fields != nil {
					return nil, eserr.MapperParsing("multi-field [%s.%s] must be a leaf type, not an object or with its own fields", full, name)
				}
				f.Fields[name] = sf
			}
		case "properties":
			props, ok := v.(map[string]any)
			if !ok {
				return nil, eserr.MapperParsing("[properties] of field [%s] must be an object", full)
			}
			f.Properties, err = parseProps(props, full, depth+1)
		}
		if err != nil {
			return nil, err
		}
	}
	if f.Type == Object && f.Properties == nil {
		f.Properties = map[string]*Field{}
	}
	return f, nil
}

func boolParam(k, full string, v any) (*bool, error) {
	switch b := v.(type) {
	case bool:
		return &b, nil
	case string:
		if b == "true" || b == "false" {
			t := b == "true"
			return &t, nil
		}
	}
	return nil, eserr.MapperParsing("[%s] of field [%s] must be true or false, got [%v]", k, full, v)
}

// index computes the flat views of the mapping.
func (m *Mapping) index() {
	m.leaves = map[string]*Field{}
	m.objects = map[string]*Field{}
	m.count = 0
	var walk func(props map[string]*Field, prefix string)
	walk = func(props map[string]*Field, prefix string) {
		for name, f := range props {
			full := join(prefix, name)
			m.count++
			if f.isObject() {
				m.objects[full] = f
				walk(f.Properties, full)
				continue
			}
			m.leaves[full] = f
			for sub, sf := range f.Fields {
				m.count++
				m.leaves[full+"."+sub] = sf
			}
		}
	}
	walk(m.Properties, "")
}

func (m *Mapping) clone() *Mapping {
	c := &Mapping{Dynamic: m.Dynamic, Properties: cloneProps(m.Properties), Meta: m.Meta}
	c.index()
	return c
}

// Merge returns m with other's fields added (PUT _mapping). A field that
// changes type or analyzer is a 400, as in Elasticsearch.
func (m *Mapping) Merge(other *Mapping) (*Mapping, error) {
	out := m.clone()
	if other.Dynamic != "" {
		out.Dynamic = other.Dynamic
	}
	if other.Meta != nil {
		out.Meta = other.Meta
	}
	if err := mergeProps(out.Properties, other.Properties, ""); err != nil {
		return nil, err
	}
	out.index()
	if out.count > TotalFieldsLimit {
		return nil, eserr.BadRequest("Limit of total fields [%d] has been exceeded", TotalFieldsLimit)
	}
	return out, nil
}

func mergeProps(dst, src map[string]*Field, prefix string) error {
	for name, nf := range src {
		full := join(prefix, name)
		of, ok := dst[name]
		if !ok {
			dst[name] = nf.clone()
			continue
		}
		if of.isObject() != nf.isObject() || (!of.isObject() && of.Type != nf.Type) {
			return eserr.BadRequest("mapper [%s] cannot be changed from type [%s] to [%s]", full, typeName(of), typeName(nf))
		}
		if of.isObject() {
			if nf.Dynamic != "" {
				of.Dynamic = nf.Dynamic
			}
			if err := mergeProps(of.Properties, nf.Properties, full); err != nil {
				return err
			}
			continue
		}
		for _, p := range []struct{ name, a, b string }{
			{"analyzer", orStd(of.Analyzer, of.Type), orStd(nf.Analyzer, nf.Type)},
			{"format", of.Format, nf.Format},
		} {
			if p.a != p.b {
				return eserr.BadRequest("Mapper for [%s] conflicts with existing mapper:\n\tCannot update parameter [%s] from [%s] to [%s]", full, p.name, p.a, p.b)
			}
		}
		if nf.IgnoreAbove != 0 {
			of.IgnoreAbove = nf.IgnoreAbove
		}
		if nf.SearchAnalyzer != "" {
			of.SearchAnalyzer = nf.SearchAnalyzer
		}
		if of.Fields == nil && nf.Fields != nil {
			of.Fields = map[string]*Field{}
		}
		if err := mergeProps(of.Fields, nf.Fields, full); err != nil {
			return err
		}
	}
	return nil
}

func orStd(a, typ string) string {
	if a == "" && typ == Text {
		return "standard"
	}
	return a
}

func typeName(f *Field) string {
	if f.isObject() {
		return Object
	}
	return f.Type
}

// JSON is the mapping as GET /idx/_mapping shows it.
func (m *Mapping) JSON() map[string]any {
	out := map[string]any{}
	if m.Dynamic != "" {
		out["dynamic"] = m.Dynamic
	}
	if m.Meta != nil {
		out["_meta"] = m.Meta
	}
	if len(m.Properties) > 0 {
		out["properties"] = propsJSON(m.Properties)
	}
	return out
}

func propsJSON(p map[string]*Field) map[string]any {
	out := make(map[string]any, len(p))
	for name, f := range p {
		out[name] = f.json()
	}
	return out
}

func (f *Field) json() map[string]any {
	b, _ := json.Marshal(f)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if f.isObject() {
		// Elasticsearch leaves "type":"object" implicit beside properties.
		if len(f.Properties) > 0 {
			delete(m, "type")
			m["properties"] = propsJSON(f.Properties)
		} else {
			m["type"] = Object
			delete(m, "properties")
		}
	}
	if len(f.Fields) > 0 {
		m["fields"] = propsJSON(f.Fields)
	}
	return m
}

// MarshalJSON stores the mapping (the same shape as JSON()).
func (m *Mapping) MarshalJSON() ([]byte, error) { return json.Marshal(m.JSON()) }

// UnmarshalJSON reads a stored mapping.
func (m *Mapping) UnmarshalJSON(b []byte) error {
	p, err := Parse(b)
	if err != nil {
		return err
	}
	*m = *p
	return nil
}

// Type is a field path's type ("text", "keyword", ..., "object"), and
// whether the mapping has it.
func (m *Mapping) Type(p string) (string, bool) {
	if f, ok := m.leaves[p]; ok {
		return f.Type, true
	}
	if _, ok := m.objects[p]; ok {
		return Object, true
	}
	return "", false
}

// Leaf returns a leaf field's definition.
func (m *Mapping) Leaf(p string) (*Field, bool) {
	f, ok := m.leaves[p]
	return f, ok
}

// Match returns the leaf paths matching a pattern with * wildcards,
// sorted ("title*", "*", "user.*").
func (m *Mapping) Match(pattern string) []string {
	var out []string
	for p := range m.leaves {
		if wildcard(pattern, p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// wildcard matches * against any run of characters, dots included.
func wildcard(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, part := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, part)
		}
		j := strings.Index(s, part)
		if j < 0 {
			return false
		}
		s = s[j+len(part):]
	}
	return true
}

// Analyzer is the search analyzer of a text field ("" for standard).
func (m *Mapping) Analyzer(p string) string {
	f, ok := m.leaves[p]
	if !ok || f.Type != Text {
		return ""
	}
	a := f.SearchAnalyzer
	if a == "" {
		a = f.Analyzer
	}
	if a == "standard" {
		return ""
	}
	return a
}

// DocValuesField is the companion doc-values field of a number or date
// field with doc values ("" otherwise).
func (m *Mapping) DocValuesField(p string) string {
	f, ok := m.leaves[p]
	if !ok || !f.indexed() || (f.DocValues != nil && !*f.DocValues) {
		return ""
	}
	switch f.Type {
	case Long, Integer, Short, Byte, Double, Float, Date:
		return Companion(p)
	}
	return ""
}

// IndexAnalyzer is the analyzer a text field is indexed with.
func (m *Mapping) IndexAnalyzer(p string) string {
	if f, ok := m.leaves[p]; ok && f.Analyzer != "" {
		return f.Analyzer
	}
	return "standard"
}

// Leaves returns every leaf path, sorted.
func (m *Mapping) Leaves() []string {
	out := slices.Collect(maps.Keys(m.leaves))
	sort.Strings(out)
	return out
}
