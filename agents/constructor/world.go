package constructor

import (
	"encoding/json"
	"strings"
	"sync"

	"paddock/engine"
	"paddock/engine/placement"
)

// world is the leader's view of the platform, kept from its caches'
// events: each event decodes the one znode that changed, so nothing is
// re-read, re-decoded or scanned per plan. It also holds the placement
// state (engine/placement) with every instance counted once: those seen
// in ZooKeeper and those this leader reserved and is writing.
type world struct {
	mu     sync.Mutex
	seed   int64
	allocs map[string]*allocView
	deps   map[string]*depView
	// place is rebuilt (nil) when an allocator's placement attributes
	// change (record, alive, maintenance, settings); instances only
	// update it.
	place *placement.State
	// waiters are signalled on any change of a deployment: its records,
	// its plan, its instances' statuses.
	waiters map[string]map[chan struct{}]struct{}
	// changed collects the deployments changed since the route sweep
	// last took them; replChanged the same for the replication check,
	// failChanged for the failover pass.
	changed, replChanged, failChanged map[string]struct{}
	// identity, when set, learns each allocator's identity from its
	// record (the ACL of its instance znodes names it).
	identity func(alloc, identity string)
}

type allocView struct {
	id          string
	rec         engine.Allocator
	hasRec      bool
	alive       *engine.AllocatorAlive
	maintenance bool
	settings    engine.AllocatorSettings
	instances   map[string]engine.Instance
	statuses    map[string]engine.InstanceStatus
	// counted is what the placement state holds for this allocator:
	// the instance znodes seen and the reservations not yet seen.
	counted map[string]counted
}

type counted struct {
	dep, kind string
	mb        int
	// reserved: placed by this leader, not yet seen in ZooKeeper.
	reserved bool
}

type depView struct {
	dep    engine.Deployment
	depVer engine.Version
	hasDep bool
	plan   *engine.Plan
	// planVer is the pending plan's znode version.
	planVer engine.Version
	// instances are the instance znodes of the deployment (id →
	// allocator), strays of interrupted plans included.
	instances map[string]string
	// repl is the replication routing (nil: none yet) and its version.
	repl    *engine.Replication
	replVer engine.Version
}

func newWorld(seed int64) *world {
	return &world{seed: seed, allocs: map[string]*allocView{}, deps: map[string]*depView{}, waiters: map[string]map[chan struct{}]struct{}{},
		changed: map[string]struct{}{}, replChanged: map[string]struct{}{}, failChanged: map[string]struct{}{}}
}

func (w *world) alloc(id string) *allocView {
	a := w.allocs[id]
	if a == nil {
		a = &allocView{id: id, instances: map[string]engine.Instance{}, statuses: map[string]engine.InstanceStatus{}, counted: map[string]counted{}}
		w.allocs[id] = a
	}
	return a
}

func (w *world) dep(id string) *depView {
	d := w.deps[id]
	if d == nil {
		d = &depView{instances: map[string]string{}}
		w.deps[id] = d
	}
	return d
}

// inventory is the allocator as engine.InventoryAllocator (capacity
// and tags rules live there).
func (a *allocView) inventory() engine.InventoryAllocator {
	rec := a.rec
	if rec.ID == "" {
		rec.ID = a.id
	}
	return engine.InventoryAllocator{Allocator: rec, Alive: a.alive, Maintenance: a.maintenance, Settings: a.settings}
}

// placementKey is what the placement state depends on besides
// instances: when it changes, the state is rebuilt.
func (a *allocView) placementKey() string {
	ia := a.inventory()
	b, _ := json.Marshal([]any{a.hasRec, ia.Allocator.Zone, ia.CapacityMB(), ia.Alive != nil, ia.Maintenance, ia.Tags()})
	return string(b)
}

