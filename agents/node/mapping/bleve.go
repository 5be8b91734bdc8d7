package mapping

import (
	"strings"
	"sync"

	"github.com/blevesearch/bleve/v2/analysis"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	_ "github.com/blevesearch/bleve/v2/analysis/analyzer/keyword" // registers "keyword"
	_ "github.com/blevesearch/bleve/v2/analysis/analyzer/simple"  // registers "simple"
	"github.com/blevesearch/bleve/v2/analysis/lang/en"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/token/porter"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/whitespace"
	bmapping "github.com/blevesearch/bleve/v2/mapping"
	index "github.com/blevesearch/bleve_index_api"
)

// customAnalyzers are Elasticsearch's analyzers that bleve has under
// another name or with other filters: ES "standard" keeps stop words
// (bleve's drops English ones), "whitespace" does not lowercase,
// "english" is bleve's "en".
var customAnalyzers = map[string]map[string]any{
	"standard":   {"type": custom.Name, "tokenizer": unicode.Name, "token_filters": []any{lowercase.Name}},
	"whitespace": {"type": custom.Name, "tokenizer": whitespace.Name},
	"english": {"type": custom.Name, "tokenizer": unicode.Name,
		"token_filters": []any{en.PossessiveName, lowercase.Name, en.StopName, porter.Name}},
}

// NewIndexMapping returns the bleve index mapping for m: Elasticsearch's
// analyzer names registered, BM25 scoring, "standard" by default, and
// one field mapping per leaf (query-time help only: documents are built
// by Document, not by bleve's mapper).
func NewIndexMapping(m *Mapping) *bmapping.IndexMappingImpl {
	im := bmapping.NewIndexMapping()
	for name, cfg := range customAnalyzers {
		if err := im.AddCustomAnalyzer(name, cfg); err != nil {
			panic("mapping: define analyzer " + name + ": " + err.Error())
		}
	}
	im.DefaultAnalyzer = "standard"
	im.ScoringModel = index.BM25Scoring
	im.StoreDynamic = false
	im.DocValuesDynamic = false
	im.DefaultMapping = bmapping.NewDocumentMapping()
	if m == nil {
		return im
	}
	for _, p := range m.Leaves() {
		f := m.leaves[p]
		parts := strings.Split(p, ".")
		// A multi-field "title.keyword" hangs beside "title" under its
		// parent: bleve names it parent path + Name.
		name := parts[len(parts)-1]
		parent := parts[:len(parts)-1]
		if len(parts) > 1 {
			if pf, ok := m.leaves[strings.Join(parts[:len(parts)-1], ".")]; ok && pf.Fields != nil {
				name = parts[len(parts)-2] + "." + name
				parent = parts[:len(parts)-2]
			}
		}
		dm := im.DefaultMapping
		for _, seg := range parent {
			sub := dm.Properties[seg]
			if sub == nil {
				sub = bmapping.NewDocumentMapping()
				dm.AddSubDocumentMapping(seg, sub)
			}
			dm = sub
		}
		fm := fieldMapping(f)
		if fm == nil {
			continue
		}
		fm.Name = name
		holder := parts[len(parts)-1]
		if name != holder {
			holder = strings.SplitN(name, ".", 2)[0]
		}
		sub := dm.Properties[holder]
		if sub == nil {
			sub = bmapping.NewDocumentMapping()
			dm.AddSubDocumentMapping(holder, sub)
		}
		sub.AddFieldMapping(fm)
	}
	return im
}

func fieldMapping(f *Field) *bmapping.FieldMapping {
	var fm *bmapping.FieldMapping
	switch f.Type {
	case Text:
		fm = bmapping.NewTextFieldMapping()
		fm.Analyzer = orStd(f.Analyzer, Text)
		fm.IncludeTermVectors = true
		fm.DocValues = false
	case Keyword:
		fm = bmapping.NewKeywordFieldMapping()
		fm.DocValues = true
	case Long, Integer, Short, Byte, Double, Float:
		fm = bmapping.NewNumericFieldMapping()
	case Date:
		fm = bmapping.NewDateTimeFieldMapping()
	case Boolean:
		fm = bmapping.NewBooleanFieldMapping()
	default:
		return nil
	}
	fm.Store = false
	fm.IncludeInAll = f.Type == Text || f.Type == Keyword
	fm.Index = f.indexed()
	return fm
}

var (
	analyzersOnce sync.Once
	analyzerMap   *bmapping.IndexMappingImpl
)

// analyzer returns a registered analyzer by its Elasticsearch name.
func analyzer(name string) analysis.Analyzer {
	analyzersOnce.Do(func() { analyzerMap = NewIndexMapping(nil) })
	return analyzerMap.AnalyzerNamed(name)
}

// Analyze runs a named analyzer on text (for highlighting and tests).
func Analyze(name, text string) []string {
	a := analyzer(orStd(name, Text))
	if a == nil {
		return nil
	}
	var out []string
	for _, t := range a.Analyze([]byte(text)) {
		out = append(out, string(t.Term))
	}
	return out
}
