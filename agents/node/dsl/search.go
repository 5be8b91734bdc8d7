package dsl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/numeric"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/collector"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"

	"paddock/agents/node/eserr"
)

// sortKind says how a sort key's bleve value reads back.
type sortKind int

const (
	kindScore sortKind = iota
	kindDoc
	kindNumber
	kindWhole
	kindDate
	kindString
	kindBool
	kindUnmapped
)

// shard is one target opened for a search: a reader on a point-in-time
// snapshot of its bleve index, and the compiled query and sort.
type shard struct {
	t      Target
	pos    int // the target's position, for stable merging
	reader index.IndexReader
	m      mapping.IndexMapping
	query  query.Query // the query (aggregations run on it)
	hitsQ  query.Query // the query with post_filter (hits)
	order  search.SortOrder
	kinds  []sortKind
	specs  []SortSpec
}

// openShard opens a reader on a target and compiles the request for it.
func openShard(t Target, pos int, req *Request, tiebreak bool) (*shard, error) {
	if t.Index == nil {
		return nil, fmt.Errorf("target %q has no index", t.Name)
	}
	adv, err := t.Index.Advanced()
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", t.Name, err)
	}
	s := &shard{t: t, pos: pos, m: t.Index.Mapping()}
	c := &compiler{fields: t.Fields, m: s.m, index: t.Name, now: req.now}
	if s.query, err = c.compile(req.Query); err != nil {
		return nil, withIndex(err, t.Name)
	}
	if len(t.Filters) > 0 {
		f, err := c.aliasFilter(t.Filters)
		if err != nil {
			return nil, withIndex(err, t.Name)
		}
		b := query.NewBooleanQuery([]query.Query{s.query}, nil, nil)
		b.AddFilter(f)
		s.query = b
	}
	s.hitsQ = s.query
	if req.PostFilter != nil {
		pf, err := c.compile(req.PostFilter)
		if err != nil {
			return nil, withIndex(err, t.Name)
		}
		b := query.NewBooleanQuery([]query.Query{s.query}, nil, nil)
		b.AddFilter(pf)
		s.hitsQ = b
	}
	if err := s.buildSort(req.Sort, tiebreak); err != nil {
		return nil, withIndex(err, t.Name)
	}
	if s.reader, err = adv.Reader(); err != nil {
		return nil, fmt.Errorf("index %s: open reader: %w", t.Name, err)
	}
	return s, nil
}

func withIndex(err error, name string) error {
	if e, ok := err.(*eserr.Error); ok && e.Index == "" {
		c := *e
		c.Index = name
		return &c
	}
	return err
}

func (s *shard) close() {
	if s.reader != nil {
		_ = s.reader.Close()
		s.reader = nil
	}
}

func openShards(targets []Target, req *Request, tiebreak bool) ([]*shard, error) {
	shards := make([]*shard, 0, len(targets))
	for i, t := range targets {
		s, err := openShard(t, i, req, tiebreak)
		if err != nil {
			closeShards(shards)
			return nil, err
		}
		shards = append(shards, s)
	}
	return shards, nil
}

func closeShards(shards []*shard) {
	for _, s := range shards {
		s.close()
	}
}

const textSortReason = "Text fields are not optimised for operations that require per-document field data like aggregations " +
	"and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, " +
	"set fielddata=true on [%s] in order to load field data by uninverting the inverted index. Note that this can use significant memory."

