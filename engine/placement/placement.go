package placement

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	"paddock/engine"
)

// Allocator is one allocator as the placement core sees it.
type Allocator struct {
	ID, Zone    string
	CapacityMB  int
	UsedMB      int // memory of instances already assigned
	Alive       bool
	Maintenance bool
	Tags        map[string]string
	Instances   []Assigned // what is already assigned there
}

// Assigned is an instance already assigned to an allocator.
type Assigned struct {
	DeploymentID, Kind string
	SizeMB             int
}

// Request asks for one instance per zone in Zones distinct zones.
type Request struct {
	DeploymentID string
	Kind         string // engine.KindElasticsearch | engine.KindKibana
	SizeMB       int
	Zones        int               // how many distinct zones (1..3): one instance per zone
	Filter       map[string]string // allocator tags required
	Exclude      []string          // allocator ids not to use (vacate, lost allocator)
	PreferZones  []string          // zones to use first (replacement in the same zone)
	Targets      []string          // if set, only these allocators (move to targets)
	// ExcludeZones are zones not to use (the zones a scale-out keeps).
	ExcludeZones []string
	// Replaces says the deployment's instances of this kind already
	// assigned are being replaced (grow-and-shrink): they still take
	// memory but do not forbid their allocator to the new instances.
	Replaces bool
}

// Options tune a placement run.
type Options struct {
	Strategy string // engine.Strategy*; empty means fill-anti-affinity
	Seed     int64
	// NoExplain skips the per-allocator verdicts of successful requests
	// (bulk placement); an UnplaceableError always carries them.
	NoExplain bool
	// Brief makes an UnplaceableError carry the per-zone summary without
	// the per-allocator verdicts (dry-runs asking many "could it?").
	Brief bool
	// Discard returns no Placements: a dry-run that asks "could it?"
	// and takes the placements back (State.Mark, Undo) needs only the
	// error, and saves their allocation.
	Discard bool
}

// Placement is one decided instance.
type Placement struct {
	Kind, Allocator, Zone string
	SizeMB                int
	// DeploymentID and Request (index in the reqs given) say which
	// request it serves.
	DeploymentID string
	Request      int
}

// Result holds the decisions and their explanation.
type Result struct {
	Placements []Placement
	Explain    []Verdict // one per allocator considered per request: why rejected or how it scored
}

// Verdict is the decision about one allocator for one request.
type Verdict struct {
	Allocator, Zone string
	Feasible        bool
	Reason          string
	Score           float64
	// Request is the index of the request in the reqs given.
	Request int
	// Chosen marks the allocators picked.
	Chosen bool
}

// ZoneShortfall says what one zone lacks for a request.
type ZoneShortfall struct {
	Zone string
	// Allocators in the zone, and how many of them are feasible.
	Allocators, Feasible int
	// LargestFreeMB is the most free memory on an allocator of the zone
	// that passed every other check (-1 when none did).
	LargestFreeMB int
	NeedsMB       int
	// Rejected counts rejections by reason kind (dead, maintenance...).
	Rejected map[string]int
}

// UnplaceableError is a request that cannot be placed.
type UnplaceableError struct {
	Request Request
	Zones   []ZoneShortfall
	// FilterExcluded lists allocators whose tags do not match the filter.
	FilterExcluded []string
	// Usable is how many zones could take an instance.
	Usable  int
	Explain []Verdict
}

func (e *UnplaceableError) Error() string {
	r := e.Request
	var b strings.Builder
	fmt.Fprintf(&b, "cannot place %s of deployment %s (%d MB in %d zones): only %d zone(s) can take it",
		r.Kind, r.DeploymentID, r.SizeMB, r.Zones, e.Usable)
	for _, z := range e.Zones {
		if z.Feasible > 0 {
			continue
		}
		b.WriteString("; ")
		b.WriteString(z.String())
	}
	if len(e.FilterExcluded) > 0 {
		fmt.Fprintf(&b, "; filter %s: excluded %s", formatTags(r.Filter), strings.Join(e.FilterExcluded, ", "))
	}
	b.WriteString(": add capacity or allocators in those zones, take allocators out of maintenance, or ask for fewer zones or less memory")
	return b.String()
}

