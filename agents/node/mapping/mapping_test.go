package mapping

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2/document"
	index "github.com/blevesearch/bleve_index_api"

	"paddock/agents/node/eserr"
)

func mustParse(t *testing.T, body string) *Mapping {
	t.Helper()
	m, err := Parse([]byte(body))
	if err != nil {
		t.Fatalf("Parse(%s): %v", body, err)
	}
	return m
}

func errType(err error) string {
	var e *eserr.Error
	if errors.As(err, &e) {
		return e.Type
	}
	if err == nil {
		return ""
	}
	return "other: " + err.Error()
}

func TestParseMapping(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		wantErr    string // error type, "" for success
		wantReason string
		types      map[string]string
	}{
		{"leaves and objects", `{"properties":{"title":{"type":"text","fields":{"raw":{"type":"keyword"}}},"n":{"type":"integer"},
			"user":{"properties":{"name":{"type":"keyword"},"at":{"type":"date","format":"epoch_second"}}}}}`, "", "",
			map[string]string{"title": Text, "title.raw": Keyword, "n": Integer, "user": Object, "user.name": Keyword, "user.at": Date}},
		{"dotted name is an object", `{"properties":{"a.b":{"type":"long"}}}`, "", "", map[string]string{"a": Object, "a.b": Long}},
		{"dynamic strict", `{"dynamic":"strict","properties":{}}`, "", "", nil},
		{"all types", `{"properties":{"a":{"type":"short"},"b":{"type":"byte"},"c":{"type":"double"},"d":{"type":"float"},"e":{"type":"boolean"},"f":{"type":"text","analyzer":"english"}}}`, "", "",
			map[string]string{"a": Short, "b": Byte, "c": Double, "d": Float, "e": Boolean, "f": Text}},
		{"unknown type", `{"properties":{"x":{"type":"foo"}}}`, "mapper_parsing_exception", "No handler for type [foo] declared on field [x]", nil},
		{"nested refused", `{"properties":{"x":{"type":"nested"}}}`, "mapper_parsing_exception", "nested", nil},
		{"unknown analyzer", `{"properties":{"x":{"type":"text","analyzer":"klingon"}}}`, "mapper_parsing_exception", "analyzer [klingon]", nil},
		{"unknown parameter", `{"properties":{"x":{"type":"long","analyzer":"standard"}}}`, "mapper_parsing_exception", "unknown parameter [analyzer]", nil},
		{"no type", `{"properties":{"x":{}}}`, "mapper_parsing_exception", "No type specified", nil},
		{"typed mapping", `{"_doc":{"properties":{}}}`, "mapper_parsing_exception", "mapping types were removed", nil},
		{"unknown root key", `{"frob":1}`, "mapper_parsing_exception", "unsupported parameters", nil},
		{"bad dynamic", `{"dynamic":"sometimes"}`, "mapper_parsing_exception", "[dynamic]", nil},
		{"bad format", `{"properties":{"d":{"type":"date","format":"yyyy-QQ"}}}`, "mapper_parsing_exception", "Invalid format", nil},
		{"not json", `{"properties":`, "mapper_parsing_exception", "failed to parse mapping", nil},
		{"source disabled", `{"_source":{"enabled":false}}`, "mapper_parsing_exception", "_source", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse([]byte(tc.body))
			if got := errType(err); got != tc.wantErr {
				t.Fatalf("error type = %q (%v), want %q", got, err, tc.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tc.wantReason) {
					t.Fatalf("error %q does not say %q", err, tc.wantReason)
				}
				return
			}
			for p, want := range tc.types {
				if got, ok := m.Type(p); !ok || got != want {
					t.Errorf("Type(%s) = %q,%v, want %q", p, got, ok, want)
				}
			}
		})
	}
}