// buildSort turns sort specs into bleve's sort order. tiebreak appends the
// document order, so that a cursor (scroll) never skips equal hits.
func (s *shard) buildSort(specs []SortSpec, tiebreak bool) error {
	if len(specs) == 0 {
		specs = []SortSpec{{Field: "_score", Desc: true}}
	}
	if tiebreak && specs[len(specs)-1].Field != "_doc" {
		specs = append(append([]SortSpec{}, specs...), SortSpec{Field: "_doc"})
	}
	s.specs = specs
	for _, sp := range specs {
		switch sp.Field {
		case "_score":
			s.order = append(s.order, &search.SortScore{Desc: sp.Desc})
			s.kinds = append(s.kinds, kindScore)
			continue
		case "_doc":
			s.order = append(s.order, &docSort{desc: sp.Desc})
			s.kinds = append(s.kinds, kindDoc)
			continue
		case "_id":
			s.order = append(s.order, &search.SortDocID{Desc: sp.Desc})
			s.kinds = append(s.kinds, kindString)
			continue
		}
		typ, ok := s.t.Fields.Field(sp.Field)
		if !ok {
			if sp.UnmappedType == "" {
				return queryShardErr("No mapping found for [%s] in order to sort on", sp.Field)
			}
			typ = FieldType(sp.UnmappedType)
		}
		f := &search.SortField{Field: sp.Field, Desc: sp.Desc, Mode: search.SortFieldMin}
		if ok && (typ.Numeric() || typ == Date) {
			f.Field = dvField(s.t.Fields, sp.Field)
		}
		if sp.Desc {
			f.Mode = search.SortFieldMax
		}
		switch sp.Mode {
		case "min":
			f.Mode = search.SortFieldMin
		case "max":
			f.Mode = search.SortFieldMax
		}
		if sp.MissingFirst {
			f.Missing = search.SortFieldMissingFirst
		} else {
			f.Missing = search.SortFieldMissingLast
		}
		kind := kindString
		switch {
		case !ok:
			kind = kindUnmapped
			f.Type = search.SortFieldAsString
		case typ == Text:
			return eserr.BadRequest(textSortReason, sp.Field)
		case typ == Object:
			return eserr.BadRequest("sorting on object field [%s] is not supported, sort on one of its leaf fields", sp.Field)
		case typ.Numeric():
			kind = kindNumber
			if typ.whole() {
				kind = kindWhole
			}
			f.Type = search.SortFieldAuto
		case typ == Date:
			kind = kindDate
			f.Type = search.SortFieldAuto
		case typ == Boolean:
			kind = kindBool
			f.Type = search.SortFieldAsString
		default:
			f.Type = search.SortFieldAsString
		}
		s.order = append(s.order, f)
		s.kinds = append(s.kinds, kind)
	}
	return nil
}

// docSort orders hits by the order the searcher visits them (index order).
type docSort struct{ desc bool }

func (d *docSort) UpdateVisitor(string, []byte)         {}
func (d *docSort) Value(m *search.DocumentMatch) string { return encodeDoc(m.HitNumber) }
func (d *docSort) DecodeValue(v string) string          { return v }
func (d *docSort) Descending() bool                     { return d.desc }
func (d *docSort) RequiresDocID() bool                  { return false }
func (d *docSort) RequiresScoring() bool                { return false }
func (d *docSort) RequiresFields() []string             { return nil }
func (d *docSort) Reverse()                             { d.desc = !d.desc }
func (d *docSort) Copy() search.SearchSort              { c := *d; return &c }
func encodeDoc(n uint64) string                         { return fmt.Sprintf("%016x", n) }
func decodeDoc(s string) (uint64, error)                { return strconv.ParseUint(s, 16, 64) }

// scoring reports whether hits carry scores: sorted by _score, or
// track_scores.
func (s *shard) scoring(req *Request) bool { return req.TrackScores || s.order.RequiresScore() }

// missingTerm is the sort value bleve gives a document without the field.
func missingTerm(desc, first bool) string {
	if first != desc {
		return search.LowTerm
	}
	return search.HighTerm
}