// applyAllocators applies one event of the /paddock/allocators cache and
// signals the waiters of the deployments it concerns.
func (w *world) applyAllocators(ev engine.CacheEvent) {
	rel := strings.TrimPrefix(ev.Path, engine.PathAllocators+"/")
	if rel == ev.Path || rel == "" {
		return
	}
	parts := strings.Split(rel, "/")
	removed := ev.Type == engine.NodeRemoved
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.alloc(parts[0])
	before := a.placementKey()
	wasAlive := a.alive != nil
	var touched []string
	switch {
	case len(parts) == 1:
		a.rec, a.hasRec = engine.Allocator{}, false
		if !removed && json.Unmarshal(ev.Data, &a.rec) == nil {
			a.hasRec = true
			if w.identity != nil {
				w.identity(a.id, a.rec.Identity)
			}
		}
		if removed {
			// The allocator was deleted with its subtree (an admin's
			// hand): its instances went with it.
			for iid := range a.instances {
				touched = append(touched, w.applyInstance(a, iid, nil)...)
			}
			if len(a.statuses) == 0 {
				delete(w.allocs, a.id)
			}
		}
	case len(parts) == 2 && parts[1] == "alive":
		a.alive = nil
		var al engine.AllocatorAlive
		if !removed && json.Unmarshal(ev.Data, &al) == nil {
			a.alive = &al
		}
		if (a.alive != nil) != wasAlive {
			// Liveness changed: plans waiting on this allocator look again.
			touched = a.deployments()
		}
	case len(parts) == 2 && parts[1] == "maintenance":
		var m engine.Maintenance
		a.maintenance = !removed && len(ev.Data) > 0 && json.Unmarshal(ev.Data, &m) == nil && m.On
	case len(parts) == 2 && parts[1] == "settings":
		a.settings = engine.AllocatorSettings{}
		if !removed && len(ev.Data) > 0 {
			_ = json.Unmarshal(ev.Data, &a.settings)
		}
	case len(parts) == 3 && parts[1] == "status":
		iid := parts[2]
		if removed {
			if st, ok := a.statuses[iid]; ok {
				touched = append(touched, st.DeploymentID)
			}
			delete(a.statuses, iid)
		} else {
			var st engine.InstanceStatus
			if json.Unmarshal(ev.Data, &st) == nil {
				a.statuses[iid] = st
				touched = append(touched, st.DeploymentID)
			}
		}
		if in, ok := a.instances[iid]; ok {
			touched = append(touched, in.DeploymentID)
		}
	}
	if a.placementKey() != before {
		w.place = nil
	}
	for _, d := range touched {
		w.signal(d)
	}
}

// deployments with an instance on the allocator.
func (a *allocView) deployments() []string {
	var out []string
	for _, in := range a.instances {
		out = append(out, in.DeploymentID)
	}
	return out
}

// instanceWritten records an instance znode this leader created or
// changed (in) or deleted (nil): instances are only ever written by the
// leading constructor, so its state follows its own writes instead of
// reading each one back.
func (w *world) instanceWritten(alloc, iid string, in *engine.Instance) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range w.applyInstance(w.alloc(alloc), iid, in) {
		w.signal(d)
	}
}

func (w *world) applyInstance(a *allocView, iid string, in *engine.Instance) []string {
	var touched []string
	if old, ok := a.instances[iid]; ok {
		touched = append(touched, old.DeploymentID)
		if d := w.deps[old.DeploymentID]; d != nil {
			delete(d.instances, iid)
		}
	}
	if in == nil {
		delete(a.instances, iid)
		if c, ok := a.counted[iid]; ok {
			delete(a.counted, iid)
			if w.place != nil {
				w.place.Release(a.id, c.dep, c.kind, c.mb)
			}
		}
		return touched
	}
	v := *in
	if v.ID == "" {
		v.ID = iid
	}
	a.instances[iid] = v
	w.dep(v.DeploymentID).instances[iid] = a.id
	touched = append(touched, v.DeploymentID)
	now := counted{dep: v.DeploymentID, kind: v.Kind, mb: v.SizeMB}
	if c, ok := a.counted[iid]; ok {
		if c.dep == now.dep && c.kind == now.kind && c.mb == now.mb {
			c.reserved = false
			a.counted[iid] = c
			return touched
		}
		if w.place != nil {
			w.place.Release(a.id, c.dep, c.kind, c.mb)
		}
	}
	a.counted[iid] = now
	if w.place != nil {
		w.place.Assign(a.id, now.dep, now.kind, now.mb)
	}
	return touched
}