func TestMappingDepthAndFieldLimits(t *testing.T) {
	deep := `{"type":"long"}`
	for range DepthLimit + 1 {
		deep = `{"properties":{"a":` + deep + `}}`
	}
	if _, err := Parse([]byte(deep)); errType(err) != "illegal_argument_exception" || !strings.Contains(err.Error(), "depth") {
		t.Fatalf("deep mapping: %v", err)
	}
	var b strings.Builder
	b.WriteString(`{"properties":{`)
	for i := range TotalFieldsLimit + 1 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"f` + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + itoa(i) + `":{"type":"long"}`)
	}
	b.WriteString(`}}`)
	if _, err := Parse([]byte(b.String())); err == nil || !strings.Contains(err.Error(), "Limit of total fields") {
		t.Fatalf("too many fields: %v", err)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestMerge(t *testing.T) {
	base := mustParse(t, `{"properties":{"a":{"type":"long"},"t":{"type":"text"},"o":{"properties":{"x":{"type":"keyword"}}}}}`)
	for _, tc := range []struct {
		name, body, wantErr, wantReason string
		types                           map[string]string
	}{
		{"add fields", `{"properties":{"b":{"type":"keyword"},"o":{"properties":{"y":{"type":"long"}}}}}`, "", "",
			map[string]string{"a": Long, "b": Keyword, "o.x": Keyword, "o.y": Long}},
		{"same again", `{"properties":{"a":{"type":"long"}}}`, "", "", map[string]string{"a": Long}},
		{"add multi-field", `{"properties":{"t":{"type":"text","fields":{"k":{"type":"keyword"}}}}}`, "", "", map[string]string{"t.k": Keyword}},
		{"change type", `{"properties":{"a":{"type":"text"}}}`, "illegal_argument_exception", "mapper [a] cannot be changed from type [long] to [text]", nil},
		{"object to leaf", `{"properties":{"o":{"type":"long"}}}`, "illegal_argument_exception", "cannot be changed from type [object] to [long]", nil},
		{"change analyzer", `{"properties":{"t":{"type":"text","analyzer":"simple"}}}`, "illegal_argument_exception", "Cannot update parameter [analyzer] from [standard] to [simple]", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := base.Merge(mustParse(t, tc.body))
			if got := errType(err); got != tc.wantErr {
				t.Fatalf("error = %q (%v), want %q", got, err, tc.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tc.wantReason) {
					t.Fatalf("error %q does not say %q", err, tc.wantReason)
				}
				return
			}
			for p, want := range tc.types {
				if got, _ := m.Type(p); got != want {
					t.Errorf("Type(%s) = %q, want %q", p, got, want)
				}
			}
			if _, ok := base.Type("b"); ok {
				t.Fatal("Merge changed the original mapping")
			}
		})
	}
}

func TestRoundTripJSON(t *testing.T) {
	m := mustParse(t, `{"dynamic":"strict","properties":{"t":{"type":"text","analyzer":"english","fields":{"k":{"type":"keyword","ignore_above":10}}},"o":{"properties":{"d":{"type":"date"}}}}}`)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"dynamic":"strict","properties":{"o":{"properties":{"d":{"type":"date"}}},"t":{"analyzer":"english","fields":{"k":{"ignore_above":10,"type":"keyword"}},"type":"text"}}}`
	if string(b) != want {
		t.Fatalf("JSON = %s\nwant   %s", b, want)
	}
	var back Mapping
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got := back.Leaves(); !slices.Equal(got, []string{"o.d", "t", "t.k"}) {
		t.Fatalf("leaves after round trip = %v", got)
	}
}

