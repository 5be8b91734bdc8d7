package dsl

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/blevesearch/bleve/v2/index/scorch"
	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// DocValues keeps, per segment of one bleve (scorch) index, the doc
// values that sorts and aggregations read, decoded once: bleve stores
// them compressed in chunks of 1,024 documents and decompresses a chunk
// per field for every search that visits it, which was most of a
// search's CPU. A segment never changes once written (an update is a
// delete in the old segment and a document in a new one; persisting an
// in-memory segment keeps its id and its documents), so a column read
// once stays right for the segment's life. Columns of segments that left
// the index (merged away) are dropped when a new one is built.
//
// One DocValues belongs to one open index (the node keeps it beside the
// bleve index); it is safe for concurrent searches. Nil disables it.
// The node never removes a field from a bleve mapping (bleve's
// UpdateFieldsInfo), the one case where a segment's doc values would be
// hidden by the snapshot rather than the segment.
type DocValues struct {
	// Budget bounds the memory of the columns, shared by the node's
	// indices; past it, segments are read through bleve as before. Nil
	// gives this index a budget of its own of DefaultDocValuesBytes.
	Budget *DocValuesBudget

	mu    sync.Mutex
	cols  map[dvKey]*dvColumn
	bytes int64
	// refused counts the columns the budget turned away.
	refused int64
}

// DefaultDocValuesBytes is the default bound of the columns of a node's
// indices together.
const DefaultDocValuesBytes = 256 << 20

// DocValuesBudget is the memory the doc-values columns of several
// indices may hold together.
type DocValuesBudget struct {
	max              int64
	used             atomic.Int64
	refused, dropped atomic.Int64
}

// NewDocValuesBudget makes a budget of max bytes.
func NewDocValuesBudget(max int64) *DocValuesBudget { return &DocValuesBudget{max: max} }

// Used is the memory the columns hold.
func (b *DocValuesBudget) Used() int64 { return b.used.Load() }

// Max is the budget's bound.
func (b *DocValuesBudget) Max() int64 { return b.max }

// Refused counts the columns built and not kept because the budget was
// full: their searches read through bleve. It is the cache's answer to
// memory pressure, where Elasticsearch's fielddata cache evicts.
func (b *DocValuesBudget) Refused() int64 { return b.refused.Load() }

// Dropped counts the columns let go because their segment left the index
// (merged away) or their index closed.
func (b *DocValuesBudget) Dropped() int64 { return b.dropped.Load() }

func (b *DocValuesBudget) reserve(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *DocValuesBudget) release(n int64) { b.used.Add(-n) }

// Release drops every column and gives their memory back to the budget
// (the index is closed or deleted).
func (dv *DocValues) Release() {
	if dv == nil {
		return
	}
	dv.mu.Lock()
	defer dv.mu.Unlock()
	for k, c := range dv.cols {
		if c.ok {
			dv.budget().release(c.size())
			dv.budget().dropped.Add(1)
		}
		delete(dv.cols, k)
	}
	dv.bytes = 0
}

// budget is the budget, made on first use when none was given (under
// dv.mu).
func (dv *DocValues) budget() *DocValuesBudget {
	if dv.Budget == nil {
		dv.Budget = NewDocValuesBudget(DefaultDocValuesBytes)
	}
	return dv.Budget
}

type dvKey struct {
	seg   uint64 // the segment's id in its index
	field string
}

// dvColumn is one field's doc values in one segment: document d's terms
// are the terms numbered docStart[d] to docStart[d+1]-1, term t the bytes
// data[termEnd[t-1]:termEnd[t]].
type dvColumn struct {
	once     sync.Once
	ok       bool // built (false: the segment cannot be read this way)
	docStart []uint32
	termEnd  []uint32
	data     []byte
}

func (c *dvColumn) size() int64 {
	return int64(4*len(c.docStart) + 4*len(c.termEnd) + len(c.data))
}

func (c *dvColumn) visit(d uint64, field string, visitor index.DocValueVisitor) {
	start := uint32(0)
	t0, t1 := c.docStart[d], c.docStart[d+1]
	if t0 > 0 {
		start = c.termEnd[t0-1]
	}
	for t := t0; t < t1; t++ {
		end := c.termEnd[t]
		visitor(field, c.data[start:end:end])
		start = end
	}
}

// Bytes is the memory the columns hold.
func (dv *DocValues) Bytes() int64 {
	b, _ := dv.Stats()
	return b
}

// Stats is the memory the columns hold and how many columns the budget
// turned away (DocValuesBudget.Refused), for this index.
func (dv *DocValues) Stats() (bytes, refused int64) {
	if dv == nil {
		return 0, 0
	}
	dv.mu.Lock()
	defer dv.mu.Unlock()
	return dv.bytes, dv.refused
}