// applyDeployments applies one event of the /paddock/deployments cache;
// it reports whether the deployment's pending plan may need running.
func (w *world) applyDeployments(ev engine.CacheEvent) (string, bool) {
	rel := strings.TrimPrefix(ev.Path, engine.PathDeployments+"/")
	if rel == ev.Path || rel == "" {
		return "", false
	}
	parts := strings.Split(rel, "/")
	id := parts[0]
	removed := ev.Type == engine.NodeRemoved
	w.mu.Lock()
	defer w.mu.Unlock()
	plan := false
	switch {
	case len(parts) == 1:
		d := w.dep(id)
		d.dep, d.hasDep = engine.Deployment{}, false
		if !removed && json.Unmarshal(ev.Data, &d.dep) == nil {
			d.hasDep, d.depVer = true, ev.Stat.Version
			if d.dep.ID == "" {
				d.dep.ID = id
			}
		}
		if removed && d.plan == nil && len(d.instances) == 0 {
			delete(w.deps, id)
		}
	case len(parts) == 2 && parts[1] == "replication":
		d := w.dep(id)
		var r engine.Replication
		switch {
		case removed:
			d.repl = nil
		case json.Unmarshal(ev.Data, &r) == nil && (d.repl == nil || ev.Stat.Version >= d.replVer):
			// The leader's own writes are known before the cache
			// shows them: an older version never overwrites them.
			d.repl, d.replVer = &r, ev.Stat.Version
		}
	case len(parts) == 3 && parts[1] == "plans" && parts[2] == "pending":
		d := w.dep(id)
		d.plan = nil
		var p engine.Plan
		if !removed && json.Unmarshal(ev.Data, &p) == nil {
			d.plan, d.planVer = &p, ev.Stat.Version
			plan = p.Status == engine.PlanPending || p.Status == engine.PlanRunning
		}
	default:
		return "", false
	}
	w.signal(id)
	return id, plan
}

// watch returns a channel signalled (coalesced) on every change of the
// deployment; cancel releases it.
func (w *world) watch(depID string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.waiters[depID] == nil {
		w.waiters[depID] = map[chan struct{}]struct{}{}
	}
	w.waiters[depID][ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(w.waiters[depID], ch)
		if len(w.waiters[depID]) == 0 {
			delete(w.waiters, depID)
		}
		w.mu.Unlock()
	}
}

// signal wakes a deployment's waiters. Call with mu held.
func (w *world) signal(depID string) {
	w.changed[depID] = struct{}{}
	w.replChanged[depID] = struct{}{}
	w.failChanged[depID] = struct{}{}
	for ch := range w.waiters[depID] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// pending returns the deployment's pending plan and its version.
func (w *world) pending(depID string) (engine.Plan, engine.Version, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.deps[depID]
	if d == nil || d.plan == nil {
		return engine.Plan{}, 0, false
	}
	return *d.plan, d.planVer, true
}

// deployment returns the deployment record and its version.
func (w *world) deployment(depID string) (engine.Deployment, engine.Version, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.deps[depID]
	if d == nil || !d.hasDep {
		return engine.Deployment{}, 0, false
	}
	return d.dep, d.depVer, true
}

// status is an instance's observed state.
func (w *world) status(alloc, iid string) (engine.InstanceStatus, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.allocs[alloc]
	if a == nil {
		return engine.InstanceStatus{}, false
	}
	st, ok := a.statuses[iid]
	return st, ok
}

// alive reports whether the allocator's alive node exists.
func (w *world) alive(alloc string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.allocs[alloc]
	return a != nil && a.alive != nil
}

// runtime is the allocator record's runtime ("" when unknown).
// allocRecord is an allocator's record as last seen.
func (w *world) allocRecord(alloc string) (engine.Allocator, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if a := w.allocs[alloc]; a != nil {
		return a.rec, true
	}
	return engine.Allocator{}, false
}

func (w *world) runtime(alloc string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if a := w.allocs[alloc]; a != nil {
		return a.rec.Runtime
	}
	return ""
}

// strays are the deployment's instance znodes (id → allocator).
func (w *world) strays(depID string) map[string]engine.Instance {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]engine.Instance{}
	if d := w.deps[depID]; d != nil {
		for iid, alloc := range d.instances {
			if a := w.allocs[alloc]; a != nil {
				in := a.instances[iid]
				in.ID = iid
				out[alloc+"/"+iid] = in
			}
		}
	}
	return out
}