// fieldKinds lists a bleve document's fields as name:kind.
func fieldKinds(d *document.Document) []string {
	var out []string
	for _, f := range d.Fields {
		kind := ""
		switch f.(type) {
		case *document.TextField:
			kind = "text"
			if f.Options()&index.DocValues != 0 {
				kind = "kw"
			}
		case *document.NumericField:
			kind = "num"
		case *document.DateTimeField:
			kind = "date"
		case *document.BooleanField:
			kind = "bool"
		}
		out = append(out, f.Name()+":"+kind)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestDynamicMapping(t *testing.T) {
	src, err := DecodeSource([]byte(`{"title":"Dune","year":1965,"price":9.5,"ok":true,"at":"2024-01-02T03:04:05Z",
		"day":"2024-01-02","notdate":"2024","tags":["sf","classic"],"user":{"name":"Frank","age":80},"empty":[],"nil":null,"a.b":1}`))
	if err != nil {
		t.Fatal(err)
	}
	doc, m, err := New().Document("1", src)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"title": Text, "title.keyword": Keyword, "year": Long, "price": Float, "ok": Boolean,
		"at": Date, "day": Date, "notdate": Text, "tags": Text, "tags.keyword": Keyword, "user": Object,
		"user.name": Text, "user.age": Long, "a": Object, "a.b": Long}
	for p, w := range want {
		if got, _ := m.Type(p); got != w {
			t.Errorf("dynamic Type(%s) = %q, want %q", p, got, w)
		}
	}
	for _, p := range []string{"empty", "nil"} {
		if _, ok := m.Type(p); ok {
			t.Errorf("%s was mapped from an empty value", p)
		}
	}
	if f, _ := m.Leaf("title.keyword"); f.IgnoreAbove != DynamicIgnoreAbove {
		t.Errorf("dynamic keyword ignore_above = %d", f.IgnoreAbove)
	}
	got := fieldKinds(doc)
	for _, w := range []string{"title:text", "title.keyword:kw", "year:num", "at:date", "ok:bool", "user.name:text", "a.b:num", "tags:text", "_dv#year:kw", "_dv#at:kw"} {
		if !slices.Contains(got, w) {
			t.Errorf("bleve fields %v lack %s", got, w)
		}
	}
	if m.DocValuesField("year") != "_dv#year" || m.DocValuesField("title") != "" {
		t.Errorf("companion doc-values fields: year %q, title %q", m.DocValuesField("year"), m.DocValuesField("title"))
	}
	if len(doc.CompositeFields) != 1 || doc.CompositeFields[0].Name() != AllField {
		t.Errorf("no _all composite field")
	}
	// A second document with the same fields adds nothing.
	src2, _ := DecodeSource([]byte(`{"title":"Emma","year":1815}`))
	if _, m2, err := m.Document("2", src2); err != nil || m2 != m {
		t.Fatalf("known fields changed the mapping (%v)", err)
	}
}

func TestValues(t *testing.T) {
	m := mustParse(t, `{"properties":{"l":{"type":"long"},"i":{"type":"integer"},"b":{"type":"byte"},"f":{"type":"float"},
		"d":{"type":"date"},"ds":{"type":"date","format":"yyyy/MM/dd HH:mm:ss||epoch_second"},"ok":{"type":"boolean"},
		"k":{"type":"keyword","ignore_above":3},"t":{"type":"text"},"o":{"properties":{"x":{"type":"long"}}},
		"nc":{"type":"long","coerce":false},"s":{"dynamic":"strict","properties":{"x":{"type":"long"}}},
		"off":{"dynamic":false,"properties":{}}}}`)
	for _, tc := range []struct {
		name, src, wantErr, wantReason string
	}{
		{"long from string", `{"l":"42"}`, "", ""},
		{"long truncates decimals", `{"l":1.5}`, "", ""},
		{"long not a number", `{"l":"abc"}`, "mapper_parsing_exception", "failed to parse field [l] of type [long] in document with id '1'. Preview of field's value: 'abc'"},
		{"long bool", `{"l":true}`, "mapper_parsing_exception", "field [l] of type [long]"},
		{"integer range", `{"i":3000000000}`, "mapper_parsing_exception", "field [i] of type [integer]"},
		{"byte range", `{"b":300}`, "mapper_parsing_exception", "field [b] of type [byte]"},
		{"no coerce", `{"nc":"1"}`, "mapper_parsing_exception", "field [nc]"},
		{"float", `{"f":"2.5"}`, "", ""},
		{"float bad", `{"f":"x"}`, "mapper_parsing_exception", "field [f] of type [float]"},
		{"date iso", `{"d":"2024-05-06T07:08:09.123+02:00"}`, "", ""},
		{"date millis", `{"d":1700000000000}`, "", ""},
		{"date bad", `{"d":"yesterday"}`, "mapper_parsing_exception", "field [d] of type [date]"},
		{"date custom", `{"ds":"2024/05/06 07:08:09"}`, "", ""},
		{"date custom epoch", `{"ds":1700000000}`, "", ""},
		{"date custom bad", `{"ds":"2024-05-06"}`, "mapper_parsing_exception", "field [ds]"},
		{"boolean string", `{"ok":"false"}`, "", ""},
		{"boolean bad", `{"ok":"yes"}`, "mapper_parsing_exception", "field [ok] of type [boolean]"},
		{"keyword from number", `{"k":12}`, "", ""},
		{"keyword ignore_above", `{"k":"toolong"}`, "", ""},
		{"object into keyword", `{"k":{"a":1}}`, "mapper_parsing_exception", "field [k] of type [keyword]"},
		{"value into object", `{"o":5}`, "mapper_parsing_exception", "object mapping for [o] tried to parse field [o] as object, but found a concrete value"},
		{"array of longs", `{"l":[1,"2",3]}`, "", ""},
		{"array with a bad long", `{"l":[1,"x"]}`, "mapper_parsing_exception", "field [l]"},
		{"strict object", `{"s":{"y":1}}`, "strict_dynamic_mapping_exception", "dynamic introduction of [y] within [s] is not allowed"},
		{"dynamic false ignores", `{"off":{"y":1}}`, "", ""},
		{"empty field name", `{"":1}`, "mapper_parsing_exception", "field name cannot be an empty string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := DecodeSource([]byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			doc, _, err := m.Document("1", src)
			if got := errType(err); got != tc.wantErr {
				t.Fatalf("error = %q (%v), want %q", got, err, tc.wantErr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tc.wantReason) {
					t.Fatalf("error %q does not say %q", err, tc.wantReason)
				}
				return
			}
			if doc == nil {
				t.Fatal("no document")
			}
		})
	}
	// ignore_above drops the keyword, dynamic:false adds no field.
	src, _ := DecodeSource([]byte(`{"k":"toolong","off":{"y":1}}`))
	doc, m2, err := m.Document("1", src)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Fields) != 0 || m2 != m {
		t.Fatalf("ignored values were indexed (%v) or mapped", fieldKinds(doc))
	}
}

