package placement

import "sort"

// index is the fast path of the scan for homogeneous fleets: per zone, the
// usable allocators sorted so that the first one that fits is the one the
// strategy's score ranks best. With one capacity everywhere the score is
// a monotonic function of free memory, so "fullest that fits" (fill) is
// the smallest free ≥ size and "least used" (distribute) the largest
// free; ties go to the lower seeded rank, exactly as in the scan.
// Requests with filters, exclusions, targets or zone exclusions, and
// explained runs, use the scan (placeOne), which records every verdict.
//
// A fleet of several capacities keeps one sorted list per (zone,
// capacity): within a list the score is monotonic in free memory, and the
// zone's best is the best of its lists' heads (at most maxClasses).
type index struct {
	desc   bool      // distribute: largest free first
	lists  [][]int32 // per zone*classes+class: ranks, sorted by key
	nclass int
}

// maxClasses bounds the distinct capacities the index handles; more
// falls back to the scan.
const maxClasses = 16

func (s *State) less(desc bool, a, b int32) bool {
	fa, fb := s.hot[a].free, s.hot[b].free
	if fa != fb {
		if desc {
			return fa > fb
		}
		return fa < fb
	}
	return a < b
}

// classes numbers the distinct capacities of usable allocators (false
// when there are too many).
func (s *State) classes() (int, bool) {
	seen := map[float64]int16{}
	for i := range s.hot {
		h := &s.hot[i]
		if !h.usable || h.invCap == 0 {
			continue
		}
		c, ok := seen[h.invCap]
		if !ok {
			if len(seen) == maxClasses {
				return 0, false
			}
			c = int16(len(seen))
			seen[h.invCap] = c
		}
		h.class = c
	}
	return max(1, len(seen)), true
}

func (s *State) indexFor(desc bool) *index {
	ix := &s.ixAsc
	if desc {
		ix = &s.ixDesc
	}
	if *ix != nil || s.noIndex {
		return *ix
	}
	nc, ok := s.classes()
	if !ok {
		s.noIndex = true
		return nil
	}
	n := &index{desc: desc, lists: make([][]int32, len(s.zones)*nc), nclass: nc}
	for rank, h := range s.hot {
		if h.usable && h.invCap > 0 {
			k := n.key(h)
			n.lists[k] = append(n.lists[k], int32(rank))
		}
	}
	for _, z := range n.lists {
		sort.Slice(z, func(i, j int) bool { return s.less(desc, z[i], z[j]) })
	}
	*ix = n
	return n
}

func (ix *index) key(h hotAlloc) int { return int(h.zone)*ix.nclass + int(h.class) }

// remove takes rank out of its zone list (before its free memory changes).
func (s *State) ixRemove(ix *index, rank int32) {
	if ix == nil || !s.hot[rank].usable || s.hot[rank].invCap == 0 {
		return
	}
	k := ix.key(s.hot[rank])
	z := ix.lists[k]
	j := sort.Search(len(z), func(k int) bool { return !s.less(ix.desc, z[k], rank) })
	if j < len(z) && z[j] == rank {
		ix.lists[k] = append(z[:j], z[j+1:]...)
	}
}

// insert puts rank back at its place (after its free memory changed).
func (s *State) ixInsert(ix *index, rank int32) {
	if ix == nil || !s.hot[rank].usable || s.hot[rank].invCap == 0 {
		return
	}
	zi := ix.key(s.hot[rank])
	z := ix.lists[zi]
	j := sort.Search(len(z), func(k int) bool { return !s.less(ix.desc, z[k], rank) })
	z = append(z, 0)
	copy(z[j+1:], z[j:])
	z[j] = rank
	ix.lists[zi] = z
}

// bestIndexed finds each zone's best allocator through the index,
// skipping excluded allocators and zones; it returns false when the
// index cannot answer (too many capacities).
func (s *State) bestIndexed(best []candidate, size int32, fill, anti bool, same, dep []int32, excluded idxSet, zoneOut []bool) bool {
	ix := s.indexFor(!fill)
	if ix == nil {
		return false
	}
	for k, z := range ix.lists {
		if zoneOut != nil && zoneOut[k/ix.nclass] {
			continue
		}
		start := 0
		if fill {
			start = sort.Search(len(z), func(k int) bool { return s.hot[z[k]].free >= size })
		}
		fallback := int32(-1)
		found := int32(-1)
		for _, rank := range z[start:] {
			h := &s.hot[rank]
			if h.free < size {
				break // descending: nothing further fits
			}
			i := int32(s.order[rank])
			if (same != nil && contains32(same, i)) || excluded.has(int(i)) {
				continue
			}
			if anti && dep != nil && contains32(dep, i) {
				if fallback < 0 {
					fallback = rank
				}
				continue
			}
			found = rank
			break
		}
		penalty := 0.0
		if found < 0 && fallback >= 0 {
			found, penalty = fallback, 2
		}
		if found < 0 {
			continue
		}
		h := &s.hot[found]
		var score float64
		if fill {
			score = 1 - float64(h.free-size)*h.invCap
		} else {
			score = float64(h.free-size) * h.invCap
		}
		score -= penalty
		b := &best[k/ix.nclass]
		if !b.ok || score > b.score || (score == b.score && int(found) < b.rank) {
			*b = candidate{i: s.order[found], score: score, ok: true, rank: int(found)}
		}
	}
	return true
}