// String renders "zone-2: largest free 512 MB, needs 1024 MB" or why no
// allocator of the zone qualifies.
func (z ZoneShortfall) String() string {
	if z.Allocators == 0 {
		return fmt.Sprintf("%s: no allocator", z.Zone)
	}
	if z.LargestFreeMB >= 0 && z.Rejected["memory"] > 0 {
		s := fmt.Sprintf("%s: largest free %d MB, needs %d MB", z.Zone, z.LargestFreeMB, z.NeedsMB)
		if other := z.otherReasons("memory"); other != "" {
			s += " (" + other + ")"
		}
		return s
	}
	return fmt.Sprintf("%s: no usable allocator (%s)", z.Zone, z.otherReasons(""))
}

func (z ZoneShortfall) otherReasons(skip string) string {
	var parts []string
	for _, k := range reasonOrder {
		if k == skip || z.Rejected[k] == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%d %s", z.Rejected[k], reasonText[k]))
	}
	return strings.Join(parts, ", ")
}

var reasonOrder = []string{"dead", "maintenance", "excluded", "target", "zone", "filter", "same", "memory"}
var reasonText = map[string]string{
	"dead":        "not alive",
	"maintenance": "in maintenance",
	"excluded":    "excluded",
	"target":      "not a target",
	"zone":        "zone excluded",
	"filter":      "filtered out",
	"same":        "already running this deployment",
	"memory":      "short of memory",
}