// encodeAfter turns a search_after value into bleve's sort value.
func (s *shard) encodeAfter(vals []any) ([]string, error) {
	out := make([]string, len(s.order))
	for i, kind := range s.kinds {
		if i >= len(vals) {
			out[i] = search.LowTerm
			continue
		}
		v := vals[i]
		sp := s.specs[i]
		if v == nil {
			out[i] = missingTerm(sp.Desc, sp.MissingFirst)
			continue
		}
		str, _ := scalarString(v)
		bad := func() error {
			return parsingErr("Failed to parse search_after value [%s] for field [%s]", jsonString(v), sp.Field)
		}
		switch kind {
		case kindScore:
			if _, err := strconv.ParseFloat(str, 64); err != nil {
				return nil, bad()
			}
			out[i] = str
		case kindDoc:
			n, err := strconv.ParseUint(str, 10, 64)
			if err != nil {
				return nil, bad()
			}
			out[i] = encodeDoc(n)
		case kindNumber, kindWhole:
			f, err := strconv.ParseFloat(str, 64)
			if err != nil {
				return nil, bad()
			}
			out[i] = string(numeric.MustNewPrefixCodedInt64(numeric.Float64ToInt64(f), 0))
		case kindDate:
			var t time.Time
			if ms, err := strconv.ParseInt(str, 10, 64); err == nil {
				t = time.UnixMilli(ms)
			} else if t, err = parseDateValue(str, "", time.UTC); err != nil {
				return nil, bad()
			}
			out[i] = string(numeric.MustNewPrefixCodedInt64(t.UnixNano(), 0))
		case kindBool:
			switch str {
			case "true", "1":
				out[i] = "T"
			default:
				out[i] = "F"
			}
		default:
			out[i] = str
		}
	}
	return out, nil
}

// decodeSort turns a hit's bleve sort values into Elasticsearch's.
func (s *shard) decodeSort(d *search.DocumentMatch) []any {
	out := make([]any, len(s.kinds))
	for i, kind := range s.kinds {
		if kind == kindScore {
			out[i] = d.Score
			continue
		}
		if i >= len(d.Sort) {
			continue
		}
		v := d.Sort[i]
		if v == search.HighTerm || v == search.LowTerm {
			out[i] = nil
			continue
		}
		switch kind {
		case kindDoc:
			n, _ := decodeDoc(v)
			out[i] = n
		case kindNumber, kindWhole:
			i64, err := numeric.PrefixCoded(v).Int64()
			if err != nil {
				out[i] = nil
				continue
			}
			f := numeric.Int64ToFloat64(i64)
			if kind == kindWhole && f == math.Trunc(f) && math.Abs(f) < 1<<62 {
				out[i] = int64(f)
			} else {
				out[i] = f
			}
		case kindDate:
			i64, err := numeric.PrefixCoded(v).Int64()
			if err != nil {
				out[i] = nil
				continue
			}
			out[i] = i64 / int64(time.Millisecond)
		case kindBool:
			if v == "T" {
				out[i] = 1
			} else {
				out[i] = 0
			}
		default:
			out[i] = v
		}
	}
	return out
}

// bm25 makes the term searchers score with BM25 whatever the mapping says.
func bm25(ctx context.Context) context.Context {
	return context.WithValue(ctx, search.GetScoringModelCallbackKey,
		search.GetScoringModelCallbackFn(func() string { return index.BM25Scoring }))
}

// shardResult is what one shard found.
type shardResult struct {
	s        *shard
	hits     []*search.DocumentMatch
	total    uint64
	maxScore float64
	early    bool
}

// collect runs the request on one shard: the top size+skip hits (or size
// hits after a cursor), the total and the aggregations.
func (s *shard) collect(ctx context.Context, req *Request, size, skip int, after []string, root *aggRoot) (*shardResult, error) {
	ctx = bm25(ctx)
	score := ""
	if !s.scoring(req) && req.MinScore == nil {
		score = "none"
	}
	q := s.hitsQ
	if root != nil && req.PostFilter != nil {
		// aggregations see the query, hits the query and the post_filter
		if _, err := s.search(ctx, req, s.query, "none", 0, 0, nil, root); err != nil {
			return nil, err
		}
		root = nil
	}
	return s.search(ctx, req, q, score, size, skip, after, root)
}

