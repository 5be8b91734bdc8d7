package headroom

import (
	"errors"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"paddock/engine"
	"paddock/engine/placement"
)

// Report is the platform's headroom: one entry per zone (losing it) and
// one per allocator holding instances (vacating it).
type Report struct {
	// ComputedAt is set by the caller (the service) when it computed it.
	ComputedAt time.Time   `json:"computed_at,omitzero"`
	Zones      []Zone      `json:"zones"`
	Allocators []Allocator `json:"allocators"`
}

// Zone says what losing one zone would do.
type Zone struct {
	Zone string `json:"zone"`
	// Survivable is false when some instance in the zone could not be
	// re-placed elsewhere (Unplaceable is then not empty).
	Survivable bool `json:"survivable"`
	// Unplaceable are the deployments with an instance that could not be
	// re-placed: short of capacity (ShortfallMB says how much), or left
	// with no instance of a kind.
	Unplaceable []string `json:"unplaceable"`
	// LostHA are the deployments that keep serving from other zones but
	// on fewer zones than they ask for: no zone outside the ones they
	// already use can take the instance, whatever the capacity.
	LostHA []string `json:"lost_ha"`
	// ShortfallMB is the memory the other zones lack to take what could
	// not be re-placed for capacity.
	ShortfallMB int `json:"shortfall_mb"`
	Allocators  int `json:"allocators"`
	Instances   int `json:"instances"`
	// NeededMB is the memory of the zone's instances; FreeElsewhereMB
	// the free memory of the usable allocators of the other zones.
	NeededMB        int `json:"needed_mb"`
	FreeElsewhereMB int `json:"free_elsewhere_mb"`
	// Frozen is the constructor's rescheduling-freeze reason the loss
	// would trigger (placement.FreezeReasons): replacement then waits for
	// an operator to vacate the lost allocators by hand.
	Frozen string `json:"rescheduling_frozen,omitempty"`
}

// Allocator says what vacating one allocator would need.
type Allocator struct {
	ID   string `json:"id"`
	Zone string `json:"zone"`
	// Vacatable is true when every instance on it could move elsewhere.
	Vacatable   bool     `json:"vacatable"`
	Instances   int      `json:"instances"`
	NeededMB    int      `json:"needed_mb"`
	Unplaceable []string `json:"unplaceable"`
	LostHA      []string `json:"lost_ha"`
	ShortfallMB int      `json:"shortfall_mb"`
}

// Input is what the dry-run reads: the placement view of the allocators
// (placement.FromInventory), the deployments and the strategy.
type Input struct {
	Allocators  []placement.Allocator
	Deployments []engine.Deployment
	Strategy    string
}

// Compute runs the dry-runs, on up to as many goroutines as the process
// may run at once (GOMAXPROCS, at most maxWorkers). Deployments deleted
// or being deleted are left out, as the constructor leaves them.
func Compute(in Input) Report {
	return compute(in, min(runtime.GOMAXPROCS(0), maxWorkers))
}

