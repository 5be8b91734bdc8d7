package dsl

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"paddock/agents/node/eserr"
)

// Agg is one parsed aggregation. Aggregations are computed from doc values
// of the matching documents while the collector visits them, never from
// _source.
type Agg struct {
	Name  string
	Type  string
	Field string

	Size        int
	MinDocCount int
	Order       []aggOrder
	Include     *regexp.Regexp
	IncludeSet  map[string]bool
	Exclude     *regexp.Regexp
	ExcludeSet  map[string]bool

	Ranges []aggRange

	Interval float64       // histogram
	Calendar byte          // date_histogram calendar unit (m h d w M q y)
	Fixed    time.Duration // date_histogram fixed interval
	Offset   float64       // in the field's unit (ms for dates)
	ExtMin   any           // extended_bounds
	ExtMax   any
	HardMin  any
	HardMax  any

	Format   string
	TimeZone *time.Location
	Missing  any
	Keyed    bool

	Subs []*Agg
}

type aggOrder struct {
	Key  string // _count, _key, or a sub-aggregation (name or name.metric)
	Desc bool
}

type aggRange struct {
	Key      string
	From, To any // raw bounds (numbers, or dates and date math)
	from, to *float64
}

var bucketAggs = map[string]bool{"terms": true, "range": true, "date_range": true, "histogram": true, "date_histogram": true}
var metricAggs = map[string]bool{"avg": true, "sum": true, "min": true, "max": true, "value_count": true, "cardinality": true, "stats": true}

// maxAggDepth bounds nested sub-aggregations.
const maxAggDepth = 5

func parseAggs(v any, depth int) ([]*Agg, error) {
	if depth > maxAggDepth {
		return nil, parsingErr("aggregations nested more than %d levels deep", maxAggDepth)
	}
	o, ok := v.(map[string]any)
	if !ok {
		return nil, parsingErr("[aggs] must be an object of named aggregations")
	}
	var out []*Agg
	for _, name := range sortedKeys(o) {
		if name == "" || strings.ContainsAny(name, "[]>") {
			return nil, parsingErr("Invalid aggregation name [%s]. Aggregation names can contain any character except '[', ']', and '>'", name)
		}
		body, ok := o[name].(map[string]any)
		if !ok {
			return nil, parsingErr("Expected [START_OBJECT] under [%s], but got a [%s] in [%s]", name, xcontentToken(o[name]), name)
		}
		a := &Agg{Name: name}
		for _, k := range sortedKeys(body) {
			switch k {
			case "aggs", "aggregations":
				subs, err := parseAggs(body[k], depth+1)
				if err != nil {
					return nil, err
				}
				a.Subs = append(a.Subs, subs...)
			case "meta":
			default:
				if a.Type != "" {
					return nil, parsingErr("Found two aggregation type definitions in [%s]: [%s] and [%s]", name, a.Type, k)
				}
				a.Type = k
				if err := a.parseBody(body[k]); err != nil {
					return nil, err
				}
			}
		}
		if a.Type == "" {
			return nil, parsingErr("Missing definition for aggregation [%s]", name)
		}
		if metricAggs[a.Type] && len(a.Subs) > 0 {
			return nil, eserr.New(400, "aggregation_initialization_exception",
				"Aggregator [%s] of type [%s] cannot accept sub-aggregations", name, a.Type)
		}
		out = append(out, a)
	}
	return out, nil
}

