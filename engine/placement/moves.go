package placement

import (
	"slices"
	"strings"

	"paddock/engine"
)

// Move is what moving a deployment's instances off some allocators asks
// of placement: the one rule for a move plan (vacate, a lost allocator),
// used by the constructor to execute it and by the headroom dry-run
// (engine/headroom) to ask "could it?".
type Move struct {
	// Keep are the instances not on the allocators moved off.
	Keep []engine.PlacedInstance
	// Moved are the instances to replace, in the order of Requests.
	Moved []engine.PlacedInstance
	// Requests place one replacement per moved instance: same kind and
	// size, in the instance's zone if it can, never in a zone that keeps
	// an instance of the kind.
	Requests []Request
}

// MoveRequests computes the move of deployment dep off the allocators
// moveFrom, optionally only onto targets.
func MoveRequests(dep engine.Deployment, moveFrom, targets []string) Move {
	var mv Mover
	return mv.Move(&dep, moveFrom, targets)
}

// Mover computes moves one after another in the same memory: the Move it
// returns (its slices and its requests' zone lists) is valid until the
// next call. A dry-run computing thousands of moves (engine/headroom)
// keeps one; the rule is MoveRequests'.
type Mover struct {
	all   []engine.PlacedInstance
	reqs  []Request
	zones []string
}

// Move computes the move of deployment dep off the allocators moveFrom,
// optionally only onto targets (see MoveRequests).
func (mv *Mover) Move(dep *engine.Deployment, moveFrom, targets []string) Move {
	n, moving := len(dep.Instances), 0
	// Which instances move (instances are addressed by index below: a
	// dry-run computes thousands of moves).
	var movBuf [16]bool
	mov := movBuf[:0]
	for j := range dep.Instances {
		m := slices.Contains(moveFrom, dep.Instances[j].Allocator)
		mov = append(mov, m)
		if m {
			moving++
		}
	}
	// One backing array each for the instances, the requests and the
	// zone lists.
	all := grow(mv.all, n)
	mv.all = all
	m := Move{Keep: all[0 : 0 : n-moving], Moved: all[n-moving : n-moving : n]}
	if moving > 0 {
		m.Requests = grow(mv.reqs, moving)[:0]
		mv.reqs = m.Requests
	}
	zones := grow(mv.zones, 2*n)[:0]
	mv.zones = zones
	var ixBuf [16]int
	for _, kind := range []string{engine.KindElasticsearch, engine.KindKibana} {
		// The instances of the kind, by zone then id.
		ins := ixBuf[:0]
		for j := range dep.Instances {
			if dep.Instances[j].Kind == kind {
				ins = append(ins, j)
			}
		}
		for x := 1; x < len(ins); x++ {
			for y := x; y > 0 && byZoneThenID(dep.Instances[ins[y]], dep.Instances[ins[y-1]]) < 0; y-- {
				ins[y], ins[y-1] = ins[y-1], ins[y]
			}
		}
		start := len(zones)
		for _, j := range ins {
			if z := dep.Instances[j].Zone; !mov[j] && !slices.Contains(zones[start:], z) {
				zones = append(zones, z)
			}
		}
		var stay []string
		if len(zones) > start {
			stay = zones[start:len(zones):len(zones)]
		}
		filter := dep.Spec.Elasticsearch.Filter
		if kind == engine.KindKibana {
			filter = dep.Spec.Kibana.Filter
		}
		for _, j := range ins {
			in := &dep.Instances[j]
			if !mov[j] {
				m.Keep = append(m.Keep, *in)
				continue
			}
			m.Moved = append(m.Moved, *in)
			zones = append(zones, in.Zone)
			m.Requests = append(m.Requests, Request{
				DeploymentID: dep.ID, Kind: kind, SizeMB: in.SizeMB, Zones: 1,
				Filter: filter, Exclude: moveFrom, Targets: targets,
				PreferZones: zones[len(zones)-1 : len(zones) : len(zones)], ExcludeZones: stay,
			})
		}
	}
	if len(m.Keep) == 0 {
		m.Keep = nil
	}
	if len(m.Moved) == 0 {
		m.Moved = nil
	}
	return m
}

// grow returns xs with length n, reusing its array when it is large
// enough (the old contents are not kept).
func grow[T any](xs []T, n int) []T {
	if cap(xs) < n {
		return make([]T, n)
	}
	return xs[:n]
}

// byZoneThenID orders instances by zone, then id.
func byZoneThenID(a, b engine.PlacedInstance) int {
	if c := strings.Compare(a.Zone, b.Zone); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}