// compute is Compute on the given number of workers.
func compute(in Input, workers int) Report {
	deps := make([]*engine.Deployment, 0, len(in.Deployments))
	for i := range in.Deployments {
		d := &in.Deployments[i]
		if d.Status == engine.DeploymentDeleted || d.Status == engine.DeploymentDeleting || len(d.Instances) == 0 {
			continue
		}
		deps = append(deps, d)
	}
	sort.Slice(deps, func(i, j int) bool { return deps[i].ID < deps[j].ID })
	// Which deployments have instances on each allocator (indexes in
	// deps, in id order), by allocator position in in.Allocators.
	allocIx := make(map[string]int, len(in.Allocators))
	for i, a := range in.Allocators {
		allocIx[a.ID] = i
	}
	onAlloc := make([][]int32, len(in.Allocators))
	at := make([][]int32, len(deps))
	for di, d := range deps {
		at[di] = make([]int32, len(d.Instances))
		for k, pi := range d.Instances {
			ai, ok := allocIx[pi.Allocator]
			if !ok {
				at[di][k] = -1
				continue
			}
			at[di][k] = int32(ai)
			// deps are visited in order: the deployment is already
			// listed here if it is the last one listed.
			if len(onAlloc[ai]) == 0 || onAlloc[ai][len(onAlloc[ai])-1] != int32(di) {
				onAlloc[ai] = append(onAlloc[ai], int32(di))
			}
		}
	}
	opts := placement.Options{Strategy: in.Strategy, Seed: placement.PlatformSeed, NoExplain: true, Brief: true, Discard: true}
	zones := zonesOf(in.Allocators)
	ids := make([]int, 0, len(in.Allocators))
	for i := range in.Allocators {
		if len(onAlloc[i]) > 0 {
			ids = append(ids, i)
		}
	}
	sort.Slice(ids, func(x, y int) bool { return in.Allocators[ids[x]].ID < in.Allocators[ids[y]].ID })
	rep := Report{Zones: make([]Zone, len(zones)), Allocators: make([]Allocator, len(ids))}
	// The questions are independent: each dry-run leaves the state as
	// it found it (Mark, place, Undo), and what it decides does not
	// depend on the dry-runs before it. Workers take them in turn (each
	// zone, then the allocators by chunks), each on its own placement
	// state, built once per recomputation; each answer goes to its own
	// place in the report, so the report is the same for any number of
	// workers.
	tasks := len(zones) + (len(ids)+vacateChunk-1)/vacateChunk
	workers = max(1, min(workers, tasks))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			w := &world{allocs: in.Allocators, deps: deps, at: at, onAlloc: onAlloc,
				st: placement.NewState(in.Allocators, placement.PlatformSeed)}
			for {
				t := int(next.Add(1) - 1)
				if t >= tasks {
					return
				}
				if t < len(zones) {
					rep.Zones[t] = w.loseZone(zones[t], opts)
					continue
				}
				lo := (t - len(zones)) * vacateChunk
				for k := lo; k < min(lo+vacateChunk, len(ids)); k++ {
					rep.Allocators[k] = w.vacate(ids[k], opts)
				}
			}
		})
	}
	wg.Wait()
	return rep
}

// vacateChunk is how many allocators' vacates a worker takes at a time.
const vacateChunk = 16

// maxWorkers bounds the goroutines of one recomputation (each keeps a
// placement state of the whole fleet).
const maxWorkers = 4

// world is what the dry-runs share: the allocators, the deployments
// with instances (in id order), which of them each allocator holds, and
// the one placement state.
type world struct {
	allocs []placement.Allocator
	deps   []*engine.Deployment
	// at is, per deployment and instance, the allocator's position in
	// allocs (-1 when unknown).
	at      [][]int32
	onAlloc [][]int32
	st      *placement.State
	mover   placement.Mover
}

func zonesOf(allocs []placement.Allocator) []string {
	seen := map[string]bool{}
	var zs []string
	for _, a := range allocs {
		if !seen[a.Zone] {
			seen[a.Zone] = true
			zs = append(zs, a.Zone)
		}
	}
	sort.Strings(zs)
	return zs
}

// outcome gathers the verdicts of one dry-run.
type outcome struct {
	unplaceable, lostHA []string
	shortfall           int
	instances, needed   int
	mover               *placement.Mover
}

// move asks the placement state to move dep off the allocators from, as
// the constructor's move plan would (all of the deployment's requests or
// none), and records the verdict. The caller takes the placements back
// (placement.State's Mark and Undo).
func (o *outcome) move(st *placement.State, dep *engine.Deployment, from []string, opts placement.Options) {
	m := o.mover.Move(dep, from, nil)
	if len(m.Requests) == 0 {
		return
	}
	for _, r := range m.Requests {
		o.instances++
		o.needed += r.SizeMB
	}
	_, err := st.Place(m.Requests, opts)
	if err == nil {
		return
	}
	var ue *placement.UnplaceableError
	if !errors.As(err, &ue) {
		// An invalid request (a corrupt record): count it as unplaceable.
		o.unplaceable = append(o.unplaceable, dep.ID)
		return
	}
	if shortOfMemory(ue) {
		o.unplaceable = append(o.unplaceable, dep.ID)
		for _, r := range m.Requests {
			o.shortfall += r.SizeMB
		}
		return
	}
	// No zone outside those the deployment keeps could take it: the
	// deployment keeps serving if every kind keeps an instance.
	if keepsEveryKind(m) {
		o.lostHA = append(o.lostHA, dep.ID)
	} else {
		o.unplaceable = append(o.unplaceable, dep.ID)
	}
}

