package dsl

// Highlight is the highlight option of a search.
type Highlight struct{}

func parseHighlight(v any) (*Highlight, error) {
	return nil, parsingErr("[highlight] is not supported yet")
}

type highlighter struct{}

func newHighlighter(h *Highlight) *highlighter { return nil }

func (h *highlighter) highlight(s *shard, src []byte) map[string][]string { return nil }
