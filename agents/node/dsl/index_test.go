package dsl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	_ "github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	_ "github.com/blevesearch/bleve/v2/analysis/analyzer/simple"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/token/porter"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/whitespace"
	"github.com/blevesearch/bleve/v2/document"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/numeric"
	index "github.com/blevesearch/bleve_index_api"
)

// The test indices follow the node's contract (docs/architecture.md, "How
// documents are laid out in bleve"): one bleve field per leaf path, text
// analyzed with term vectors, keyword/number/date/boolean with doc values,
// everything but _source unstored, text and keyword in _all.

// testFields is a mapping: field path → type, and analyzers of text fields.
type testFields struct {
	types     map[string]FieldType
	analyzers map[string]string
	// companion indexes numbers and dates also into "<path>#dv" with only
	// the shift-0 term (see DocValuesFields).
	companion bool
}

func (f testFields) DocValuesField(p string) string {
	if t := f.types[p]; f.companion && (t.Numeric() || t == Date) {
		return p + "#dv"
	}
	return ""
}

func (f testFields) Field(p string) (FieldType, bool) {
	t, ok := f.types[p]
	return t, ok
}

func (f testFields) Match(pattern string) []string {
	var out []string
	for p := range f.types {
		if ok, _ := path.Match(pattern, p); ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func (f testFields) Analyzer(p string) string { return f.analyzers[p] }

// testIndexMapping is the bleve index mapping the node builds: BM25 and the
// Elasticsearch analyzer names.
func testIndexMapping(t testing.TB) *mapping.IndexMappingImpl {
	im := mapping.NewIndexMapping()
	im.ScoringModel = index.BM25Scoring
	// the analyzers node-core registers under Elasticsearch's names
	for name, cfg := range map[string]map[string]any{
		"standard":   {"type": custom.Name, "tokenizer": unicode.Name, "token_filters": []any{lowercase.Name}},
		"whitespace": {"type": custom.Name, "tokenizer": whitespace.Name},
		"english": {"type": custom.Name, "tokenizer": unicode.Name,
			"token_filters": []any{en.PossessiveName, lowercase.Name, en.StopName, porter.Name}},
	} {
		if err := im.AddCustomAnalyzer(name, cfg); err != nil {
			t.Fatal(err)
		}
	}
	im.DefaultAnalyzer = "standard"
	return im
}

type testDoc struct {
	id, src string
}

type testIndex struct {
	name   string
	fields testFields
	idx    bleve.Index
	docs   map[string][]byte
	meta   map[string]DocMeta
	// dv is the index's doc-values cache (noDV: searches read through
	// bleve, the reference the cache is checked against).
	dv   *DocValues
	noDV bool
}

func (ti *testIndex) target() Target {
	if ti.dv == nil && !ti.noDV {
		ti.dv = &DocValues{}
	}
	return Target{Name: ti.name, Index: ti.idx, Fields: ti.fields, DocValues: ti.dv, Source: func(id string) ([]byte, DocMeta, bool) {
		src, ok := ti.docs[id]
		return src, ti.meta[id], ok
	}}
}

// newTestIndex indexes docs into a fresh scorch index with the contract's
// field layout.
func newTestIndex(t testing.TB, name string, fields testFields, docs []testDoc) *testIndex {
	t.Helper()
	im := testIndexMapping(t)
	idx, err := bleve.NewUsing(t.TempDir(), im, scorch.Name, scorch.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idx.Close() })
	ti := &testIndex{name: name, fields: fields, idx: idx, docs: map[string][]byte{}, meta: map[string]DocMeta{}}
	ti.add(t, docs...)
	return ti
}

func (ti *testIndex) add(t testing.TB, docs ...testDoc) {
	t.Helper()
	b := ti.idx.NewBatch()
	for i, d := range docs {
		doc, err := buildDoc(ti.idx.Mapping(), ti.fields, d.id, []byte(d.src))
		if err != nil {
			t.Fatalf("doc %s: %v", d.id, err)
		}
		if err := b.IndexAdvanced(doc); err != nil {
			t.Fatal(err)
		}
		ti.docs[d.id] = []byte(d.src)
		ti.meta[d.id] = DocMeta{Version: 1, SeqNo: int64(len(ti.meta) + i), PrimaryTerm: 1}
	}
	if err := ti.idx.Batch(b); err != nil {
		t.Fatal(err)
	}
}

// buildDoc maps a JSON source to a bleve document as node-core does.
func buildDoc(m mapping.IndexMapping, fields testFields, id string, src []byte) (*document.Document, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	doc := document.NewDocument(id)
	var notInAll []string
	var walk func(prefix string, v any) error
	walk = func(p string, v any) error {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				q := k
				if p != "" {
					q = p + "." + k
				}
				if err := walk(q, e); err != nil {
					return err
				}
			}
			return nil
		case []any:
			for _, e := range x {
				if err := walk(p, e); err != nil {
					return err
				}
			}
			return nil
		case nil:
			return nil
		}
		typ, ok := fields.types[p]
		if !ok {
			return nil
		}
		if err := addField(doc, m, fields, p, typ, v); err != nil {
			return err
		}
		if typ != Text && typ != Keyword {
			notInAll = append(notInAll, p)
		}
		if dv := fields.DocValuesField(p); dv != "" {
			addCompanion(doc, dv, typ, v)
			notInAll = append(notInAll, dv)
		}
		// multi-field: a text field with a .keyword sub-field
		if kt, ok := fields.types[p+".keyword"]; ok && kt == Keyword {
			return addField(doc, m, fields, p+".keyword", Keyword, v)
		}
		return nil
	}
	if err := walk("", v); err != nil {
		return nil, err
	}
	doc.AddField(document.NewCompositeField("_all", true, nil, notInAll))
	return doc, nil
}

func addCompanion(doc *document.Document, name string, typ FieldType, v any) {
	s, _ := scalarString(v)
	var i64 int64
	if typ == Date {
		tm, err := parseDateValue(s, "", time.UTC)
		if err != nil {
			return
		}
		i64 = tm.UnixNano()
	} else {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return
		}
		i64 = numeric.Float64ToInt64(f)
	}
	term := numeric.MustNewPrefixCodedInt64(i64, 0)
	doc.AddField(document.NewTextFieldWithIndexingOptions(name, nil, term, index.IndexField|index.DocValues))
}

func addField(doc *document.Document, m mapping.IndexMapping, fields testFields, p string, typ FieldType, v any) error {
	s, _ := scalarString(v)
	switch {
	case typ == Text:
		a := m.AnalyzerNamed(bleveAnalyzer(fields.analyzers[p]))
		doc.AddField(document.NewTextFieldCustom(p, nil, []byte(s), index.IndexField|index.IncludeTermVectors, a))
	case typ == Keyword:
		doc.AddField(document.NewTextFieldCustom(p, nil, []byte(s), index.IndexField|index.DocValues, m.AnalyzerNamed("keyword")))
	case typ.Numeric():
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("field %s: %v", p, err)
		}
		doc.AddField(document.NewNumericFieldWithIndexingOptions(p, nil, f, index.IndexField|index.DocValues))
	case typ == Date:
		tm, err := parseDateValue(s, "", time.UTC)
		if err != nil {
			return err
		}
		f, err := document.NewDateTimeFieldWithIndexingOptions(p, nil, tm, time.RFC3339, index.IndexField|index.DocValues)
		if err != nil {
			return err
		}
		doc.AddField(f)
	case typ == Boolean:
		b, _ := v.(bool)
		doc.AddField(document.NewBooleanFieldWithIndexingOptions(p, nil, b, index.IndexField|index.DocValues))
	}
	return nil
}