func (s *shard) search(ctx context.Context, req *Request, q query.Query, score string, size, skip int, after []string, root *aggRoot) (*shardResult, error) {
	srch, err := q.Searcher(ctx, s.reader, s.m, search.SearcherOptions{Score: score})
	if err != nil {
		return nil, searchErr(err, s.t.Name)
	}
	defer srch.Close()
	if req.MinScore != nil {
		min := *req.MinScore
		srch = searcher.NewFilteringSearcher(ctx, srch, func(_ *search.SearchContext, d *search.DocumentMatch) bool {
			return d.Score >= min
		})
	}
	var coll *collector.TopNCollector
	if after != nil {
		coll = collector.NewTopNCollectorAfter(size, s.order, after)
	} else {
		coll = collector.NewTopNCollector(size, skip, s.order)
	}
	if req.TerminateAfter > 0 {
		coll.SetEarlyStop(req.TerminateAfter)
	}
	res := &shardResult{s: s}
	if root != nil {
		ac, err := newAggCollector(s, root)
		if err != nil {
			return nil, err
		}
		coll.SetFacetsBuilder(ac.builder(s.reader))
	}
	if err := coll.Collect(ctx, srch, withDocValues(s.reader, s.t.DocValues)); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, searchErr(err, s.t.Name)
	}
	res.hits = coll.Results()
	res.total = coll.Total()
	res.maxScore = coll.MaxScore()
	res.early = coll.EarlyStopped()
	return res, nil
}

func searchErr(err error, index string) error {
	if _, ok := err.(*eserr.Error); ok {
		return err
	}
	return eserr.New(500, "search_phase_execution_exception", "all shards failed: %v", err).WithIndex(index)
}

// merged is the result of a search over every shard.
type merged struct {
	hits     []mergedHit
	total    uint64
	maxScore float64
	early    bool
	root     *aggRoot
}

type mergedHit struct {
	s *shard
	d *search.DocumentMatch
}

// run searches every shard and merges the hits in sort order. afters
// holds each shard's cursor (bleve sort values), or is nil.
func run(ctx context.Context, shards []*shard, req *Request, from, size int, afters [][]string, withAggs bool) (*merged, error) {
	m := &merged{}
	if withAggs && len(req.Aggs) > 0 {
		m.root = newAggRoot(req.Aggs, req.now)
		m.root.typed = req.TypedKeys
	}
	for i, s := range shards {
		var after []string
		if afters != nil {
			after = afters[i]
		}
		skip, n := from, size
		if len(shards) > 1 {
			skip, n = 0, from+size
		}
		r, err := s.collect(ctx, req, n, skip, after, m.root)
		if err != nil {
			return nil, err
		}
		m.total += r.total
		m.early = m.early || r.early
		if r.maxScore > m.maxScore {
			m.maxScore = r.maxScore
		}
		for _, d := range r.hits {
			m.hits = append(m.hits, mergedHit{s: s, d: d})
		}
	}
	if len(shards) > 1 {
		sortMerged(m, shards)
		from = min(from, len(m.hits))
		end := min(from+size, len(m.hits))
		m.hits = m.hits[from:end]
	}
	return m, nil
}

func sortMerged(m *merged, shards []*shard) {
	if len(shards) < 2 {
		return
	}
	order := shards[0].order
	scoring, desc := order.CacheIsScore(), order.CacheDescending()
	sort.SliceStable(m.hits, func(i, j int) bool {
		a, b := m.hits[i], m.hits[j]
		if c := order.Compare(scoring, desc, a.d, b.d); c != 0 {
			return c < 0
		}
		return a.s.pos < b.s.pos
	})
}

// encodeAfters turns search_after values into each shard's cursor.
func encodeAfters(shards []*shard, vals []any) ([][]string, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	out := make([][]string, len(shards))
	for i, s := range shards {
		enc, err := s.encodeAfter(vals)
		if err != nil {
			return nil, err
		}
		out[i] = enc
	}
	return out, nil
}

