package placement

// The state knows, per deployment, which allocators hold its instances:
// per kind (anti-affinity within a kind: "same") and of any kind
// (anti-affinity across kinds). A deployment id is looked up once per
// decision (one map of string keys) and then addressed by its number.

// depRec is one deployment's allocators.
type depRec struct {
	all   []int32    // allocators holding any instance of it
	kinds []kindRecs // per kind, the allocators holding one
}

type kindRecs struct {
	kind   string
	allocs []int32
}

// depIx is the deployment's number (false when it has no instance).
func (s *State) depIx(dep string) (int32, bool) {
	d, ok := s.depIDs[dep]
	return d, ok
}

// depNumber numbers dep, giving it a record if it has none.
func (s *State) depNumber(dep string) int32 {
	if d, ok := s.depIDs[dep]; ok {
		return d
	}
	var d int32
	if n := len(s.depFree); n > 0 {
		d = s.depFree[n-1]
		s.depFree = s.depFree[:n-1]
	} else {
		d = int32(len(s.deps))
		s.deps = append(s.deps, depRec{})
	}
	s.depIDs[dep] = d
	return d
}

// kindAllocs is the allocators holding an instance of kind of the
// deployment numbered d.
func (s *State) kindAllocs(d int32, kind string) []int32 {
	for _, k := range s.deps[d].kinds {
		if k.kind == kind {
			return k.allocs
		}
	}
	return nil
}

// noteAt records an instance of kind of deployment d on allocator i.
func (s *State) noteAt(d int32, kind string, i int32) {
	r := &s.deps[d]
	if !contains32(r.all, i) {
		r.all = append(r.all, i)
	}
	for k := range r.kinds {
		if r.kinds[k].kind == kind {
			r.kinds[k].allocs = append(r.kinds[k].allocs, i)
			return
		}
	}
	r.kinds = append(r.kinds, kindRecs{kind: kind, allocs: []int32{i}})
}

// forget takes one instance of kind of deployment dep (numbered d) off
// allocator i: last says it is the latest recorded of its kind (a
// rollback), else it is searched for. The allocator leaves the
// deployment's list when no instance of it remains there; a deployment
// left with no instance loses its number.
func (s *State) forget(dep string, d int32, kind string, i int32, last bool) {
	r := &s.deps[d]
	for k := range r.kinds {
		kr := &r.kinds[k]
		if kr.kind != kind {
			continue
		}
		if last {
			kr.allocs = kr.allocs[:len(kr.allocs)-1]
		} else {
			for j, y := range kr.allocs {
				if y == i {
					kr.allocs = append(kr.allocs[:j], kr.allocs[j+1:]...)
					break
				}
			}
		}
		if len(kr.allocs) == 0 {
			r.kinds = append(r.kinds[:k], r.kinds[k+1:]...)
		}
		break
	}
	for _, in := range s.allocs[i].a.Instances {
		if in.DeploymentID == dep {
			return // the deployment still has an instance here
		}
	}
	for j, y := range r.all {
		if y == i {
			r.all = append(r.all[:j], r.all[j+1:]...)
			break
		}
	}
	if len(r.all) == 0 {
		r.kinds = r.kinds[:0]
		delete(s.depIDs, dep)
		s.depFree = append(s.depFree, d)
	}
}