func formatTags(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + m[k]
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Place places every request (all or nothing), updating its own copy of
// the state between requests. On failure it returns *UnplaceableError.
func Place(allocs []Allocator, reqs []Request, opts Options) (Result, error) {
	st := NewState(allocs, opts.Seed)
	return st.Place(reqs, opts)
}

// State is a placement state that successive Place calls update: the
// bulk path (benchmarks, the constructor's batch of plans) keeps one.
type State struct {
	allocs []alloc
	order  []int // seeded shuffle of allocator indexes (tie-breaks)
	// hot mirrors what the scan reads, in seeded order, packed for the
	// cache: hot[rank] describes allocs[order[rank]].
	hot    []hotAlloc
	rankOf []int32
	// ixAsc and ixDesc are the fill and distribute indexes, built on
	// first use (index.go).
	ixAsc, ixDesc *index
	noIndex       bool // too many capacities: always scan
	zones         []string
	zoneIx        map[string]int
	// byZone lists allocator indexes per zone; usableIn counts the
	// alive allocators not in maintenance (brief failures).
	byZone   [][]int
	usableIn []int
	// scratch holds placeOne's per-call buffers (a State is not safe
	// for concurrent use).
	scratch struct {
		best          []candidate
		used, zoneOut []bool
		picked, rest  []int
		// chosen are the allocators of the last placeOne's placements
		// (indexes), dep the number of its deployment (-1 if none yet).
		chosen []int
		dep    int32
		// placements is the buffer of a Discard Place.
		placements []Placement
	}
	byID map[string]int
	// depIDs numbers the deployments with an instance; deps holds, per
	// number, the allocators holding them (deps.go); depFree are
	// numbers to reuse.
	depIDs  map[string]int32
	deps    []depRec
	depFree []int32
	// journal records the changes of Place (and SetAlive) for rollback:
	// a failed Place takes back its own entries, Undo those since a Mark.
	// marks counts the open Marks; without one the journal is emptied
	// after every Place.
	journal []undoEntry
	marks   int
}

type hotAlloc struct {
	invCap float64
	free   int32
	zone   int16
	class  int16 // capacity class in the index
	usable bool  // alive and not in maintenance
}

type alloc struct {
	a    Allocator
	zone int
	used int
}

// NewState copies allocs into a fresh state; seed fixes tie-breaks.
func NewState(allocs []Allocator, seed int64) *State {
	n := 0
	for _, a := range allocs {
		n += len(a.Instances)
	}
	s := &State{allocs: make([]alloc, len(allocs)), zoneIx: map[string]int{}, byID: make(map[string]int, len(allocs)),
		depIDs: make(map[string]int32, n), deps: make([]depRec, 0, n)}
	for i, a := range allocs {
		a.Instances = append([]Assigned(nil), a.Instances...)
		z, ok := s.zoneIx[a.Zone]
		if !ok {
			z = len(s.zones)
			s.zoneIx[a.Zone] = z
			s.zones = append(s.zones, a.Zone)
		}
		s.allocs[i] = alloc{a: a, zone: z, used: a.UsedMB}
		s.byID[a.ID] = i
		for _, in := range a.Instances {
			s.note(in.DeploymentID, in.Kind, int32(i))
		}
	}
	// Zones in name order, then allocators in a seeded order: decisions
	// do not depend on the order the caller listed them in.
	sortedZones := append([]string(nil), s.zones...)
	sort.Strings(sortedZones)
	remap := make([]int, len(s.zones))
	for i, z := range sortedZones {
		remap[s.zoneIx[z]] = i
		s.zoneIx[z] = i
	}
	s.zones = sortedZones
	for i := range s.allocs {
		s.allocs[i].zone = remap[s.allocs[i].zone]
	}
	byName := make([]int, len(allocs))
	for i := range byName {
		byName[i] = i
	}
	sort.Slice(byName, func(i, j int) bool { return s.allocs[byName[i]].a.ID < s.allocs[byName[j]].a.ID })
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	rng.Shuffle(len(byName), func(i, j int) { byName[i], byName[j] = byName[j], byName[i] })
	s.order = byName
	s.scratch.best = make([]candidate, len(s.zones))
	s.scratch.used = make([]bool, len(s.zones))
	s.scratch.zoneOut = make([]bool, len(s.zones))
	s.scratch.picked = make([]int, 0, len(s.zones)+3)
	s.scratch.rest = make([]int, 0, len(s.zones))
	s.byZone = make([][]int, len(s.zones))
	s.usableIn = make([]int, len(s.zones))
	for i := range s.allocs {
		a := &s.allocs[i]
		s.byZone[a.zone] = append(s.byZone[a.zone], i)
		if a.a.Alive && !a.a.Maintenance {
			s.usableIn[a.zone]++
		}
	}
	s.hot = make([]hotAlloc, len(byName))
	s.rankOf = make([]int32, len(byName))
	for rank, i := range byName {
		a := &s.allocs[i]
		inv := 0.0
		if a.a.CapacityMB > 0 {
			inv = 1 / float64(a.a.CapacityMB)
		}
		s.hot[rank] = hotAlloc{invCap: inv, free: int32(a.a.CapacityMB - a.used), zone: int16(a.zone), usable: a.a.Alive && !a.a.Maintenance}
		s.rankOf[i] = int32(rank)
	}
	return s
}

func (s *State) addUsed(i, mb int) {
	rank := s.rankOf[i]
	s.ixRemove(s.ixAsc, rank)
	s.ixRemove(s.ixDesc, rank)
	s.allocs[i].used += mb
	s.hot[rank].free -= int32(mb)
	s.ixInsert(s.ixAsc, rank)
	s.ixInsert(s.ixDesc, rank)
}

func (s *State) note(dep, kind string, i int32) {
	s.noteAt(s.depNumber(dep), kind, i)
}

func contains32(xs []int32, x int32) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Allocators returns the state's current view (used memory and
// instances include the placements made so far), in the caller's order.
func (s *State) Allocators() []Allocator {
	out := make([]Allocator, len(s.allocs))
	for i, a := range s.allocs {
		out[i] = a.a
		out[i].UsedMB = a.used
	}
	return out
}

// Place places reqs all or nothing: on error the state is unchanged.
func (s *State) Place(reqs []Request, opts Options) (Result, error) {
	strategy := opts.Strategy
	if strategy == "" {
		strategy = engine.StrategyFillAntiAffinity
	}
	switch strategy {
	case engine.StrategyFillAntiAffinity, engine.StrategyFill, engine.StrategyDistribute, engine.StrategyDistributeAntiAffinity:
	default:
		return Result{}, fmt.Errorf("unknown placement strategy %q: use %s, %s, %s or %s", strategy,
			engine.StrategyFillAntiAffinity, engine.StrategyFill, engine.StrategyDistribute, engine.StrategyDistributeAntiAffinity)
	}
	var res Result
	total := 0
	for _, r := range reqs {
		total += min(max(r.Zones, 0), 3)
	}
	if opts.Discard {
		res.Placements = s.scratch.placements[:0]
	} else {
		res.Placements = make([]Placement, 0, total)
	}
	start := len(s.journal)
	for ri, r := range reqs {
		if err := validate(r); err != nil {
			s.rollback(start)
			return Result{}, err
		}
		n := len(res.Placements)
		var verdicts []Verdict
		var uerr *UnplaceableError
		res.Placements, verdicts, uerr = s.placeOne(res.Placements, ri, r, strategy, !opts.NoExplain, opts.Brief)
		if uerr != nil {
			s.rollback(start)
			return Result{}, uerr
		}
		d := s.scratch.dep
		if d < 0 && len(res.Placements) > n {
			d = s.depNumber(r.DeploymentID)
		}
		for _, i := range s.scratch.chosen {
			s.addUsed(i, r.SizeMB)
			s.allocs[i].a.Instances = append(s.allocs[i].a.Instances, Assigned{DeploymentID: r.DeploymentID, Kind: r.Kind, SizeMB: r.SizeMB})
			s.noteAt(d, r.Kind, int32(i))
			s.journal = append(s.journal, undoEntry{i: i, dep: r.DeploymentID, kind: r.Kind, size: r.SizeMB, d: d})
		}
		res.Explain = append(res.Explain, verdicts...)
	}
	if s.marks == 0 {
		s.journal = s.journal[:0]
	}
	if opts.Discard {
		clear(res.Placements)
		s.scratch.placements = res.Placements[:0]
		res.Placements = nil
	}
	return res, nil
}

// undoEntry is one change in the journal: an instance placed on
// allocator i, or (alive set) allocator i's liveness changed from was.
type undoEntry struct {
	i         int
	dep, kind string
	size      int
	d         int32 // the deployment's number
	alive     bool
	was       bool
}

// rollback takes back the journal's entries from start on, newest first.
func (s *State) rollback(start int) {
	undo := s.journal[start:]
	for j := len(undo) - 1; j >= 0; j-- {
		u := undo[j]
		if u.alive {
			s.setAlive(u.i, u.was)
			continue
		}
		s.addUsed(u.i, -u.size)
		a := &s.allocs[u.i]
		a.a.Instances = a.a.Instances[:len(a.a.Instances)-1]
		s.forget(u.dep, u.d, u.kind, int32(u.i), true)
	}
	clear(undo) // drop the strings for the collector
	s.journal = s.journal[:start]
}

func validate(r Request) error {
	switch {
	case r.DeploymentID == "":
		return fmt.Errorf("placement request without a deployment id")
	case r.Kind == "":
		return fmt.Errorf("placement request for %s without an instance kind", r.DeploymentID)
	case r.SizeMB <= 0:
		return fmt.Errorf("placement request for %s %s: size must be positive, got %d MB", r.DeploymentID, r.Kind, r.SizeMB)
	case r.Zones < 1 || r.Zones > 3:
		return fmt.Errorf("placement request for %s %s: zone count must be 1 to 3, got %d", r.DeploymentID, r.Kind, r.Zones)
	}
	return nil
}

// candidate is the best allocator found in one zone.
type candidate struct {
	i     int
	score float64
	ok    bool
	// rank is the position in the seeded order (lower wins ties).
	rank int
}

// placeOne places one request, appending its placements to dst: the
// best allocator of each zone is found in one pass, then zones are
// picked (preferred ones first, then by score).
func (s *State) placeOne(dst []Placement, ri int, r Request, strategy string, explain, brief bool) ([]Placement, []Verdict, *UnplaceableError) {
	nz := len(s.zones)
	best := s.scratch.best[:nz]
	clear(best)
	var excluded, targets idxSet
	if len(r.Exclude) > 0 {
		excluded = s.indexSet(r.Exclude)
	}
	if len(r.Targets) > 0 {
		targets = s.indexSet(r.Targets)
	}
	var zoneOut []bool
	if len(r.ExcludeZones) > 0 {
		zoneOut = s.scratch.zoneOut[:nz]
		clear(zoneOut)
		for _, z := range r.ExcludeZones {
			if zi, ok := s.zoneIx[z]; ok {
				zoneOut[zi] = true
			}
		}
	}
	var same, dep []int32
	s.scratch.dep = -1
	if d, ok := s.depIx(r.DeploymentID); ok {
		if !r.Replaces {
			same = s.kindAllocs(d, r.Kind)
		}
		dep = s.deps[d].all
		s.scratch.dep = d
	}
	anti := strategy == engine.StrategyFillAntiAffinity || strategy == engine.StrategyDistributeAntiAffinity
	fill := strategy == engine.StrategyFillAntiAffinity || strategy == engine.StrategyFill
	size := r.SizeMB

	var verdicts []Verdict
	simple := excluded.empty() && targets.empty() && zoneOut == nil && len(r.Filter) == 0
	size32 := int32(size)
	indexed := targets.empty() && len(r.Filter) == 0 && !explain && s.bestIndexed(best, size32, fill, anti, same, dep, excluded, zoneOut)
	for rank := range s.hot {
		if indexed {
			break
		}
		h := &s.hot[rank]
		if !explain && (h.free < size32 || !h.usable) {
			continue // the common rejections, without touching allocs
		}
		i := s.order[rank]
		reason := ""
		if !simple || !h.usable || h.free < size32 || same != nil {
			a := &s.allocs[i]
			switch {
			case !a.a.Alive:
				reason = "dead"
			case a.a.Maintenance:
				reason = "maintenance"
			case excluded.has(i):
				reason = "excluded"
			case !targets.empty() && !targets.has(i):
				reason = "target"
			case zoneOut != nil && zoneOut[a.zone]:
				reason = "zone"
			case len(r.Filter) > 0 && !matches(a.a.Tags, r.Filter):
				reason = "filter"
			case same != nil && contains32(same, int32(i)):
				reason = "same"
			case h.free < size32:
				reason = "memory"
			}
		}
		if reason != "" {
			if explain {
				verdicts = append(verdicts, s.verdict(ri, i, reason, r))
			}
			continue
		}
		var score float64
		if fill {
			score = 1 - float64(h.free-size32)*h.invCap // fullest after placement
		} else {
			score = float64(h.free-size32) * h.invCap // least used after placement
		}
		if anti && dep != nil && contains32(dep, int32(i)) {
			score -= 2 // already hosts this deployment: last resort
		}
		if explain {
			a := &s.allocs[i]
			verdicts = append(verdicts, Verdict{Allocator: a.a.ID, Zone: a.a.Zone, Feasible: true, Score: score, Request: ri,
				Reason: fmt.Sprintf("%d MB free of %d MB", a.a.CapacityMB-a.used, a.a.CapacityMB)})
		}
		b := &best[h.zone]
		if !b.ok || score > b.score {
			*b = candidate{i: i, score: score, ok: true, rank: rank}
		}
	}
	// Zone choice: preferred zones first (in the order given), then the
	// others by their best score, ties by seeded rank.
	picked := s.scratch.picked[:0]
	used := s.scratch.used[:nz]
	clear(used)
	for _, z := range r.PreferZones {
		zi, ok := s.zoneIx[z]
		if !ok || used[zi] || !best[zi].ok || len(picked) == r.Zones {
			continue
		}
		used[zi] = true
		picked = append(picked, zi)
	}
	if len(picked) < r.Zones {
		rest := s.scratch.rest[:0]
		for zi := range nz {
			if !used[zi] && best[zi].ok {
				rest = append(rest, zi)
			}
		}
		// Insertion sort: a handful of zones, no allocation.
		for x := 1; x < len(rest); x++ {
			for y := x; y > 0 && betterZone(best[rest[y]], best[rest[y-1]]); y-- {
				rest[y], rest[y-1] = rest[y-1], rest[y]
			}
		}
		for _, zi := range rest {
			if len(picked) == r.Zones {
				break
			}
			picked = append(picked, zi)
		}
	}
	if len(picked) < r.Zones {
		return dst, nil, s.unplaceable(ri, r, len(picked), brief)
	}
	n0 := len(dst)
	s.scratch.chosen = s.scratch.chosen[:0]
	for _, zi := range picked {
		s.scratch.chosen = append(s.scratch.chosen, best[zi].i)
		a := &s.allocs[best[zi].i].a
		dst = append(dst, Placement{Kind: r.Kind, Allocator: a.ID, Zone: a.Zone, SizeMB: r.SizeMB, DeploymentID: r.DeploymentID, Request: ri})
	}
	out := dst[n0:]
	if explain {
		chosen := map[string]bool{}
		for _, p := range out {
			chosen[p.Allocator] = true
		}
		for k := range verdicts {
			if chosen[verdicts[k].Allocator] {
				verdicts[k].Chosen = true
				verdicts[k].Reason += ", chosen"
			}
		}
	}
	return dst, verdicts, nil
}

// betterZone orders zone candidates: higher score, then lower seeded rank.
func betterZone(a, b candidate) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return a.rank < b.rank
}