// takeChanged returns the deployments changed since the last call.
func (w *world) takeChanged() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.changed))
	for id := range w.changed {
		out = append(out, id)
	}
	w.changed = map[string]struct{}{}
	return out
}

// deploymentIDs lists the deployments known.
func (w *world) deploymentIDs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.deps))
	for id, d := range w.deps {
		if d.hasDep {
			out = append(out, id)
		}
	}
	return out
}

// fleet is the rescheduler's view of the allocators, and how many have
// no alive node.
func (w *world) fleet() ([]AllocatorView, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]AllocatorView, 0, len(w.allocs))
	missing := 0
	for id, a := range w.allocs {
		if !a.hasRec {
			continue
		}
		v := AllocatorView{ID: id, Zone: a.rec.Zone, Alive: a.alive != nil, Instances: len(a.instances)}
		if !v.Alive {
			missing++
		}
		out = append(out, v)
	}
	return out, missing
}

// instancesByDeployment counts an allocator's instances per deployment.
func (w *world) instancesByDeployment(alloc string) map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	if a := w.allocs[alloc]; a != nil {
		for _, in := range a.instances {
			out[in.DeploymentID]++
		}
	}
	return out
}

// placementState returns the placement state, rebuilt if an allocator
// changed. Call with mu held.
func (w *world) placementState() *placement.State {
	if w.place != nil {
		return w.place
	}
	allocs := make([]placement.Allocator, 0, len(w.allocs))
	for _, a := range w.allocs {
		if !a.hasRec {
			continue
		}
		ia := a.inventory()
		pa := placement.Allocator{ID: ia.ID(), Zone: ia.Allocator.Zone, CapacityMB: ia.CapacityMB(), Alive: ia.Alive != nil,
			Maintenance: ia.Maintenance, Tags: ia.Tags()}
		for _, c := range a.counted {
			pa.UsedMB += c.mb
			pa.Instances = append(pa.Instances, placement.Assigned{DeploymentID: c.dep, Kind: c.kind, SizeMB: c.mb})
		}
		allocs = append(allocs, pa)
	}
	w.place = placement.NewState(allocs, w.seed)
	return w.place
}

// reservation is one instance placed by this leader and not yet seen.
type reservation struct {
	alloc, id string
}

// reserve decides the placement of reqs and counts the new instances at
// once, so that plans placing at the same time never share memory; the
// caller writes them, and releases what it does not write.
func (w *world) reserve(depID string, reqs []placement.Request, strategy string, mk func(placement.Placement) engine.Instance) ([]engine.Instance, []string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := w.placementState()
	res, err := st.Place(reqs, placement.Options{Strategy: strategy, Seed: w.seed, NoExplain: true})
	if err != nil {
		return nil, nil, err
	}
	ins := make([]engine.Instance, 0, len(res.Placements))
	allocs := make([]string, 0, len(res.Placements))
	for _, p := range res.Placements {
		in := mk(p)
		a := w.alloc(p.Allocator)
		a.counted[in.ID] = counted{dep: depID, kind: p.Kind, mb: p.SizeMB, reserved: true}
		ins = append(ins, in)
		allocs = append(allocs, p.Allocator)
	}
	return ins, allocs, nil
}

// release gives back reservations that were not written (the write
// failed or was never made). Instances ZooKeeper shows stay counted.
func (w *world) release(rs []reservation) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range rs {
		a := w.allocs[r.alloc]
		if a == nil {
			continue
		}
		c, ok := a.counted[r.id]
		if !ok || !c.reserved {
			continue
		}
		delete(a.counted, r.id)
		if w.place != nil {
			w.place.Release(r.alloc, c.dep, c.kind, c.mb)
		}
	}
}

