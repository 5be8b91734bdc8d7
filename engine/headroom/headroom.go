package headroom

import (
	"errors"
	"slices"
	"sort"
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

// Compute runs the dry-runs. Deployments deleted or being deleted are
// left out, as the constructor leaves them.
func Compute(in Input) Report {
	deps := make([]*engine.Deployment, 0, len(in.Deployments))
	for i := range in.Deployments {
		d := &in.Deployments[i]
		if d.Status == engine.DeploymentDeleted || d.Status == engine.DeploymentDeleting || len(d.Instances) == 0 {
			continue
		}
		deps = append(deps, d)
	}
	sort.Slice(deps, func(i, j int) bool { return deps[i].ID < deps[j].ID })
	// Which deployments have instances on each allocator (in id order).
	onAlloc := map[string][]*engine.Deployment{}
	for _, d := range deps {
		seen := map[string]bool{}
		for _, pi := range d.Instances {
			if !seen[pi.Allocator] {
				seen[pi.Allocator] = true
				onAlloc[pi.Allocator] = append(onAlloc[pi.Allocator], d)
			}
		}
	}
	opts := placement.Options{Strategy: in.Strategy, Seed: placement.PlatformSeed, NoExplain: true, Brief: true}
	// One placement state answers every question: each zone's loss and
	// each vacate is a dry-run on it (Mark, place, Undo), so the state
	// is built once instead of once per question.
	st := placement.NewState(in.Allocators, placement.PlatformSeed)
	var mv placement.Mover
	zones := zonesOf(in.Allocators)
	rep := Report{Zones: make([]Zone, len(zones)), Allocators: []Allocator{}}
	for n, z := range zones {
		rep.Zones[n] = loseZone(st, &mv, in.Allocators, z, onAlloc, opts)
	}
	ids := make([]int, 0, len(in.Allocators))
	for i, a := range in.Allocators {
		if len(onAlloc[a.ID]) > 0 {
			ids = append(ids, i)
		}
	}
	sort.Slice(ids, func(x, y int) bool { return in.Allocators[ids[x]].ID < in.Allocators[ids[y]].ID })
	for _, i := range ids {
		rep.Allocators = append(rep.Allocators, vacate(st, &mv, in.Allocators[i], onAlloc[in.Allocators[i].ID], opts))
	}
	return rep
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
// on st, their deployments moved, everything taken back.
func loseZone(st *placement.State, mv *placement.Mover, allocs []placement.Allocator, zone string, onAlloc map[string][]*engine.Deployment, opts placement.Options) Zone {
	var from []string
	fleet := make([]placement.FleetAllocator, len(allocs))
	free := 0
	n := 0
	for i, a := range allocs {
		alive := a.Alive
		if a.Zone == zone {
			alive = false
			from = append(from, a.ID)
			n++
		} else if a.Alive && !a.Maintenance {
			free += max(0, a.CapacityMB-a.UsedMB)
		}
		fleet[i] = placement.FleetAllocator{Zone: a.Zone, Alive: alive}
	}
	sort.Strings(from)
	mark := st.Mark()
	defer st.Undo(mark)
	for _, id := range from {
		st.SetAlive(id, false)
	}
	o := outcome{mover: mv}
	seen := map[string]bool{}
	inZone := map[string]bool{}
	for _, id := range from {
		inZone[id] = true
	}
	for _, id := range from {
		for _, d := range onAlloc[id] {
			if seen[d.ID] {
				continue
			}
			seen[d.ID] = true
			// The allocators of the zone this deployment uses, as the
			// constructor's move plans name them (the others are lost
			// too, so placement never picks them either way).
			var mine []string
			for _, pi := range d.Instances {
				if inZone[pi.Allocator] && !slices.Contains(mine, pi.Allocator) {
					mine = append(mine, pi.Allocator)
				}
			}
			o.move(st, d, mine, opts)
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

func vacate(st *placement.State, mv *placement.Mover, a placement.Allocator, deps []*engine.Deployment, opts placement.Options) Allocator {
	o := outcome{mover: mv}
	from := []string{a.ID}
	mark := st.Mark()
	for _, d := range deps {
		o.move(st, d, from, opts)
	}
	st.Undo(mark) // the state as it was, for the next allocator
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