// cursor is a hit's position in its shard's sort order, as bleve's
// search_after takes it.
func (s *shard) cursor(d *search.DocumentMatch) []string {
	out := make([]string, len(s.kinds))
	for i, k := range s.kinds {
		if k == kindScore {
			out[i] = strconv.FormatFloat(d.Score, 'g', -1, 64)
		} else if i < len(d.Sort) {
			out[i] = d.Sort[i]
		}
	}
	return out
}

// response is Elasticsearch's search response.
type response struct {
	ScrollID        string          `json:"_scroll_id,omitempty"`
	Took            int64           `json:"took"`
	TimedOut        bool            `json:"timed_out"`
	TerminatedEarly *bool           `json:"terminated_early,omitempty"`
	Shards          shardsJSON      `json:"_shards"`
	Hits            hitsJSON        `json:"hits"`
	Aggregations    json.RawMessage `json:"aggregations,omitempty"`
}

type shardsJSON struct {
	Total      int `json:"total"`
	Successful int `json:"successful"`
	Skipped    int `json:"skipped"`
	Failed     int `json:"failed"`
}

type totalJSON struct {
	Value    int64  `json:"value"`
	Relation string `json:"relation"`
}

type hitsJSON struct {
	Total    any       `json:"total,omitempty"`
	MaxScore *float64  `json:"max_score"`
	Hits     []hitJSON `json:"hits"`
}

type hitJSON struct {
	Index       string              `json:"_index"`
	ID          string              `json:"_id"`
	Version     *int64              `json:"_version,omitempty"`
	SeqNo       *int64              `json:"_seq_no,omitempty"`
	PrimaryTerm *int64              `json:"_primary_term,omitempty"`
	Score       *float64            `json:"_score"`
	Routing     string              `json:"_routing,omitempty"`
	Source      json.RawMessage     `json:"_source,omitempty"`
	Highlight   map[string][]string `json:"highlight,omitempty"`
	Sort        []any               `json:"sort,omitempty"`
}

func score(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	// Elasticsearch reports float scores
	v := float64(float32(f))
	return &v
}

// render builds the response from merged results.
func render(ctx context.Context, req *Request, shards []*shard, m *merged, start time.Time) (*response, error) {
	resp := &response{Shards: shardsJSON{Total: len(shards), Successful: len(shards)}}
	scored := len(shards) > 0 && shards[0].scoring(req)
	showSort := len(req.Sort) > 0
	if scored && len(m.hits) > 0 {
		resp.Hits.MaxScore = score(m.maxScore)
	}
	if req.TrackTotalHits != 0 || req.TotalAsInt {
		t := totalJSON{Value: int64(m.total), Relation: "eq"}
		if req.TrackTotalHits > 0 && t.Value > int64(req.TrackTotalHits) {
			t = totalJSON{Value: int64(req.TrackTotalHits), Relation: "gte"}
		}
		if req.TotalAsInt {
			resp.Hits.Total = t.Value
		} else {
			resp.Hits.Total = t
		}
	}
	if req.TerminateAfter > 0 {
		early := m.early
		resp.TerminatedEarly = &early
	}
	resp.Hits.Hits = make([]hitJSON, 0, len(m.hits))
	hl := newHighlighter(req.Highlight, req.Query)
	for _, h := range m.hits {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hit := hitJSON{Index: h.s.t.Name, ID: h.d.ID}
		if scored {
			hit.Score = score(h.d.Score)
		}
		if showSort {
			hit.Sort = h.s.decodeSort(h.d)[:len(req.Sort)]
		}
		src, meta, ok := h.s.t.Source(h.d.ID)
		if !ok {
			// deleted since the snapshot: Elasticsearch's searcher would
			// still see it; the node answers without its source.
			src = nil
		}
		if req.Version {
			v := meta.Version
			hit.Version = &v
		}
		if req.SeqNoPrimaryTerm {
			seq, pt := meta.SeqNo, meta.PrimaryTerm
			hit.SeqNo, hit.PrimaryTerm = &seq, &pt
		}
		hit.Routing = meta.Routing
		if hl != nil && ok {
			hit.Highlight = hl.highlight(h.s, src)
		}
		if ok && !req.Source.Disabled {
			filtered, err := filterSource(src, req.Source)
			if err != nil {
				return nil, err
			}
			hit.Source = filtered
		}
		resp.Hits.Hits = append(resp.Hits.Hits, hit)
	}
	if len(req.Aggs) > 0 {
		aggs, err := renderAggs(req.Aggs, m.root)
		if err != nil {
			return nil, err
		}
		resp.Aggregations = aggs
	}
	resp.Took = time.Since(start).Milliseconds()
	return resp, nil
}

