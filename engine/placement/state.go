package placement

// A State can be kept for as long as its allocators stay as they are
// (alive, in maintenance or not, capacity, tags, zone): instances placed
// elsewhere (by another plan, seen in ZooKeeper) are added with Assign,
// and those removed, or placed but never written, taken out with
// Release. Each call costs O(log n) with the index (a binary search and
// a slice move per allocator list), so a scheduler keeps one State
// instead of building one per decision.

// Assign records an instance of deployment dep, of kind and size mb, on
// the allocator allocID (false when the state has no such allocator).
func (s *State) Assign(allocID, dep, kind string, mb int) bool {
	i, ok := s.byID[allocID]
	if !ok {
		return false
	}
	s.addUsed(i, mb)
	s.allocs[i].a.Instances = append(s.allocs[i].a.Instances, Assigned{DeploymentID: dep, Kind: kind, SizeMB: mb})
	s.note(dep, kind, int32(i))
	return true
}

// Release takes out one instance of deployment dep, of kind and size
// mb, from the allocator allocID (false when none is recorded there).
func (s *State) Release(allocID, dep, kind string, mb int) bool {
	i, ok := s.byID[allocID]
	if !ok {
		return false
	}
	a := &s.allocs[i]
	at := -1
	for j, in := range a.a.Instances {
		if in.DeploymentID == dep && in.Kind == kind && in.SizeMB == mb {
			at = j
		}
	}
	if at < 0 {
		return false
	}
	a.a.Instances = append(a.a.Instances[:at], a.a.Instances[at+1:]...)
	s.addUsed(i, -mb)
	if d, ok := s.depIx(dep); ok {
		s.forget(dep, d, kind, int32(i), false)
	}
	return true
}

// Mark starts a dry-run on the state: every Place and SetAlive from now
// on can be taken back with Undo(mark), newest first. Marks nest. Until
// the Undo, change the state through Place and SetAlive only (Assign and
// Release are not recorded and would break the rollback). This is how a
// dry-run asks many "what if?" of one state instead of building a
// State per question (engine/headroom).
func (s *State) Mark() int {
	s.marks++
	return len(s.journal)
}

// Undo takes back everything recorded since mark (Mark's value) and
// closes that Mark.
func (s *State) Undo(mark int) {
	s.rollback(mark)
	s.marks--
}

// SetAlive marks an allocator alive or lost (false when the state has no
// such allocator); placement stops or starts using it at once. Within a
// Mark, Undo restores it.
func (s *State) SetAlive(allocID string, alive bool) bool {
	i, ok := s.byID[allocID]
	if !ok {
		return false
	}
	if was := s.allocs[i].a.Alive; was != alive {
		if s.marks > 0 {
			s.journal = append(s.journal, undoEntry{i: i, alive: true, was: was})
		}
		s.setAlive(i, alive)
	}
	return true
}

func (s *State) setAlive(i int, alive bool) {
	a := &s.allocs[i]
	h := &s.hot[s.rankOf[i]]
	a.a.Alive = alive
	usable := alive && !a.a.Maintenance
	if usable == h.usable {
		return
	}
	if usable {
		s.usableIn[a.zone]++
	} else {
		s.usableIn[a.zone]--
	}
	h.usable = usable
	// The indexes hold usable allocators only (and their capacity
	// classes): rebuilt on next use.
	s.ixAsc, s.ixDesc, s.noIndex = nil, nil, false
}

// Has reports whether the state knows the allocator.
func (s *State) Has(allocID string) bool {
	_, ok := s.byID[allocID]
	return ok
}

// FreeMB is the memory left on an allocator (0 when unknown).
func (s *State) FreeMB(allocID string) int {
	i, ok := s.byID[allocID]
	if !ok {
		return 0
	}
	return s.allocs[i].a.CapacityMB - s.allocs[i].used
}

// PlatformSeed fixes the placement order of the constructor's kept state
// and of the service's preview alike: over the same inventory, the
// preview is what the constructor decides.
const PlatformSeed int64 = 0x5eed
