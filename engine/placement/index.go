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
type index struct {
	desc  bool      // distribute: largest free first
	zones [][]int32 // ranks, sorted by key
}

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

// uniform reports whether every usable allocator has the same capacity.
func (s *State) uniform() bool {
	c := -1.0
	for _, h := range s.hot {
		if !h.usable {
			continue
		}
		if c < 0 {
			c = h.invCap
		} else if h.invCap != c {
			return false
		}
	}
	return true
}

func (s *State) indexFor(desc bool) *index {
	ix := &s.ixAsc
	if desc {
		ix = &s.ixDesc
	}
	if *ix != nil {
		return *ix
	}
	if !s.uniform() {
		return nil
	}
	n := &index{desc: desc, zones: make([][]int32, len(s.zones))}
	for rank, h := range s.hot {
		if h.usable && h.invCap > 0 {
			n.zones[h.zone] = append(n.zones[h.zone], int32(rank))
		}
	}
	for _, z := range n.zones {
		sort.Slice(z, func(i, j int) bool { return s.less(desc, z[i], z[j]) })
	}
	*ix = n
	return n
}

// remove takes rank out of its zone list (before its free memory changes).
func (s *State) ixRemove(ix *index, rank int32) {
	if ix == nil || !s.hot[rank].usable || s.hot[rank].invCap == 0 {
		return
	}
	z := ix.zones[s.hot[rank].zone]
	j := sort.Search(len(z), func(k int) bool { return !s.less(ix.desc, z[k], rank) })
	if j < len(z) && z[j] == rank {
		ix.zones[s.hot[rank].zone] = append(z[:j], z[j+1:]...)
	}
}

// insert puts rank back at its place (after its free memory changed).
func (s *State) ixInsert(ix *index, rank int32) {
	if ix == nil || !s.hot[rank].usable || s.hot[rank].invCap == 0 {
		return
	}
	zi := s.hot[rank].zone
	z := ix.zones[zi]
	j := sort.Search(len(z), func(k int) bool { return !s.less(ix.desc, z[k], rank) })
	z = append(z, 0)
	copy(z[j+1:], z[j:])
	z[j] = rank
	ix.zones[zi] = z
}

// bestIndexed finds each zone's best allocator through the index; it
// returns false when the index cannot answer (heterogeneous fleet).
func (s *State) bestIndexed(best []candidate, size int32, fill, anti bool, same, dep []int32) bool {
	ix := s.indexFor(!fill)
	if ix == nil {
		return false
	}
	for zi, z := range ix.zones {
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
			if same != nil && contains32(same, i) {
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
		best[zi] = candidate{i: s.order[found], score: score - penalty, ok: true, rank: int(found)}
	}
	return true
}