// column returns the column of field in segment ss (id), building it on
// first use; nil when it cannot be kept (not visitable, over the bound).
// live lists the ids of the snapshot's segments: a new column drops the
// columns of segments no longer in it.
func (dv *DocValues) column(ss *scorch.SegmentSnapshot, field string, live []uint64) *dvColumn {
	k := dvKey{seg: ss.Id(), field: field}
	dv.mu.Lock()
	if dv.cols == nil {
		dv.cols = map[dvKey]*dvColumn{}
	}
	budget := dv.budget()
	c, ok := dv.cols[k]
	if !ok {
		for old, oc := range dv.cols {
			if !containsID(live, old.seg) {
				delete(dv.cols, old)
				if oc.ok {
					dv.bytes -= oc.size()
					budget.release(oc.size())
					budget.dropped.Add(1)
				}
			}
		}
		c = &dvColumn{}
		dv.cols[k] = c
	}
	dv.mu.Unlock()
	c.once.Do(func() {
		if !c.build(ss.Segment(), field) {
			return
		}
		dv.mu.Lock()
		defer dv.mu.Unlock()
		// A column dropped (merged away, Release) while it was built is
		// not counted: it is used by this search only.
		if dv.cols[k] != c {
			c.docStart, c.termEnd, c.data = nil, nil, nil
			return
		}
		if !budget.reserve(c.size()) {
			c.docStart, c.termEnd, c.data = nil, nil, nil
			dv.refused++
			budget.refused.Add(1)
			return
		}
		dv.bytes += c.size()
		c.ok = true
	})
	if !c.ok {
		return nil
	}
	return c
}

func containsID(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// build reads every document's doc values of field in seg, as bleve's
// own reader hands them to a search.
func (c *dvColumn) build(seg segment.Segment, field string) bool {
	v, ok := seg.(segment.DocValueVisitable)
	if !ok {
		return false
	}
	visitable, err := v.VisitableDocValueFields()
	if err != nil || !containsString(visitable, field) {
		return false
	}
	n := seg.Count()
	if n >= 1<<31 {
		return false
	}
	c.docStart = make([]uint32, n+1)
	fields := []string{field}
	var dvs segment.DocVisitState
	visitor := func(_ string, term []byte) {
		c.data = append(c.data, term...)
		c.termEnd = append(c.termEnd, uint32(len(c.data)))
	}
	for d := uint64(0); d < n; d++ {
		c.docStart[d] = uint32(len(c.termEnd))
		if dvs, err = v.VisitDocValues(d, fields, visitor, dvs); err != nil {
			return false
		}
		if len(c.data) >= 1<<32-1<<20 {
			return false
		}
	}
	c.docStart[n] = uint32(len(c.termEnd))
	c.termEnd = c.termEnd[:len(c.termEnd):len(c.termEnd)]
	c.data = c.data[:len(c.data):len(c.data)]
	return true
}

func containsString(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// dvIndexReader is a scorch snapshot whose doc values are read from a
// DocValues cache where it has them.
type dvIndexReader struct {
	index.IndexReader
	dv      *DocValues
	segs    []*scorch.SegmentSnapshot
	offsets []uint64 // global number of each segment's first document
	live    []uint64
}

// withDocValues wraps r (when it is a scorch snapshot and dv is set).
func withDocValues(r index.IndexReader, dv *DocValues) index.IndexReader {
	is, ok := r.(*scorch.IndexSnapshot)
	if dv == nil || !ok {
		return r
	}
	segs := is.Segments()
	w := &dvIndexReader{IndexReader: r, dv: dv, segs: segs, offsets: make([]uint64, len(segs)), live: make([]uint64, len(segs))}
	// As scorch numbers documents: each segment's first follows the
	// previous segment's documents, deleted ones included
	// (SegmentSnapshot.Count leaves those out).
	var running uint64
	for i, ss := range segs {
		w.offsets[i] = running
		running += ss.Segment().Count()
		w.live[i] = ss.Id()
	}
	return w
}

func (r *dvIndexReader) DocValueReader(fields []string) (index.DocValueReader, error) {
	base, err := r.IndexReader.DocValueReader(fields)
	if err != nil {
		return nil, err
	}
	return &dvReader{r: r, base: base, fields: fields, cols: make([][]*dvColumn, len(r.segs)), seg: -1}, nil
}

// dvReader visits a document's doc values from the columns of its
// segment, or through bleve when a field's column is missing there.
type dvReader struct {
	r      *dvIndexReader
	base   index.DocValueReader
	fields []string
	// cols holds per segment the columns of fields, nil until the
	// segment is first visited (an empty slice: read through bleve).
	cols [][]*dvColumn
	seg  int // the segment of the last document
}

func (d *dvReader) VisitDocValues(id index.IndexInternalID, visitor index.DocValueVisitor) error {
	if len(id) != 8 {
		return d.base.VisitDocValues(id, visitor)
	}
	num := id.Value()
	r := d.r
	s := d.seg
	if s < 0 || num < r.offsets[s] || (s+1 < len(r.offsets) && num >= r.offsets[s+1]) {
		s = sort.Search(len(r.offsets), func(i int) bool { return r.offsets[i] > num }) - 1
		if s < 0 {
			return d.base.VisitDocValues(id, visitor)
		}
		d.seg = s
	}
	cols := d.cols[s]
	if cols == nil {
		cols = make([]*dvColumn, 0, len(d.fields))
		for _, f := range d.fields {
			c := r.dv.column(r.segs[s], f, r.live)
			if c == nil {
				cols = cols[:0:0]
				break
			}
			cols = append(cols, c)
		}
		d.cols[s] = cols
	}
	if len(cols) < len(d.fields) {
		return d.base.VisitDocValues(id, visitor)
	}
	local := num - r.offsets[s]
	if local+1 >= uint64(len(cols[0].docStart)) {
		return d.base.VisitDocValues(id, visitor)
	}
	for i, c := range cols {
		c.visit(local, d.fields[i], visitor)
	}
	return nil
}

func (d *dvReader) BytesRead() uint64 { return d.base.BytesRead() }