// idxSet is a set of allocator indexes: a short list (the usual one or
// two excluded allocators, no allocation) or a map.
type idxSet struct {
	few  []int
	many map[int]bool
}

func (x idxSet) empty() bool { return len(x.few) == 0 && len(x.many) == 0 }

func (x idxSet) has(i int) bool {
	if x.many != nil {
		return x.many[i]
	}
	for _, y := range x.few {
		if y == i {
			return true
		}
	}
	return false
}

func (s *State) indexSet(ids []string) idxSet {
	if len(ids) > 8 {
		m := make(map[int]bool, len(ids))
		for _, id := range ids {
			if i, ok := s.byID[id]; ok {
				m[i] = true
			}
		}
		return idxSet{many: m}
	}
	few := make([]int, 0, len(ids))
	for _, id := range ids {
		if i, ok := s.byID[id]; ok {
			few = append(few, i)
		}
	}
	return idxSet{few: few}
}

func matches(tags, filter map[string]string) bool {
	for k, v := range filter {
		if tags[k] != v {
			return false
		}
	}
	return true
}

// verdict explains a rejection.
func (s *State) verdict(ri, i int, reason string, r Request) Verdict {
	a := &s.allocs[i]
	v := Verdict{Allocator: a.a.ID, Zone: a.a.Zone, Request: ri}
	switch reason {
	case "memory":
		v.Reason = fmt.Sprintf("free %d MB, needs %d MB", a.a.CapacityMB-a.used, r.SizeMB)
	case "filter":
		v.Reason = fmt.Sprintf("tags %s do not match filter %s", formatTags(a.a.Tags), formatTags(r.Filter))
	case "same":
		v.Reason = fmt.Sprintf("already runs %s of deployment %s", r.Kind, r.DeploymentID)
	default:
		v.Reason = reasonText[reason]
	}
	return v
}