// shortOfMemory reports whether some zone had an allocator that passed
// every check but memory: capacity would make the request placeable.
func shortOfMemory(ue *placement.UnplaceableError) bool {
	for _, z := range ue.Zones {
		if z.LargestFreeMB >= 0 {
			return true
		}
	}
	return false
}

func keepsEveryKind(m placement.Move) bool {
	for _, mv := range m.Moved {
		kept := false
		for _, k := range m.Keep {
			kept = kept || k.Kind == mv.Kind
		}
		if !kept {
			return false
		}
	}
	return true
}

// loseZone is the dry-run of losing zone: its allocators marked lost
// on the state, their deployments moved, everything taken back.
func (w *world) loseZone(zone string, opts placement.Options) Zone {
	var from []int
	fleet := make([]placement.FleetAllocator, len(w.allocs))
	free := 0
	for i, a := range w.allocs {
		alive := a.Alive
		if a.Zone == zone {
			alive = false
			from = append(from, i)
		} else if a.Alive && !a.Maintenance {
			free += max(0, a.CapacityMB-a.UsedMB)
		}
		fleet[i] = placement.FleetAllocator{Zone: a.Zone, Alive: alive}
	}
	n := len(from)
	sort.Slice(from, func(x, y int) bool { return w.allocs[from[x]].ID < w.allocs[from[y]].ID })
	mark := w.st.Mark()
	defer w.st.Undo(mark)
	for _, i := range from {
		w.st.SetAlive(w.allocs[i].ID, false)
	}
	o := outcome{mover: &w.mover}
	seen := make([]bool, len(w.deps))
	var mine []string
	for _, i := range from {
		for _, di := range w.onAlloc[i] {
			if seen[di] {
				continue
			}
			seen[di] = true
			d := w.deps[di]
			// The allocators of the zone this deployment uses, as the
			// constructor's move plans name them (the others are lost
			// too, so placement never picks them either way).
			mine = mine[:0]
			for k, ai := range w.at[di] {
				if ai >= 0 && w.allocs[ai].Zone == zone && !slices.Contains(mine, d.Instances[k].Allocator) {
					mine = append(mine, d.Instances[k].Allocator)
				}
			}
			o.move(w.st, d, mine, opts)
		}
	}
	z := Zone{Zone: zone, Survivable: len(o.unplaceable) == 0, Unplaceable: sorted(o.unplaceable), LostHA: sorted(o.lostHA),
		ShortfallMB: o.shortfall, Allocators: n, Instances: o.instances, NeededMB: o.needed, FreeElsewhereMB: free}
	if reasons := placement.FreezeReasons(fleet); len(reasons) > 0 {
		z.Frozen = reasons[0]
		for _, r := range reasons[1:] {
			z.Frozen += "; " + r
		}
	}
	return z
}

// vacate is the dry-run of vacating the allocator at position i.
func (w *world) vacate(i int, opts placement.Options) Allocator {
	a := w.allocs[i]
	o := outcome{mover: &w.mover}
	from := []string{a.ID}
	mark := w.st.Mark()
	for _, di := range w.onAlloc[i] {
		o.move(w.st, w.deps[di], from, opts)
	}
	w.st.Undo(mark) // the state as it was, for the next allocator
	return Allocator{ID: a.ID, Zone: a.Zone, Vacatable: len(o.unplaceable) == 0 && len(o.lostHA) == 0, Instances: o.instances,
		NeededMB: o.needed, Unplaceable: sorted(o.unplaceable), LostHA: sorted(o.lostHA), ShortfallMB: o.shortfall}
}

func sorted(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	sort.Strings(xs)
	return xs
}
