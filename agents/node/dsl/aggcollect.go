package dsl

import (
	"github.com/blevesearch/bleve/v2/numeric"
	"github.com/blevesearch/bleve/v2/search"
	index "github.com/blevesearch/bleve_index_api"
)

// The collector visits the doc values of the matching documents and hands
// them to facet builders. One feeder per aggregated field decodes its
// field's terms into the document's values; a committer, added last, runs
// the aggregations on the complete document when the collector ends it.

// aggCollector feeds one shard's documents into a search's aggRoot.
type aggCollector struct {
	root  *aggRoot
	types []FieldType // this shard's field types, by slot
	names []string    // the bleve fields holding the doc values, by slot
}

func newAggCollector(s *shard, root *aggRoot) (*aggCollector, error) {
	if err := root.prepare(s.t.Fields); err != nil {
		return nil, withIndex(err, s.t.Name)
	}
	ac := &aggCollector{root: root, types: make([]FieldType, len(root.fields)), names: make([]string, len(root.fields))}
	for i, f := range root.fields {
		ac.types[i], _ = s.t.Fields.Field(f)
		ac.names[i] = f
		if ac.types[i].Numeric() || ac.types[i] == Date {
			ac.names[i] = dvField(s.t.Fields, f)
		}
	}
	return ac, nil
}

func (ac *aggCollector) builder(r index.IndexReader) *search.FacetsBuilder {
	fb := search.NewFacetsBuilder(r)
	for i, f := range ac.names {
		fb.Add("\x00"+f, &feeder{root: ac.root, slot: i, field: f, typ: ac.types[i]})
	}
	if len(ac.names) > 0 {
		fb.Add("\x00commit", &committer{root: ac.root, field: ac.names[0]})
	}
	return fb
}

type feeder struct {
	root  *aggRoot
	slot  int
	field string
	typ   FieldType
	strs  map[string]string // interned keyword values
}

func (f *feeder) StartDoc() {}
func (f *feeder) EndDoc()   {}
func (f *feeder) Field() string {
	return f.field
}
func (f *feeder) Size() int                   { return 0 }
func (f *feeder) Result() *search.FacetResult { return &search.FacetResult{Field: f.field} }

func (f *feeder) UpdateVisitor(term []byte) {
	v := &f.root.vals
	switch {
	case f.typ == Keyword:
		v.strs[f.slot] = append(v.strs[f.slot], f.intern(term))
	case f.typ.Numeric():
		if p := numeric.PrefixCoded(term); validShiftZero(p) {
			if i64, err := p.Int64(); err == nil {
				v.nums[f.slot] = append(v.nums[f.slot], numeric.Int64ToFloat64(i64))
			}
		}
	case f.typ == Date:
		if p := numeric.PrefixCoded(term); validShiftZero(p) {
			if i64, err := p.Int64(); err == nil {
				v.nums[f.slot] = append(v.nums[f.slot], float64(i64/1e6))
			}
		}
	case f.typ == Boolean:
		b := 0.0
		if len(term) > 0 && term[0] == 'T' {
			b = 1
		}
		v.nums[f.slot] = append(v.nums[f.slot], b)
	}
	v.has[f.slot] = true
}

// maxInterned bounds a feeder's table of keyword values.
const maxInterned = 4096

// intern returns term as a string, the same string for the same bytes
// while the table has room: a keyword field's few distinct values are
// not allocated again for every document.
func (f *feeder) intern(term []byte) string {
	if s, ok := f.strs[string(term)]; ok {
		return s
	}
	s := string(term)
	if len(f.strs) < maxInterned {
		if f.strs == nil {
			f.strs = map[string]string{}
		}
		f.strs[s] = s
	}
	return s
}

func validShiftZero(p numeric.PrefixCoded) bool {
	shift, err := p.Shift()
	return err == nil && shift == 0
}

type committer struct {
	root  *aggRoot
	field string
}

func (c *committer) StartDoc()                   {}
func (c *committer) UpdateVisitor([]byte)        {}
func (c *committer) EndDoc()                     { c.root.collect() }
func (c *committer) Field() string               { return c.field }
func (c *committer) Size() int                   { return 0 }
func (c *committer) Result() *search.FacetResult { return &search.FacetResult{Field: c.field} }