func (a *Agg) parseBody(v any) error {
	if !bucketAggs[a.Type] && !metricAggs[a.Type] {
		return parsingErr("Unknown aggregation type [%s]", a.Type)
	}
	o, ok := v.(map[string]any)
	if !ok {
		return parsingErr("[%s] aggregation [%s] must be an object", a.Type, a.Name)
	}
	bad := func(k string) error {
		return parsingErr("[%s] aggregation [%s] does not support [%s]", a.Type, a.Name, k)
	}
	a.Size, a.MinDocCount = 10, 1
	if a.Type == "histogram" || a.Type == "date_histogram" {
		a.MinDocCount = 0
	}
	a.TimeZone = time.UTC
	var err error
	for _, k := range sortedKeys(o) {
		val := o[k]
		switch k {
		case "field":
			a.Field, _ = val.(string)
		case "missing":
			a.Missing = val
		case "format":
			a.Format, _ = val.(string)
		case "script":
			return eserr.BadRequest("[%s] aggregation [%s]: scripts are not supported, aggregate on a field", a.Type, a.Name)
		case "size", "shard_size":
			if a.Type != "terms" {
				return bad(k)
			}
			n, err := nonNegative(k, val)
			if err != nil {
				return err
			}
			if k == "size" {
				a.Size = n
			}
		case "min_doc_count":
			if a.MinDocCount, err = nonNegative(k, val); err != nil {
				return err
			}
		case "order":
			if a.Order, err = parseAggOrder(val); err != nil {
				return err
			}
		case "include", "exclude":
			re, set, err := parseIncludeExclude(k, val)
			if err != nil {
				return err
			}
			if k == "include" {
				a.Include, a.IncludeSet = re, set
			} else {
				a.Exclude, a.ExcludeSet = re, set
			}
		case "ranges":
			if a.Ranges, err = parseRanges(a, val); err != nil {
				return err
			}
		case "keyed":
			a.Keyed, _ = val.(bool)
		case "interval":
			if a.Type == "date_histogram" {
				s, _ := scalarString(val)
				if err := a.setDateInterval(s, "legacy"); err != nil {
					return err
				}
				continue
			}
			f, err := toFloat(val)
			if err != nil || f <= 0 {
				return eserr.BadRequest("[interval] must be >0 for histogram aggregation [%s]", a.Name)
			}
			a.Interval = f
		case "calendar_interval", "fixed_interval":
			if a.Type != "date_histogram" {
				return bad(k)
			}
			s, _ := val.(string)
			if err := a.setDateInterval(s, strings.TrimSuffix(k, "_interval")); err != nil {
				return err
			}
		case "offset":
			if s, ok := val.(string); ok && a.Type == "date_histogram" {
				d, err := parseSignedDuration(s)
				if err != nil {
					return eserr.BadRequest("[date_histogram] aggregation [%s]: invalid offset [%s]", a.Name, s)
				}
				a.Offset = float64(d.Milliseconds())
				continue
			}
			f, err := toFloat(val)
			if err != nil {
				return eserr.BadRequest("[%s] aggregation [%s]: invalid offset", a.Type, a.Name)
			}
			a.Offset = f
		case "time_zone":
			s, _ := val.(string)
			loc, err := parseTimeZone(s)
			if err != nil {
				return eserr.BadRequest("[%s] aggregation [%s]: %v", a.Type, a.Name, err)
			}
			a.TimeZone = loc
		case "extended_bounds", "hard_bounds":
			b, ok := val.(map[string]any)
			if !ok {
				return parsingErr("[%s] must be an object with min and max", k)
			}
			if k == "extended_bounds" {
				a.ExtMin, a.ExtMax = b["min"], b["max"]
			} else {
				a.HardMin, a.HardMax = b["min"], b["max"]
			}
		case "precision_threshold", "show_term_doc_count_error", "execution_hint", "collect_mode",
			"value_type", "shard_min_doc_count", "rest_total_hits_as_int":
		default:
			return bad(k)
		}
	}
	if a.Field == "" {
		return parsingErr("[%s] aggregation [%s] requires a [field]", a.Type, a.Name)
	}
	switch a.Type {
	case "histogram":
		if a.Interval <= 0 {
			return parsingErr("[interval] must be >0 for histogram aggregation [%s]", a.Name)
		}
	case "date_histogram":
		if a.Calendar == 0 && a.Fixed == 0 {
			return eserr.BadRequest("Required one of fields [fixed_interval, calendar_interval], but none were specified in [%s]", a.Name)
		}
	case "range", "date_range":
		if len(a.Ranges) == 0 {
			return parsingErr("[%s] aggregation [%s] requires [ranges]", a.Type, a.Name)
		}
	}
	if len(a.Order) == 0 {
		if a.Type == "terms" {
			a.Order = []aggOrder{{Key: "_count", Desc: true}, {Key: "_key"}}
		} else {
			a.Order = []aggOrder{{Key: "_key"}}
		}
	} else if a.Order[len(a.Order)-1].Key != "_key" {
		a.Order = append(a.Order, aggOrder{Key: "_key"})
	}
	return nil
}

func parseAggOrder(v any) ([]aggOrder, error) {
	items, ok := v.([]any)
	if !ok {
		items = []any{v}
	}
	var out []aggOrder
	for _, it := range items {
		o, ok := it.(map[string]any)
		if !ok {
			return nil, parsingErr("[order] must be an object or an array of objects")
		}
		for _, k := range sortedKeys(o) {
			s, _ := o[k].(string)
			var desc bool
			switch strings.ToLower(s) {
			case "asc":
			case "desc":
				desc = true
			default:
				return nil, parsingErr("Unknown order direction [%s], use asc or desc", s)
			}
			if k == "_term" {
				k = "_key"
			}
			out = append(out, aggOrder{Key: k, Desc: desc})
		}
	}
	return out, nil
}