// unplaceable recomputes every verdict (the fast pass may have skipped
// them) and summarises per zone; brief keeps only the summary
// (briefZones).
func (s *State) unplaceable(ri int, r Request, usable int, brief bool) *UnplaceableError {
	e := &UnplaceableError{Request: r, Usable: usable}
	zs := make([]ZoneShortfall, len(s.zones))
	for zi, z := range s.zones {
		zs[zi] = ZoneShortfall{Zone: z, LargestFreeMB: -1, NeedsMB: r.SizeMB}
		if !brief {
			zs[zi].Rejected = map[string]int{}
		}
	}
	for _, z := range r.PreferZones {
		if _, ok := s.zoneIx[z]; !ok {
			zs = append(zs, ZoneShortfall{Zone: z, LargestFreeMB: -1, NeedsMB: r.SizeMB, Rejected: map[string]int{}})
		}
	}
	excluded := s.indexSet(r.Exclude)
	targets := s.indexSet(r.Targets)
	zoneOut := s.scratch.zoneOut[:len(s.zones)]
	clear(zoneOut)
	for _, z := range r.ExcludeZones {
		if zi, ok := s.zoneIx[z]; ok {
			zoneOut[zi] = true
		}
	}
	var same []int32
	if d, ok := s.depIx(r.DeploymentID); ok && !r.Replaces {
		same = s.kindAllocs(d, r.Kind)
	}
	if brief {
		s.briefZones(zs, zoneOut, excluded, targets, same, r)
		e.Zones = zs
		return e
	}
	ids := make([]int, len(s.allocs))
	for i := range ids {
		ids[i] = i
	}
	sort.Slice(ids, func(x, y int) bool { return s.allocs[ids[x]].a.ID < s.allocs[ids[y]].a.ID })
	for _, i := range ids {
		a := &s.allocs[i]
		z := &zs[a.zone]
		z.Allocators++
		reason := ""
		switch {
		case !a.a.Alive:
			reason = "dead"
		case a.a.Maintenance:
			reason = "maintenance"
		case excluded.has(i):
			reason = "excluded"
		case len(r.Targets) > 0 && !targets.has(i):
			reason = "target"
		case zoneOut[a.zone]:
			reason = "zone"
		case len(r.Filter) > 0 && !matches(a.a.Tags, r.Filter):
			reason = "filter"
			e.FilterExcluded = append(e.FilterExcluded, a.a.ID)
		case contains32(same, int32(i)):
			reason = "same"
		case a.a.CapacityMB-a.used < r.SizeMB:
			reason = "memory"
			if free := a.a.CapacityMB - a.used; free > z.LargestFreeMB {
				z.LargestFreeMB = free
			}
		}
		if reason == "" {
			z.Feasible++
			e.Explain = append(e.Explain, Verdict{Allocator: a.a.ID, Zone: a.a.Zone, Feasible: true, Request: ri,
				Reason: fmt.Sprintf("%d MB free of %d MB", a.a.CapacityMB-a.used, a.a.CapacityMB)})
			continue
		}
		z.Rejected[reason]++
		e.Explain = append(e.Explain, s.verdict(ri, i, reason, r))
	}
	e.Zones = zs
	return e
}