func TestStrictRoot(t *testing.T) {
	m := mustParse(t, `{"dynamic":"strict","properties":{"a":{"type":"long"}}}`)
	src, _ := DecodeSource([]byte(`{"a":1,"b":2}`))
	if _, _, err := m.Document("1", src); errType(err) != "strict_dynamic_mapping_exception" || !strings.Contains(err.Error(), "[b] within [_doc]") {
		t.Fatalf("strict root: %v", err)
	}
}

func TestDocumentDepth(t *testing.T) {
	deep := `1`
	for range DepthLimit + 1 {
		deep = `{"a":` + deep + `}`
	}
	src, err := DecodeSource([]byte(deep))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := New().Document("1", src); err == nil || !strings.Contains(err.Error(), "depth") {
		t.Fatalf("deep document: %v", err)
	}
}

func TestDecodeSource(t *testing.T) {
	for _, tc := range []struct {
		src string
		ok  bool
	}{
		{`{"a":1}`, true},
		{` {"a":1} `, true},
		{`[1]`, false},
		{`"x"`, false},
		{`{"a":1}{"b":2}`, false},
		{`{"a":`, false},
		{``, false},
	} {
		_, err := DecodeSource([]byte(tc.src))
		if (err == nil) != tc.ok {
			t.Errorf("DecodeSource(%q) = %v, want ok=%v", tc.src, err, tc.ok)
		}
		if err != nil && errType(err) != "mapper_parsing_exception" {
			t.Errorf("DecodeSource(%q) error type %q", tc.src, errType(err))
		}
	}
}