func parseIncludeExclude(k string, v any) (*regexp.Regexp, map[string]bool, error) {
	switch x := v.(type) {
	case string:
		re, err := regexp.Compile("^(?:" + x + ")$")
		if err != nil {
			return nil, nil, eserr.BadRequest("invalid [%s] pattern [%s]: %v", k, x, err)
		}
		return re, nil, nil
	case []any:
		set := map[string]bool{}
		for _, e := range x {
			s, ok := scalarString(e)
			if !ok {
				return nil, nil, parsingErr("[%s] values must be strings or numbers", k)
			}
			set[s] = true
		}
		return nil, set, nil
	}
	return nil, nil, parsingErr("[%s] must be a regular expression or an array of values (partitions are not supported)", k)
}

func parseRanges(a *Agg, v any) ([]aggRange, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, parsingErr("[ranges] must be an array")
	}
	var out []aggRange
	for _, e := range arr {
		o, ok := e.(map[string]any)
		if !ok {
			return nil, parsingErr("[ranges] must hold objects with from and/or to")
		}
		var r aggRange
		for _, k := range sortedKeys(o) {
			switch k {
			case "from":
				r.From = o[k]
			case "to":
				r.To = o[k]
			case "key":
				r.Key, _ = o[k].(string)
			default:
				return nil, parsingErr("[ranges] of [%s] does not support [%s]", a.Name, k)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

var calendarUnits = map[string]byte{
	"minute": 'm', "1m": 'm', "hour": 'h', "1h": 'h', "day": 'd', "1d": 'd', "week": 'w', "1w": 'w',
	"month": 'M', "1M": 'M', "quarter": 'q', "1q": 'q', "year": 'y', "1y": 'y',
}

// setDateInterval reads calendar_interval, fixed_interval or the legacy
// interval (a calendar unit, else a fixed duration).
func (a *Agg) setDateInterval(s, kind string) error {
	if u, ok := calendarUnits[s]; ok && kind != "fixed" {
		a.Calendar = u
		return nil
	}
	if kind == "calendar" {
		return eserr.BadRequest("The supplied interval [%s] could not be parsed as a calendar interval.", s)
	}
	d, err := parseSignedDuration(s)
	if err != nil || d <= 0 {
		return eserr.BadRequest("failed to parse setting [date_histogram.fixedInterval] with value [%s] as a time value", s)
	}
	a.Fixed = d
	return nil
}

func parseSignedDuration(s string) (time.Duration, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	d, err := parseDuration(s)
	if err != nil {
		return 0, err
	}
	if neg {
		d = -d
	}
	return d, nil
}

// --- collection ---

// docVals are one document's values of the aggregated fields, by slot.
type docVals struct {
	nums [][]float64
	strs [][]string
	has  []bool
}

// aggRoot is the aggregation state of one search, shared by its shards.
type aggRoot struct {
	typed  bool // typed_keys
	aggs   []*Agg
	slots  map[string]int
	fields []string
	types  []FieldType // the field's type where first mapped
	mapped []bool
	nodes  []aggNode
	vals   docVals
	now    time.Time
}

func newAggRoot(aggs []*Agg, now time.Time) *aggRoot {
	r := &aggRoot{aggs: aggs, slots: map[string]int{}, now: now}
	var reg func([]*Agg)
	reg = func(as []*Agg) {
		for _, a := range as {
			if _, ok := r.slots[a.Field]; !ok {
				r.slots[a.Field] = len(r.fields)
				r.fields = append(r.fields, a.Field)
			}
			reg(a.Subs)
		}
	}
	reg(aggs)
	n := len(r.fields)
	r.types, r.mapped = make([]FieldType, n), make([]bool, n)
	r.vals = docVals{nums: make([][]float64, n), strs: make([][]string, n), has: make([]bool, n)}
	return r
}

// prepare checks the fields against one shard's mapping and, on the first
// shard that maps a field, fixes its type and builds the nodes.
func (r *aggRoot) prepare(fields Fields) error {
	for i, f := range r.fields {
		t, ok := fields.Field(f)
		if !ok {
			continue
		}
		if t == Text {
			return eserr.BadRequest(textSortReason, f)
		}
		if t == Object {
			return eserr.BadRequest("field [%s] is an object: aggregate on one of its leaf fields", f)
		}
		if !r.mapped[i] {
			r.types[i], r.mapped[i] = t, true
		}
	}
	if r.nodes == nil {
		for _, a := range r.aggs {
			n, err := r.newNode(a)
			if err != nil {
				return err
			}
			r.nodes = append(r.nodes, n)
		}
	}
	return nil
}

func (r *aggRoot) collect() {
	for _, n := range r.nodes {
		n.collect(&r.vals)
	}
	for i := range r.vals.has {
		r.vals.nums[i] = r.vals.nums[i][:0]
		r.vals.strs[i] = r.vals.strs[i][:0]
		r.vals.has[i] = false
	}
}

type aggNode interface {
	collect(v *docVals)
	render() map[string]any
	// sortValue is a single-value metric's value (for ordering buckets).
	sortValue(path string) float64
}

func (r *aggRoot) newNode(a *Agg) (aggNode, error) {
	slot := r.slots[a.Field]
	typ := r.types[slot]
	switch a.Type {
	case "terms":
		return &termsNode{r: r, a: a, slot: slot, typ: typ, buckets: map[string]*bucket{}}, nil
	case "range", "date_range":
		n := &rangeNode{r: r, a: a, slot: slot, typ: typ}
		for _, rg := range a.Ranges {
			c := rg
			var err error
			if c.from, err = r.bound(a, typ, rg.From); err != nil {
				return nil, err
			}
			if c.to, err = r.bound(a, typ, rg.To); err != nil {
				return nil, err
			}
			b, err := r.newBucket(a.Subs)
			if err != nil {
				return nil, err
			}
			n.ranges = append(n.ranges, c)
			n.buckets = append(n.buckets, b)
		}
		return n, nil
	case "histogram", "date_histogram":
		if a.Type == "date_histogram" && r.mapped[slot] && typ != Date {
			return nil, eserr.BadRequest("Field [%s] of type [%s] is not supported for aggregation [date_histogram]", a.Field, typ)
		}
		if a.Type == "histogram" && r.mapped[slot] && !typ.Numeric() && typ != Date {
			return nil, eserr.BadRequest("Field [%s] of type [%s] is not supported for aggregation [histogram]", a.Field, typ)
		}
		return &histoNode{r: r, a: a, slot: slot, typ: typ, buckets: map[float64]*bucket{}}, nil
	}
	if r.mapped[slot] && typ == Keyword && a.Type != "value_count" && a.Type != "cardinality" {
		return nil, eserr.BadRequest("Field [%s] of type [keyword] is not supported for aggregation [%s]", a.Field, a.Type)
	}
	m := &metricNode{r: r, a: a, slot: slot, typ: typ, min: math.Inf(1), max: math.Inf(-1)}
	if a.Type == "cardinality" {
		m.distinct = map[string]struct{}{}
	}
	return m, nil
}

// bound resolves a range bound: a number, or a date (math) for dates.
func (r *aggRoot) bound(a *Agg, typ FieldType, v any) (*float64, error) {
	if v == nil {
		return nil, nil
	}
	if typ == Date || a.Type == "date_range" {
		s, _ := scalarString(v)
		t, err := parseDateMath(s, a.Format, a.TimeZone, r.now, false)
		if err != nil {
			return nil, eserr.BadRequest("[%s] aggregation [%s]: %v", a.Type, a.Name, err)
		}
		f := float64(t.UnixMilli())
		return &f, nil
	}
	f, err := toFloat(v)
	if err != nil {
		return nil, eserr.BadRequest("[%s] aggregation [%s]: range bound %s is not a number", a.Type, a.Name, jsonString(v))
	}
	return &f, nil
}

type bucket struct {
	count int64
	subs  []aggNode
}

func (r *aggRoot) newBucket(subs []*Agg) (*bucket, error) {
	b := &bucket{}
	for _, s := range subs {
		n, err := r.newNode(s)
		if err != nil {
			return nil, err
		}
		b.subs = append(b.subs, n)
	}
	return b, nil
}

func (b *bucket) add(v *docVals) {
	b.count++
	for _, s := range b.subs {
		s.collect(v)
	}
}

func (b *bucket) render(out map[string]any, subs []*Agg, r *aggRoot) map[string]any {
	out["doc_count"] = b.count
	for i, s := range b.subs {
		out[r.key(subs[i])] = s.render()
	}
	return out
}

// key is an aggregation's name in the response; with typed_keys it is
// prefixed with its result type ("sterms#name"), as typed clients expect.
func (r *aggRoot) key(a *Agg) string {
	if !r.typed {
		return a.Name
	}
	t := a.Type
	if a.Type == "terms" {
		ft := r.types[r.slots[a.Field]]
		switch {
		case ft.whole() || ft == Date || ft == Boolean:
			t = "lterms"
		case ft.Numeric():
			t = "dterms"
		default:
			t = "sterms"
		}
	}
	return t + "#" + a.Name
}

// subValue reads a sub-aggregation's value for ordering ("avg_price",
// "stats.max").
func (b *bucket) subValue(subs []*Agg, key string) float64 {
	name, metric, _ := strings.Cut(key, ".")
	for i, s := range subs {
		if s.Name == name {
			return b.subs[i].sortValue(metric)
		}
	}
	return 0
}

// numbers returns a doc's numeric values of a slot (with the missing
// value when it has none).
func numbers(v *docVals, slot int, missing *float64) []float64 {
	if len(v.nums[slot]) == 0 && missing != nil {
		return []float64{*missing}
	}
	return v.nums[slot]
}

func (r *aggRoot) missingNumber(a *Agg, typ FieldType) *float64 {
	if a.Missing == nil {
		return nil
	}
	if typ == Date {
		s, _ := scalarString(a.Missing)
		if t, err := parseDateMath(s, a.Format, a.TimeZone, r.now, false); err == nil {
			f := float64(t.UnixMilli())
			return &f
		}
		return nil
	}
	if typ == Boolean {
		if b, err := parseBoolValue(a.Missing); err == nil {
			f := 0.0
			if b {
				f = 1
			}
			return &f
		}
	}
	f, err := toFloat(a.Missing)
	if err != nil {
		return nil
	}
	return &f
}

// --- terms ---

type termsNode struct {
	r       *aggRoot
	a       *Agg
	slot    int
	typ     FieldType
	buckets map[string]*bucket
	numKeys map[string]float64
}

func (n *termsNode) keysOf(v *docVals) ([]string, []float64) {
	if strs := v.strs[n.slot]; len(strs) > 0 {
		return dedup(strs), nil
	}
	if nums := v.nums[n.slot]; len(nums) > 0 {
		return nil, dedup(nums)
	}
	if n.a.Missing != nil {
		if n.typ == Keyword || !n.r.mapped[n.slot] {
			s, _ := scalarString(n.a.Missing)
			return []string{s}, nil
		}
		if m := n.r.missingNumber(n.a, n.typ); m != nil {
			return nil, []float64{*m}
		}
	}
	return nil, nil
}

func (n *termsNode) collect(v *docVals) {
	strs, nums := n.keysOf(v)
	for _, s := range strs {
		if !n.allowed(s) {
			continue
		}
		n.bucketFor(s).add(v)
	}
	for _, f := range nums {
		k := strconv.FormatFloat(f, 'g', -1, 64)
		if !n.allowed(n.formatNum(f)) {
			continue
		}
		if n.numKeys == nil {
			n.numKeys = map[string]float64{}
		}
		n.numKeys[k] = f
		n.bucketFor(k).add(v)
	}
}

func (n *termsNode) allowed(s string) bool {
	a := n.a
	if a.IncludeSet != nil && !a.IncludeSet[s] {
		return false
	}
	if a.Include != nil && !a.Include.MatchString(s) {
		return false
	}
	if a.ExcludeSet != nil && a.ExcludeSet[s] {
		return false
	}
	if a.Exclude != nil && a.Exclude.MatchString(s) {
		return false
	}
	return true
}

func (n *termsNode) formatNum(f float64) string {
	if n.typ.whole() || n.typ == Date || n.typ == Boolean {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func (n *termsNode) bucketFor(k string) *bucket {
	b := n.buckets[k]
	if b == nil {
		b, _ = n.r.newBucket(n.a.Subs)
		n.buckets[k] = b
	}
	return b
}

func (n *termsNode) sortValue(string) float64 { return 0 }

type keyedBucket struct {
	key    string
	num    float64
	isNum  bool
	bucket *bucket
}

func (n *termsNode) render() map[string]any {
	list := make([]keyedBucket, 0, len(n.buckets))
	for k, b := range n.buckets {
		if b.count < int64(n.a.MinDocCount) {
			continue
		}
		kb := keyedBucket{key: k, bucket: b}
		if f, ok := n.numKeys[k]; ok {
			kb.num, kb.isNum = f, true
		}
		list = append(list, kb)
	}
	sortBuckets(list, n.a)
	var other int64
	if len(list) > n.a.Size {
		for _, kb := range list[n.a.Size:] {
			other += kb.bucket.count
		}
		list = list[:n.a.Size]
	}
	buckets := make([]any, 0, len(list))
	for _, kb := range list {
		m := map[string]any{}
		if kb.isNum {
			m["key"] = numKey(kb.num, n.typ)
			if s, ok := keyAsString(kb.num, n.typ, n.a); ok {
				m["key_as_string"] = s
			}
		} else {
			m["key"] = kb.key
		}
		buckets = append(buckets, kb.bucket.render(m, n.a.Subs, n.r))
	}
	return map[string]any{"doc_count_error_upper_bound": 0, "sum_other_doc_count": other, "buckets": buckets}
}

func sortBuckets(list []keyedBucket, a *Agg) {
	sort.SliceStable(list, func(i, j int) bool {
		x, y := list[i], list[j]
		for _, o := range a.Order {
			var c int
			switch o.Key {
			case "_count":
				c = cmp.Compare(x.bucket.count, y.bucket.count)
			case "_key":
				if x.isNum && y.isNum {
					c = cmp.Compare(x.num, y.num)
				} else {
					c = strings.Compare(x.key, y.key)
				}
			default:
				c = cmp.Compare(x.bucket.subValue(a.Subs, o.Key), y.bucket.subValue(a.Subs, o.Key))
			}
			if o.Desc {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return false
	})
}

func numKey(f float64, typ FieldType) any {
	if (typ.whole() || typ == Date || typ == Boolean) && math.Abs(f) < 1<<62 {
		return int64(f)
	}
	return f
}

// keyAsString formats dates and booleans as Elasticsearch shows them.
func keyAsString(f float64, typ FieldType, a *Agg) (string, bool) {
	switch typ {
	case Date:
		return formatDate(int64(f), a.Format, a.TimeZone), true
	case Boolean:
		return strconv.FormatBool(f != 0), true
	}
	return "", false
}

func formatDate(ms int64, format string, loc *time.Location) string {
	t := time.UnixMilli(ms).In(loc)
	switch format {
	case "", "strict_date_optional_time", "date_optional_time", "strict_date_time", "date_time":
		return t.Format("2006-01-02T15:04:05.000Z07:00")
	case "epoch_millis":
		return strconv.FormatInt(ms, 10)
	case "epoch_second":
		return strconv.FormatInt(ms/1000, 10)
	case "date", "strict_date", "yyyy-MM-dd":
		return t.Format("2006-01-02")
	}
	if l := javaLayout(format); l != "" {
		return t.Format(l)
	}
	return t.Format("2006-01-02T15:04:05.000Z07:00")
}

// dedup drops repeated values (a document counts once per bucket).
func dedup[T comparable](s []T) []T {
	if len(s) < 2 {
		return s
	}
	out := s[:0:0]
	for i, x := range s {
		dup := false
		for _, y := range s[:i] {
			if x == y {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, x)
		}
	}
	return out
}

// --- range ---

type rangeNode struct {
	r       *aggRoot
	a       *Agg
	slot    int
	typ     FieldType
	ranges  []aggRange
	buckets []*bucket
}

func (n *rangeNode) collect(v *docVals) {
	vals := numbers(v, n.slot, n.r.missingNumber(n.a, n.typ))
	for i, rg := range n.ranges {
		for _, f := range vals {
			if (rg.from == nil || f >= *rg.from) && (rg.to == nil || f < *rg.to) {
				n.buckets[i].add(v)
				break
			}
		}
	}
}

func (n *rangeNode) sortValue(string) float64 { return 0 }

func (n *rangeNode) render() map[string]any {
	isDate := n.typ == Date || n.a.Type == "date_range"
	fmtBound := func(f float64) string {
		if isDate {
			return formatDate(int64(f), n.a.Format, n.a.TimeZone)
		}
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	var list []any
	keyed := map[string]any{}
	for i, rg := range n.ranges {
		m := map[string]any{}
		key := rg.Key
		lo, hi := "*", "*"
		if rg.from != nil {
			m["from"] = *rg.from
			lo = fmtBound(*rg.from)
			if isDate {
				m["from_as_string"] = lo
			}
		}
		if rg.to != nil {
			m["to"] = *rg.to
			hi = fmtBound(*rg.to)
			if isDate {
				m["to_as_string"] = hi
			}
		}
		if key == "" {
			key = lo + "-" + hi
		}
		m["key"] = key
		n.buckets[i].render(m, n.a.Subs, n.r)
		if n.a.Keyed {
			delete(m, "key")
			keyed[key] = m
		} else {
			list = append(list, m)
		}
	}
	if n.a.Keyed {
		return map[string]any{"buckets": keyed}
	}
	return map[string]any{"buckets": list}
}

// --- histogram and date_histogram ---

type histoNode struct {
	r       *aggRoot
	a       *Agg
	slot    int
	typ     FieldType
	buckets map[float64]*bucket
}

func (n *histoNode) keyOf(f float64) float64 {
	a := n.a
	if a.Type == "histogram" {
		return math.Floor((f-a.Offset)/a.Interval)*a.Interval + a.Offset
	}
	if a.Fixed > 0 {
		iv := float64(a.Fixed.Milliseconds())
		_, off := time.UnixMilli(int64(f)).In(a.TimeZone).Zone()
		shift := float64(off)*1000 - a.Offset
		return math.Floor((f+shift)/iv)*iv - shift
	}
	t := time.UnixMilli(int64(f) - int64(a.Offset)).In(a.TimeZone)
	return float64(calendarFloor(t, a.Calendar).UnixMilli()) + a.Offset
}

func calendarFloor(t time.Time, unit byte) time.Time {
	if unit == 'q' {
		y, m, _ := t.Date()
		return time.Date(y, m-(m-1)%3, 1, 0, 0, 0, 0, t.Location())
	}
	r, _ := roundDown(t, unit)
	return r
}

func (n *histoNode) next(k float64) float64 {
	a := n.a
	if a.Type == "histogram" {
		return k + a.Interval
	}
	if a.Fixed > 0 {
		return k + float64(a.Fixed.Milliseconds())
	}
	t := time.UnixMilli(int64(k) - int64(a.Offset)).In(a.TimeZone)
	switch a.Calendar {
	case 'q':
		t = t.AddDate(0, 3, 0)
	default:
		t, _ = addUnit(t, a.Calendar, 1)
	}
	return float64(calendarFloor(t, a.Calendar).UnixMilli()) + a.Offset
}

func (n *histoNode) inHardBounds(f float64) bool {
	if n.a.HardMin != nil {
		if lo, err := n.r.bound(n.a, n.typ, n.a.HardMin); err == nil && lo != nil && f < *lo {
			return false
		}
	}
	if n.a.HardMax != nil {
		if hi, err := n.r.bound(n.a, n.typ, n.a.HardMax); err == nil && hi != nil && f > *hi {
			return false
		}
	}
	return true
}

func (n *histoNode) collect(v *docVals) {
	vals := numbers(v, n.slot, n.r.missingNumber(n.a, n.typ))
	var seen [4]float64
	keys := seen[:0]
	for _, f := range vals {
		if (n.a.HardMin != nil || n.a.HardMax != nil) && !n.inHardBounds(f) {
			continue
		}
		k := n.keyOf(f)
		dup := false
		for _, x := range keys {
			if x == k {
				dup = true
			}
		}
		if dup {
			continue
		}
		keys = append(keys, k)
		b := n.buckets[k]
		if b == nil {
			b, _ = n.r.newBucket(n.a.Subs)
			n.buckets[k] = b
		}
		b.add(v)
	}
}

func (n *histoNode) sortValue(string) float64 { return 0 }

// maxEmptyBuckets bounds the empty buckets min_doc_count 0 fills in.
const maxEmptyBuckets = 65536

func (n *histoNode) render() map[string]any {
	keys := make([]float64, 0, len(n.buckets))
	for k := range n.buckets {
		keys = append(keys, k)
	}
	sort.Float64s(keys)
	if n.a.MinDocCount == 0 {
		lo, hi := math.Inf(1), math.Inf(-1)
		if len(keys) > 0 {
			lo, hi = keys[0], keys[len(keys)-1]
		}
		if b, err := n.r.bound(n.a, n.typ, n.a.ExtMin); err == nil && b != nil {
			lo = math.Min(lo, n.keyOf(*b))
		}
		if b, err := n.r.bound(n.a, n.typ, n.a.ExtMax); err == nil && b != nil {
			hi = math.Max(hi, n.keyOf(*b))
		}
		if !math.IsInf(lo, 0) && !math.IsInf(hi, 0) {
			var filled []float64
			for k := lo; k <= hi && len(filled) < maxEmptyBuckets; k = n.next(k) {
				filled = append(filled, k)
				if _, ok := n.buckets[k]; !ok {
					n.buckets[k], _ = n.r.newBucket(n.a.Subs)
				}
			}
			keys = filled
		}
	}
	list := make([]keyedBucket, 0, len(keys))
	for _, k := range keys {
		b := n.buckets[k]
		if b.count < int64(n.a.MinDocCount) {
			continue
		}
		list = append(list, keyedBucket{num: k, isNum: true, bucket: b})
	}
	sortBuckets(list, n.a)
	isDate := n.a.Type == "date_histogram" || n.typ == Date
	var out []any
	keyed := map[string]any{}
	for _, kb := range list {
		m := map[string]any{}
		var ks string
		if isDate {
			m["key"] = int64(kb.num)
			ks = formatDate(int64(kb.num), n.a.Format, n.a.TimeZone)
			m["key_as_string"] = ks
		} else {
			m["key"] = kb.num
			ks = strconv.FormatFloat(kb.num, 'f', 1, 64)
		}
		kb.bucket.render(m, n.a.Subs, n.r)
		if n.a.Keyed {
			keyed[ks] = m
		} else {
			out = append(out, m)
		}
	}
	if n.a.Keyed {
		return map[string]any{"buckets": keyed}
	}
	if out == nil {
		out = []any{}
	}
	return map[string]any{"buckets": out}
}

// --- metrics ---

type metricNode struct {
	a        *Agg
	slot     int
	typ      FieldType
	r        *aggRoot
	count    int64
	sum      float64
	min, max float64
	distinct map[string]struct{}
}

func (n *metricNode) collect(v *docVals) {
	if n.a.Type == "cardinality" {
		for _, s := range v.strs[n.slot] {
			n.distinct[s] = struct{}{}
		}
		for _, f := range v.nums[n.slot] {
			n.distinct[strconv.FormatFloat(f, 'g', -1, 64)] = struct{}{}
		}
		if len(v.strs[n.slot]) == 0 && len(v.nums[n.slot]) == 0 && n.a.Missing != nil {
			s, _ := scalarString(n.a.Missing)
			n.distinct[s] = struct{}{}
		}
		return
	}
	if n.a.Type == "value_count" {
		n.count += int64(len(v.strs[n.slot]) + len(v.nums[n.slot]))
		return
	}
	var missing *float64
	if n.a.Missing != nil && n.r != nil {
		missing = n.r.missingNumber(n.a, n.typ)
	}
	for _, f := range numbers(v, n.slot, missing) {
		n.count++
		n.sum += f
		n.min = math.Min(n.min, f)
		n.max = math.Max(n.max, f)
	}
}

func (n *metricNode) value(metric string) (float64, bool) {
	switch metric {
	case "count", "value_count":
		return float64(n.count), true
	case "sum":
		return n.sum, true
	case "cardinality":
		return float64(len(n.distinct)), true
	}
	if n.count == 0 {
		return 0, false
	}
	switch metric {
	case "avg":
		return n.sum / float64(n.count), true
	case "min":
		return n.min, true
	case "max":
		return n.max, true
	}
	return 0, false
}

func (n *metricNode) sortValue(metric string) float64 {
	if metric == "" {
		metric = n.a.Type
	}
	v, _ := n.value(metric)
	return v
}

func (n *metricNode) render() map[string]any {
	withString := func(m map[string]any, key string, v float64, ok bool) {
		if ok && n.typ == Date {
			m[key+"_as_string"] = formatDate(int64(v), n.a.Format, time.UTC)
		}
	}
	if n.a.Type == "stats" {
		m := map[string]any{"count": n.count, "sum": n.sum, "min": nil, "max": nil, "avg": nil}
		for _, k := range []string{"min", "max", "avg"} {
			if v, ok := n.value(k); ok {
				m[k] = v
				withString(m, k, v, ok)
			}
		}
		return m
	}
	v, ok := n.value(n.a.Type)
	m := map[string]any{"value": nil}
	if ok {
		if n.a.Type == "value_count" || n.a.Type == "cardinality" {
			m["value"] = int64(v)
		} else {
			m["value"] = v
		}
		if n.a.Type == "min" || n.a.Type == "max" || n.a.Type == "avg" {
			withString(m, "value", v, ok)
		}
	}
	return m
}

// renderAggs renders the aggregations of a search.
func renderAggs(aggs []*Agg, root *aggRoot) (json.RawMessage, error) {
	out := map[string]any{}
	for i, a := range aggs {
		if root == nil || i >= len(root.nodes) {
			continue
		}
		out[root.key(a)] = root.nodes[i].render()
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("render aggregations: %w", err)
	}
	return b, nil
}
