package dsl

import (
	"encoding/json"
	"github.com/blevesearch/bleve/v2"
)

// FieldType is an Elasticsearch field type as the mapping knows it.
type FieldType string

// The field types the node maps.
const (
	Text    FieldType = "text"
	Keyword FieldType = "keyword"
	Long    FieldType = "long"
	Integer FieldType = "integer"
	Short   FieldType = "short"
	Byte    FieldType = "byte"
	Double  FieldType = "double"
	Float   FieldType = "float"
	Date    FieldType = "date"
	Boolean FieldType = "boolean"
	Object  FieldType = "object"
)

// Numeric reports whether t is one of the number types.
func (t FieldType) Numeric() bool {
	switch t {
	case Long, Integer, Short, Byte, Double, Float:
		return true
	}
	return false
}

// whole reports whether t holds whole numbers (shown without a fraction).
func (t FieldType) whole() bool {
	switch t {
	case Long, Integer, Short, Byte:
		return true
	}
	return false
}

// Fields answers what the mapping says of a field path ("user.name",
// "title.keyword"). The mapping package's type satisfies it.
type Fields interface {
	Field(path string) (FieldType, bool)
	// Match returns every leaf path matching a pattern with * wildcards
	// ("title*", "*").
	Match(pattern string) []string
	// Analyzer is the search analyzer of a text field ("" for standard).
	Analyzer(path string) string
}

// DocValuesFields is an optional interface of Fields. bleve's numeric and
// date doc values carry every precision-step term of a value (16 per
// value), and decompressing them dominates sorting and aggregating on
// those fields. A mapping that also indexes each number or date into a
// companion field holding only the shift-0 prefix-coded term
// (numeric.MustNewPrefixCodedInt64(numeric.Float64ToInt64(v), 0) for
// numbers, of t.UnixNano() for dates; IndexField|DocValues, no analyzer,
// not in _all) names it here, and sorts and aggregations read it instead.
type DocValuesFields interface {
	// DocValuesField returns the companion field of a number or date
	// field, or "" when it has none.
	DocValuesField(path string) string
}

// dvField is the bleve field to read a field's doc values from.
func dvField(f Fields, path string) string {
	if d, ok := f.(DocValuesFields); ok {
		if name := d.DocValuesField(path); name != "" {
			return name
		}
	}
	return path
}

// DocMeta is what the store knows of a document beside its source.
type DocMeta struct {
	Version, SeqNo, PrimaryTerm int64
	Routing                     string
}

// Target is one index a search runs against: an index, or each index behind
// an alias or a pattern.
type Target struct {
	Name   string      // the concrete index name (reported as _index)
	Index  bleve.Index // the searcher at the last refresh
	Fields Fields
	// Source returns a document's _source and metadata by id.
	Source func(id string) (source []byte, meta DocMeta, ok bool)
	// Filters are the filters of the aliases the index was reached
	// through (raw query JSON): a document must match one of them. Nil
	// when the index was named directly or through an unfiltered alias.
	Filters []json.RawMessage
	// DocValues is the index's cache of decoded doc values (sorts and
	// aggregations read it); nil reads them through bleve every time.
	DocValues *DocValues
}

// MaxResultWindow is index.max_result_window: from+size may not exceed it.
const MaxResultWindow = 10000

// defaultTrackTotalHits is how far totals are counted exactly by default.
const defaultTrackTotalHits = 10000