func TestFieldsView(t *testing.T) {
	m := mustParse(t, `{"properties":{"title":{"type":"text","analyzer":"english","search_analyzer":"simple","fields":{"keyword":{"type":"keyword"}}},
		"body":{"type":"text","analyzer":"whitespace"},"user":{"properties":{"name":{"type":"text"}}}}}`)
	if got := m.Match("title*"); !slices.Equal(got, []string{"title", "title.keyword"}) {
		t.Errorf("Match(title*) = %v", got)
	}
	if got := m.Match("*"); len(got) != 4 {
		t.Errorf("Match(*) = %v", got)
	}
	if got := m.Match("user.*"); !slices.Equal(got, []string{"user.name"}) {
		t.Errorf("Match(user.*) = %v", got)
	}
	if got := m.Match("*name"); !slices.Equal(got, []string{"user.name"}) {
		t.Errorf("Match(*name) = %v", got)
	}
	for p, want := range map[string]string{"title": "simple", "body": "whitespace", "user.name": "", "title.keyword": "", "nope": ""} {
		if got := m.Analyzer(p); got != want {
			t.Errorf("Analyzer(%s) = %q, want %q", p, got, want)
		}
	}
}

func TestAnalyzers(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"standard", "The Quick-Brown fox", []string{"the", "quick", "brown", "fox"}},
		{"simple", "Route66 ok", []string{"route", "ok"}},
		{"whitespace", "The Quick-Brown", []string{"The", "Quick-Brown"}},
		{"keyword", "The Quick", []string{"The Quick"}},
		{"english", "The foxes jumping", []string{"fox", "jump"}},
	} {
		if got := Analyze(tc.name, tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("%s(%q) = %q, want %q", tc.name, tc.text, got, tc.want)
		}
	}
	im := NewIndexMapping(mustParse(t, `{"properties":{"t":{"type":"text","analyzer":"english"},"u":{"properties":{"n":{"type":"keyword"}}}}}`))
	if err := im.Validate(); err != nil {
		t.Fatalf("bleve mapping invalid: %v", err)
	}
	if im.ScoringModel != index.BM25Scoring {
		t.Fatalf("scoring model %q", im.ScoringModel)
	}
}

func TestParseDate(t *testing.T) {
	for _, tc := range []struct {
		format string
		v      any
		want   time.Time
	}{
		{"", "2024-01-02", time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"", "2024-01-02T03:04:05.5Z", time.Date(2024, 1, 2, 3, 4, 5, 5e8, time.UTC)},
		{"", "2024-01-02T03:04:05+01:00", time.Date(2024, 1, 2, 2, 4, 5, 0, time.UTC)},
		{"", json.Number("86400000"), time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"epoch_second", "60", time.Date(1970, 1, 1, 0, 1, 0, 0, time.UTC)},
		{"dd/MM/yyyy", "31/12/2023", time.Date(2023, 12, 31, 0, 0, 0, 0, time.UTC)},
	} {
		got, err := ParseDate(tc.format, tc.v)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseDate(%q, %v) = %v, %v; want %v", tc.format, tc.v, got, err, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"properties":{"a":{"type":"text","fields":{"k":{"type":"keyword"}}}}}`, `{"dynamic":"strict"}`,
		`{"properties":{"a.b":{"type":"long"},"o":{"properties":{"d":{"type":"date","format":"yyyy"}}}}}`, `{}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			if errType(err) == "" || strings.HasPrefix(errType(err), "other") {
				t.Fatalf("non-Elasticsearch error %v", err)
			}
			return
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("a parsed mapping does not parse back: %s: %v", out, err)
		}
		_ = NewIndexMapping(m)
		src, _ := DecodeSource([]byte(`{"a":"x","o":{"d":"2020"},"b":[1,2]}`))
		_, _, _ = m.Document("1", src)
	})
}