// Search runs a search over targets and returns Elasticsearch's response.
func Search(ctx context.Context, targets []Target, req *Request) (any, error) {
	start := time.Now()
	if req.Scroll > 0 {
		return nil, eserr.BadRequest("scroll searches go through Scrolls.Start")
	}
	shards, err := openShards(targets, req, false)
	if err != nil {
		return nil, err
	}
	defer closeShards(shards)
	afters, err := encodeAfters(shards, req.SearchAfter)
	if err != nil {
		return nil, err
	}
	m, err := run(ctx, shards, req, req.From, req.Size, afters, true)
	if err != nil {
		return nil, err
	}
	return render(ctx, req, shards, m, start)
}

// Count counts the documents the request's query matches.
func Count(ctx context.Context, targets []Target, req *Request) (int64, error) {
	r := *req
	r.Sort, r.Aggs, r.PostFilter, r.TrackScores, r.MinScore = nil, nil, nil, false, req.MinScore
	shards, err := openShards(targets, &r, false)
	if err != nil {
		return 0, err
	}
	defer closeShards(shards)
	var total int64
	for _, s := range shards {
		res, err := s.search(bm25(ctx), &r, s.query, "none", 0, 0, nil, nil)
		if err != nil {
			return 0, err
		}
		total += int64(res.total)
	}
	return total, nil
}

// matchingBatch is how many ids Matching reads before handing them out.
const matchingBatch = 1000

// Matching calls fn for every (index, id) the request's query matches, in
// batches read from a point-in-time snapshot, without the result window.
func Matching(ctx context.Context, targets []Target, req *Request, fn func(index, id string) error) error {
	r := *req
	r.Sort = nil
	shards, err := openShards(targets, &r, false)
	if err != nil {
		return err
	}
	defer closeShards(shards)
	for _, s := range shards {
		if err := s.matching(ctx, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *shard) matching(ctx context.Context, fn func(index, id string) error) error {
	srch, err := s.query.Searcher(bm25(ctx), s.reader, s.m, search.SearcherOptions{Score: "none"})
	if err != nil {
		return searchErr(err, s.t.Name)
	}
	defer srch.Close()
	sctx := &search.SearchContext{
		DocumentMatchPool: search.NewDocumentMatchPool(srch.DocumentMatchPoolSize()+1, 0),
		IndexReader:       s.reader,
	}
	batch := make([]string, 0, matchingBatch)
	flush := func() error {
		for _, id := range batch {
			if err := fn(s.t.Name, id); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, err := srch.Next(sctx)
		if err != nil {
			return searchErr(err, s.t.Name)
		}
		if d == nil {
			break
		}
		id, err := s.reader.ExternalID(d.IndexInternalID)
		if err != nil {
			return searchErr(err, s.t.Name)
		}
		sctx.DocumentMatchPool.Put(d)
		batch = append(batch, id)
		if len(batch) == matchingBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// aliasFilter compiles alias filters into one query matching any of them.
func (c *compiler) aliasFilter(filters []json.RawMessage) (query.Query, error) {
	parts := make([]query.Query, 0, len(filters))
	for _, raw := range filters {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, parsingErr("alias filter: %v", err)
		}
		q, err := parseQuery(v, 0)
		if err != nil {
			return nil, err
		}
		cq, err := c.compile(q)
		if err != nil {
			return nil, err
		}
		parts = append(parts, cq)
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	return query.NewDisjunctionQuery(parts), nil
}