// usage is the memory counted on each allocator and its capacity (the
// property test's check that nothing is overcommitted).
func (w *world) usage() map[string][2]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][2]int{}
	for id, a := range w.allocs {
		used := 0
		for _, c := range a.counted {
			used += c.mb
		}
		out[id] = [2]int{used, a.inventory().CapacityMB()}
	}
	return out
}

// replication is the deployment's routing and its znode version (ok
// false when it has none).
func (w *world) replication(depID string) (engine.Replication, engine.Version, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.deps[depID]
	if d == nil || d.repl == nil {
		return engine.Replication{}, 0, false
	}
	r := *d.repl
	r.Copies, r.InSync = append([]string(nil), r.Copies...), append([]string(nil), r.InSync...)
	return r, d.replVer, true
}

// replicationWritten records a routing this leader wrote (or read back).
func (w *world) replicationWritten(depID string, r engine.Replication, ver engine.Version) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.dep(depID)
	if d.repl == nil || ver >= d.replVer {
		d.repl, d.replVer = &r, ver
	}
	w.signal(depID)
}

// replicated lists the deployments that have a routing.
func (w *world) replicated() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for id, d := range w.deps {
		if d.routed() {
			out = append(out, id)
		}
	}
	return out
}

// routed reports whether the deployment has a routing and is not being
// deleted (replicated lists those). Call with w.mu held.
func (d *depView) routed() bool {
	return d.repl != nil && d.hasDep && d.dep.Status != engine.DeploymentDeleted && d.dep.Status != engine.DeploymentDeleting
}

// stillRouted keeps the ids that are routed now (a sweep's list is taken
// at the start of its round).
func (w *world) stillRouted(ids []string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := ids[:0:0]
	for _, id := range ids {
		if d := w.deps[id]; d != nil && d.routed() {
			out = append(out, id)
		}
	}
	return out
}

// polled reports whether the deployment is one whose primary's events
// are polled: routed, with more than one copy.
func (w *world) polled(depID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.deps[depID]
	return d != nil && d.routed() && len(d.repl.Copies) > 1
}

// unreplicated lists the running deployments with Elasticsearch
// instances and no routing (made before the replication authority).
func (w *world) unreplicated() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for id, d := range w.deps {
		if d.repl == nil && d.hasDep && d.plan == nil && d.dep.Status == engine.DeploymentRunning && len(esOnly(d.dep.Instances)) > 0 {
			out = append(out, id)
		}
	}
	return out
}

// instanceAt is the placed instance iid of a deployment, from its
// instance znode (ok false when it has none).
func (w *world) instanceAt(depID, iid string) (engine.PlacedInstance, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.deps[depID]
	if d == nil {
		return engine.PlacedInstance{}, false
	}
	alloc, ok := d.instances[iid]
	if !ok {
		return engine.PlacedInstance{}, false
	}
	in := w.allocs[alloc].instances[iid]
	return engine.PlacedInstance{ID: iid, Kind: in.Kind, Allocator: alloc, Zone: in.Zone, SizeMB: in.SizeMB, Version: in.Version}, true
}

// takeFailChanged returns the deployments changed since the failover
// pass last took them, and also, those of them that have a routing
// first, then the others (their polls end).
func (w *world) takeFailChanged(also ...string) (replicated, others []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range also {
		w.failChanged[id] = struct{}{}
	}
	for id := range w.failChanged {
		if d := w.deps[id]; d != nil && d.routed() {
			replicated = append(replicated, id)
		} else {
			others = append(others, id)
		}
	}
	clear(w.failChanged)
	return replicated, others
}

// takeReplChanged returns the deployments changed since the replication
// check last took them.
func (w *world) takeReplChanged() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.replChanged))
	for id := range w.replChanged {
		out = append(out, id)
	}
	w.replChanged = map[string]struct{}{}
	return out
}