// FromInventory converts the engine's inventory into placement input:
// an allocator is alive while its alive node exists, its used memory is
// the sum of the instances assigned to it.
func FromInventory(inv []engine.InventoryAllocator) []Allocator {
	out := make([]Allocator, 0, len(inv))
	for _, ia := range inv {
		a := Allocator{
			ID: ia.ID(), Zone: ia.Allocator.Zone, CapacityMB: ia.CapacityMB(),
			Alive: ia.Alive != nil, Maintenance: ia.Maintenance, Tags: ia.Tags(),
		}
		for _, in := range ia.Instances {
			a.UsedMB += in.SizeMB
			a.Instances = append(a.Instances, Assigned{DeploymentID: in.DeploymentID, Kind: in.Kind, SizeMB: in.SizeMB})
		}
		out = append(out, a)
	}
	return out
}

// briefZones fills the per-zone summary of a brief UnplaceableError:
// Allocators, Feasible and LargestFreeMB, without Rejected counts or
// verdicts. Zones the request excludes, and zones without a usable
// allocator, are counted without visiting their allocators.
func (s *State) briefZones(zs []ZoneShortfall, zoneOut []bool, excluded, targets idxSet, same []int32, r Request) {
	for zi := range s.zones {
		z := &zs[zi]
		z.Allocators = len(s.byZone[zi])
		if zoneOut[zi] || s.usableIn[zi] == 0 {
			continue
		}
		for _, i := range s.byZone[zi] {
			a := &s.allocs[i]
			switch {
			case !a.a.Alive, a.a.Maintenance, excluded.has(i), len(r.Targets) > 0 && !targets.has(i),
				len(r.Filter) > 0 && !matches(a.a.Tags, r.Filter), contains32(same, int32(i)):
			case a.a.CapacityMB-a.used < r.SizeMB:
				z.LargestFreeMB = max(z.LargestFreeMB, a.a.CapacityMB-a.used)
			default:
				z.Feasible++
			}
		}
	}
}
