package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"paddock/agents/agentkit"
	"paddock/engine"
)

// agent is one running allocator.
type agent struct {
	cfg    Config
	log    *slog.Logger
	s      *engine.Store
	rt     Runtime
	own    engine.Credential
	m      *metrics
	status *agentkit.Status
	ledger *ledger

	ctx         context.Context
	host        HostInfo
	started     time.Time
	metricsAddr string

	settings      engine.AllocatorSettings
	maintenance   engine.Maintenance
	recordWritten engine.Allocator
	alive         *engine.Ephemeral
	aliveWritten  engine.AllocatorAlive
	cache         *engine.TreeCache

	tracked   map[string]*tracked
	createSem chan struct{}
	done      chan opResult
	trigger   chan struct{}
	inflight  sync.WaitGroup

	// creds reads deployments' credentials for their nodes; credSync
	// re-delivers them when they change (credentials.go).
	creds    *credentials
	credSync credentialSync

	runtimeErr string
	lastGC     time.Time

	// tunnelAddr is "<TunnelHost>:<port>" when the tunnel runs; routes
	// maps instance id → node address for it.
	tunnelAddr string
	// egress serves the nodes' peer sockets (egress.go); nil without
	// the tunnel or outside the docker runtime.
	egress   *egress
	egressM  *egressMetrics
	routesMu sync.RWMutex
	routes   map[string]string
	// workloads maps instance id → its current workload (log endpoint).
	workloads  map[string]Workload
	lastZKWarn time.Time
	usedMB     int
	desiredN   int
	healthyN   int

	// statusZ holds the status znodes known to exist (this allocator is
	// their only writer): a status is created or set without a read.
	statusZ map[string]bool
	// decoded memoises instance records by modification zxid.
	decoded map[string]decodedInstance
	// desiredDirty: desired() rebuilds from every instance znode (the
	// cache resynced); otherwise it applies the instances changed.
	desiredDirty atomic.Bool
	lastDesired  map[string]engine.Instance
	lastInvalid  map[string]error

	// Incremental passes (quickPass): changedMu guards changed, the
	// instances whose znode changed since the last pass (cache events);
	// fullNeeded is set by any other change (settings, maintenance, the
	// record, the connection, the runtime's events).
	changedMu  sync.Mutex
	changed    map[string]struct{}
	fullNeeded atomic.Bool
	// results are the instances whose runtime action ended since the
	// last pass; unsettled those the last pass left in motion (busy,
	// starting, unhealthy, retrying, rejected, their status unwritten):
	// every pass looks at them, as a full pass would.
	results   map[string]struct{}
	unsettled map[string]struct{}
	lastFull  time.Time
	// ticks counts the probe ticks; probeTick: a tick came since the
	// last pass (the next quick pass probes the healthy nodes due).
	ticks     int
	probeTick bool
}

// fullPassTicks: every fullPassTicks-th probe tick runs a full pass (the
// safety net of the quick ones); the others probe the healthy nodes due
// by a quick pass.
const fullPassTicks = 5

type decodedInstance struct {
	mzxid int64
	in    engine.Instance
	err   error
}

// tracked is what the allocator knows of one instance.
type tracked struct {
	id      string
	desired *engine.Instance
	// desiredMzxid is the modification of the record desired was
	// decoded from.
	desiredMzxid int64
	// rejected is why the desired instance is not run ("" when admitted).
	rejected string
	w        *Workload
	busy     bool

	state    string
	reason   string
	healthy  bool
	restarts int

	failures    int
	everHealthy bool
	crashes     int
	// failedActions counts consecutive failed runtime actions.
	failedActions int
	nextAttempt   time.Time
	firstSeen     time.Time

	written *engine.InstanceStatus
	// acked: the last acknowledge found written equal to the status
	// (or wrote it).
	acked bool
	// dispatchedAt is when the running action started (a status is
	// first written once it has a result, or after ackDelay).
	dispatchedAt time.Time
	// nextProbe is when a healthy node is probed next.
	nextProbe time.Time
}

// opResult is the outcome of an asynchronous runtime action.
type opResult struct {
	iid    string
	action string
	w      *Workload
	err    error
}

// Actions.
const (
	actCreate   = "create"
	actRecreate = "recreate"
	actStart    = "start"
	actRestart  = "restart"
	actRemove   = "remove"
	actUpdate   = "update"
)

func (a *agent) run(ctx context.Context, metricsAddr string) error {
	a.ctx = ctx
	a.started = time.Now().UTC()
	a.metricsAddr = metricsAddr
	if h, err := a.rt.Host(ctx); err != nil {
		a.runtimeErr = errText(err)
		a.log.Error("container runtime unreachable at start; nodes cannot be run until it answers", "err", err)
	} else {
		a.host = h
	}
	a.readAdminNodes(ctx)
	alive, err := a.register(ctx)
	if err != nil {
		return err
	}
	a.alive = alive
	defer alive.Close()
	a.log.Info("allocator registered", "zone", a.cfg.Zone, "capacity_mb", a.capacity(), "runtime", a.rt.Name(),
		"host", a.cfg.Host, "metrics", metricsAddr)

	cctx, cancelCache := context.WithCancel(ctx)
	defer cancelCache()
	// The cache leaves out what this allocator writes itself (statuses,
	// alive): it knows them, and a read after each of its own writes
	// would cost a round trip per acknowledged instance.
	a.cache = engine.NewTreeCache(a.s, engine.AllocatorPath(a.cfg.ID), engine.CacheSkip(a.ownZnode), engine.CacheLeaves(a.leafZnode),
		engine.CacheContainers(engine.ContainerZnode))
	events := a.cache.Listen()
	go func() { _ = a.cache.Run(cctx) }()
	go a.filterCacheEvents(cctx, events)
	rtEvents := a.rt.Events(cctx)

	select {
	case <-ctx.Done():
		return nil
	case <-a.cache.Ready():
	}
	if err := a.loadPriorStatuses(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	a.status.SetReady(true)
	if a.cfg.OnReady != nil {
		a.cfg.OnReady(metricsAddr)
	}

	tick := time.NewTicker(a.cfg.ProbeInterval)
	defer tick.Stop()
	// soon re-runs a pass quickly while nodes are starting, so a node is
	// reported healthy within ~100ms of serving.
	soon := time.NewTimer(time.Hour)
	defer soon.Stop()
	a.pass(ctx)
	for {
		if a.starting() {
			soon.Reset(startingProbeInterval)
		}
		select {
		case <-ctx.Done():
			a.shutdown()
			return nil
		case <-a.trigger:
		case _, ok := <-rtEvents:
			if !ok {
				rtEvents = nil
			}
			a.fullNeeded.Store(true)
		case r := <-a.done:
			a.handleResult(r)
		case <-tick.C:
			a.ticks++
			if a.ticks%fullPassTicks == 0 {
				a.fullNeeded.Store(true)
			}
			a.probeTick = true
		case <-soon.C:
		}
		// Coalesce bursts (a batch of assignments, a stream of events).
		a.drainFor(20 * time.Millisecond)
		if ctx.Err() == nil {
			a.pass(ctx)
		}
	}
}

// failedActionsBeforeFailed consecutive failed runtime actions make an
// instance "failed" (a missing image does at once).
const failedActionsBeforeFailed = 3

// startingProbeInterval is the probe interval of nodes not yet healthy.
const startingProbeInterval = 100 * time.Millisecond

// starting reports whether a started node awaits its first good probe
// (such a node is unsettled: the last pass left it in motion).
func (a *agent) starting() bool {
	for id := range a.unsettled {
		if t := a.tracked[id]; t != nil && !t.busy && t.w != nil && t.w.Running && !t.everHealthy {
			return true
		}
	}
	return false
}

func (a *agent) drainFor(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case r := <-a.done:
			a.handleResult(r)
		case <-a.trigger:
		case <-t.C:
			return
		}
	}
}

func (a *agent) shutdown() {
	a.status.SetReady(false)
	all := make(chan struct{})
	go func() { a.inflight.Wait(); close(all) }()
	for {
		select {
		case <-all:
			a.log.Info("allocator stopped; node containers keep running")
			return
		case r := <-a.done:
			a.handleResult(r)
		}
	}
}

func (a *agent) poke() {
	select {
	case a.trigger <- struct{}{}:
	default:
	}
}

// filterCacheEvents triggers a pass on every change of the cached
// znodes (instances, settings, maintenance, the record) and of the
// connection; the allocator's own statuses and alive node are not cached.
func (a *agent) filterCacheEvents(ctx context.Context, events <-chan engine.CacheEvent) {
	instances := engine.InstancesPath(a.cfg.ID)
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			switch {
			case ev.Type == engine.CacheResynced || ev.Type == engine.CacheInitialized:
				a.desiredDirty.Store(true)
				a.fullNeeded.Store(true)
			case strings.HasPrefix(ev.Path, instances+"/") && (ev.Type == engine.NodeAdded || ev.Type == engine.NodeUpdated || ev.Type == engine.NodeRemoved):
				a.changedMu.Lock()
				a.changed[strings.TrimPrefix(ev.Path, instances+"/")] = struct{}{}
				a.changedMu.Unlock()
			default:
				a.fullNeeded.Store(true)
			}
			a.poke()
		}
	}
}

// readAdminNodes reads settings and maintenance before the cache runs.
func (a *agent) readAdminNodes(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var set engine.AllocatorSettings
	if _, err := a.s.GetJSON(rctx, engine.AllocatorSettingsPath(a.cfg.ID), &set); err == nil {
		a.settings = set
	}
	var m engine.Maintenance
	if _, err := a.s.GetJSON(rctx, engine.AllocatorMaintenancePath(a.cfg.ID), &m); err == nil {
		a.maintenance = m
	}
}

// takeChanged returns the instances whose znode changed since it last
// ran (cache events).
func (a *agent) takeChanged() map[string]struct{} {
	a.changedMu.Lock()
	defer a.changedMu.Unlock()
	ch := a.changed
	a.changed = map[string]struct{}{}
	return ch
}

// desired reads the assignments from the cache, decoding each record
// once per change: the instances of changed are read again, the others
// stand (all are read after a resync).
func (a *agent) desired(changed map[string]struct{}) (map[string]engine.Instance, map[string]error) {
	if !a.desiredDirty.Swap(false) && a.lastDesired != nil {
		for id := range changed {
			a.desiredOne(id)
		}
		return a.lastDesired, a.lastInvalid
	}
	ids := a.cache.Children(engine.InstancesPath(a.cfg.ID))
	desired := make(map[string]engine.Instance, len(ids))
	invalid := map[string]error{}
	for _, id := range ids {
		n, ok := a.cache.Get(engine.InstancePath(a.cfg.ID, id))
		if !ok {
			continue
		}
		d := a.decode(id, n)
		if d.err != nil {
			invalid[id] = d.err
		}
		desired[id] = d.in
	}
	if len(a.decoded) > len(desired) {
		for id := range a.decoded {
			if _, ok := desired[id]; !ok {
				delete(a.decoded, id)
			}
		}
	}
	a.lastDesired, a.lastInvalid = desired, invalid
	return desired, invalid
}

// desiredOne reads instance id's record again into the desired set.
func (a *agent) desiredOne(id string) {
	n, ok := a.cache.Get(engine.InstancePath(a.cfg.ID, id))
	if !ok {
		delete(a.lastDesired, id)
		delete(a.lastInvalid, id)
		delete(a.decoded, id)
		return
	}
	d := a.decode(id, n)
	if d.err != nil {
		a.lastInvalid[id] = d.err
	} else {
		delete(a.lastInvalid, id)
	}
	a.lastDesired[id] = d.in
}

// decode is the instance record of znode n, decoded once per change.
func (a *agent) decode(id string, n engine.CachedNode) decodedInstance {
	d, hit := a.decoded[id]
	if hit && d.mzxid == n.Stat.Mzxid {
		return d
	}
	d = decodedInstance{mzxid: n.Stat.Mzxid}
	if err := json.Unmarshal(n.Data, &d.in); err != nil {
		d.in = engine.Instance{ID: id}
		d.err = fmt.Errorf("malformed instance record: %v: the constructor must rewrite it", err)
	} else {
		d.err = ValidateInstance(d.in, id)
		if d.in.ID == "" {
			d.in.ID = id
		}
	}
	a.decoded[id] = d
	return d
}

func (a *agent) adminNodes() {
	if n, ok := a.cache.Get(engine.AllocatorSettingsPath(a.cfg.ID)); ok {
		var set engine.AllocatorSettings
		if len(n.Data) == 0 || json.Unmarshal(n.Data, &set) == nil {
			if set.CapacityMB != a.settings.CapacityMB {
				a.log.Info("capacity setting changed", "capacity_mb", set.CapacityMB)
			}
			a.settings = set
		} else {
			a.log.Warn("settings node is malformed; keeping the previous settings", "path", n.Path)
		}
	} else {
		a.settings = engine.AllocatorSettings{}
	}
	var m engine.Maintenance
	if n, ok := a.cache.Get(engine.AllocatorMaintenancePath(a.cfg.ID)); ok && len(n.Data) > 0 {
		_ = json.Unmarshal(n.Data, &m)
	}
	if m.On != a.maintenance.On {
		a.log.Info("maintenance mode changed", "on", m.On, "reason", m.Reason)
	}
	a.maintenance = m
}

// pass is one reconcile of desired instances against the runtime: a
// quick pass when only instances changed (quickPass), else a full one.
func (a *agent) pass(ctx context.Context) {
	start := time.Now()
	defer func() {
		a.m.passes.Inc()
		a.m.passSeconds.Observe(time.Since(start).Seconds())
	}()
	now := time.Now()
	changed := a.takeChanged()
	full := a.fullNeeded.Swap(false) || a.desiredDirty.Load() || a.lastDesired == nil || a.runtimeErr != "" ||
		now.Sub(a.lastFull) >= fullPassTicks*a.cfg.ProbeInterval
	if !full && a.quickPass(ctx, now, changed) {
		return
	}
	a.fullPass(ctx, now, changed)
}

// quickPass reconciles the instances that changed (their znode, their
// runtime action's result) and those left unsettled, against the
// workloads known (the last full pass's list, the actions' results):
// what is steady is not looked at again until a probe tick (the healthy
// nodes due) or a full pass (every fullPassTicks-th tick, on any other
// change). It
// declines (false) when the assignments exceed the capacity: which
// ones are admitted is decided over all of them, by a full pass.
func (a *agent) quickPass(ctx context.Context, now time.Time, changed map[string]struct{}) bool {
	desired, invalid := a.desired(changed)
	total := 0
	for id, in := range desired {
		if invalid[id] == nil {
			total += in.SizeMB
		}
	}
	if total > a.capacity() {
		return false
	}
	a.m.quickPasses.Inc()
	a.usedMB, a.desiredN = total, len(desired)
	ids := changed
	for id := range a.results {
		ids[id] = struct{}{}
	}
	for id := range a.unsettled {
		ids[id] = struct{}{}
	}
	clear(a.results)
	if a.probeTick {
		a.probeTick = false
		for id, t := range a.tracked {
			if t.healthy && t.everHealthy && a.probeDue(t, now) {
				ids[id] = struct{}{}
			}
		}
	}
	a.syncCredentials(ctx)
	var probe []*tracked
	for id := range ids {
		t := a.tracked[id]
		if t == nil {
			if _, ok := desired[id]; !ok {
				continue
			}
			t = &tracked{id: id}
			a.tracked[id] = t
		}
		rejected := ""
		if err := invalid[id]; err != nil {
			rejected = err.Error()
		}
		a.setDesired(t, desired, rejected, now)
		if t.busy {
			continue
		}
		a.reconcileOne(t, true, now, &probe)
	}
	a.probeAll(ctx, probe, now)
	a.acknowledge(ctx, ids)
	a.publish(ctx)
	for id := range ids {
		a.settle(id, now)
	}
	return true
}

// setDesired records an instance's assignment (nil: none) and why it is
// rejected ("" when admitted).
func (a *agent) setDesired(t *tracked, desired map[string]engine.Instance, rejected string, now time.Time) {
	t.rejected = rejected
	in, ok := desired[t.id]
	if !ok {
		t.desired, t.rejected = nil, ""
		return
	}
	// The record as decoded last time (same modification): kept.
	mzxid := a.decoded[t.id].mzxid
	if t.desired != nil && t.desiredMzxid == mzxid && mzxid != 0 {
		return
	}
	if t.desired == nil && t.firstSeen.IsZero() && !t.everHealthy && t.written == nil {
		t.firstSeen = now
	}
	t.desired, t.desiredMzxid = &in, mzxid
}

// settle files an instance as settled (steady: a quick pass need not
// look at it) or not; call it after the pass's acknowledge, which
// compared the instance's status with the one written.
func (a *agent) settle(id string, now time.Time) {
	t := a.tracked[id]
	if t == nil || (!t.busy && t.desired != nil && t.rejected == "" && t.w != nil && t.w.Running && t.healthy && t.everHealthy &&
		t.acked && !now.Before(t.nextAttempt)) {
		delete(a.unsettled, id)
		return
	}
	a.unsettled[id] = struct{}{}
}

// fullPass reconciles every instance against the runtime's list.
func (a *agent) fullPass(ctx context.Context, now time.Time, changed map[string]struct{}) {
	a.lastFull = now
	a.probeTick = false
	clear(a.results)
	a.adminNodes()
	desired, invalid := a.desired(changed)
	a.syncCredentials(ctx)

	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	ws, err := a.rt.List(lctx)
	cancel()
	runtimeOK := err == nil
	if err != nil {
		if a.runtimeErr == "" {
			a.log.Error("container runtime unreachable; nodes keep their last known state", "err", err)
		}
		a.runtimeErr = errText(err)
	} else {
		if a.runtimeErr != "" {
			a.log.Info("container runtime answers again")
		}
		a.runtimeErr = ""
		if a.host.CPUs == 0 {
			if h, err := a.rt.Host(ctx); err == nil {
				a.host = h
			}
		}
	}
	a.status.Set("runtime", a.runtimeErr)
	if runtimeOK {
		a.m.runtimeUp.Set(1)
	} else {
		a.m.runtimeUp.Set(0)
	}

	// Maps sized up front: at a few hundred instances their growth was
	// a tenth of a pass.
	byInst := make(map[string]Workload, len(ws))
	var dupes []Workload
	for _, w := range ws {
		if old, ok := byInst[w.Instance]; ok {
			// Two containers for one instance: keep the running/newer one.
			if old.Running && !w.Running {
				dupes = append(dupes, w)
				continue
			}
			dupes = append(dupes, old)
		}
		byInst[w.Instance] = w
	}
	for _, w := range dupes {
		w := w
		a.log.Warn("removing duplicate container of an instance", "instance", w.Instance, "container", short(w.ID))
		a.inflight.Add(1)
		go func() {
			defer a.inflight.Done()
			_ = a.rt.Remove(ctx, w, a.cfg.StopTimeout)
		}()
	}

	running := make(map[string]bool, len(byInst))
	for id, w := range byInst {
		if _, ok := desired[id]; ok && w.Running {
			running[id] = true
		}
	}
	adm := admit(desired, invalid, running, a.capacity())
	a.usedMB = adm.usedMB
	a.desiredN = len(desired)

	ids := make(map[string]bool, max(len(desired), len(byInst), len(a.tracked)))
	for id := range desired {
		ids[id] = true
	}
	for id := range byInst {
		ids[id] = true
	}
	for id := range a.tracked {
		ids[id] = true
	}
	var probe []*tracked
	for id := range ids {
		t := a.tracked[id]
		if t == nil {
			t = &tracked{id: id}
			a.tracked[id] = t
		}
		a.setDesired(t, desired, adm.rejected[id], now)
		if t.busy {
			continue
		}
		if w, ok := byInst[id]; ok {
			t.w = &w
		} else if runtimeOK {
			t.w = nil
		}
		a.reconcileOne(t, runtimeOK, now, &probe)
	}
	a.probeAll(ctx, probe, now)
	a.acknowledge(ctx, nil)
	a.publish(ctx)
	clear(a.unsettled)
	for id := range a.tracked {
		a.settle(id, now)
	}
	if runtimeOK && time.Since(a.lastGC) > gcInterval(a.cfg.VolumeGrace) {
		a.lastGC = time.Now()
		a.collectVolumes(ctx, desired)
	}
}

// reconcileOne decides what instance t needs (not busy; its workload
// t.w as last known): an action dispatched, a probe (added to probe),
// or its state. runtimeOK: the runtime answered (else nothing is done).
func (a *agent) reconcileOne(t *tracked, runtimeOK bool, now time.Time, probe *[]*tracked) {
	id := t.id
	if !runtimeOK {
		if t.desired != nil || t.w != nil {
			t.reason = "container runtime unreachable: " + a.runtimeErr
		}
		if t.w != nil && t.w.Running {
			*probe = append(*probe, t)
		}
		return
	}
	switch {
	case t.desired == nil && t.w == nil:
		// Gone and removed: drop it (its status is deleted below).
		delete(a.tracked, id)
	case t.desired == nil:
		t.state, t.reason, t.healthy = engine.StateStopping, "instance no longer assigned", false
		a.dispatch(t, actRemove, a.removeFn(*t.w))
	case t.rejected != "":
		if t.w == nil {
			t.state, t.reason, t.healthy = engine.StateFailed, t.rejected, false
		} else {
			// Never destroy a running node over a bad record.
			t.reason = t.rejected
			if t.w.Running {
				*probe = append(*probe, t)
			}
		}
	case now.Before(t.nextAttempt):
		if t.w != nil && t.w.Running {
			*probe = append(*probe, t)
		}
	case t.w == nil:
		t.state, t.reason, t.healthy = engine.StateCreating, "", false
		a.dispatch(t, actCreate, a.createFn(*t.desired))
	default:
		if why := needsRecreate(*t.w, *t.desired); why != "" {
			t.state, t.reason, t.healthy = engine.StateRestarting, why, false
			a.dispatch(t, actRecreate, a.recreateFn(*t.w, *t.desired))
			return
		}
		if !t.w.Running {
			a.restartStopped(t)
			return
		}
		if r := a.resources(*t.desired); a.host.CPUs > 0 && (r.NanoCPUs != t.w.NanoCPUs || r.CPUShares != t.w.CPUShares) {
			// The capacity changed: the CPU quota follows, live.
			a.dispatch(t, actUpdate, a.updateFn(t.w.ID, r))
			return
		}
		*probe = append(*probe, t)
	}
}

func gcInterval(grace time.Duration) time.Duration {
	return min(max(grace/4, time.Second), 30*time.Second)
}

// needsRecreate says why a container no longer matches its instance.
func needsRecreate(w Workload, in engine.Instance) string {
	switch {
	case in.Generation > w.Generation:
		return fmt.Sprintf("restart asked (generation %d → %d)", w.Generation, in.Generation)
	case in.Version != w.Version:
		return fmt.Sprintf("version %s → %s", w.Version, in.Version)
	case in.SizeMB != w.SizeMB:
		return fmt.Sprintf("size %d MB → %d MB", w.SizeMB, in.SizeMB)
	case in.Kind != w.Kind:
		return fmt.Sprintf("kind %s → %s", w.Kind, in.Kind)
	}
	return ""
}

// restartStopped starts a container that is not running: one never
// started (created), or one that died (counted as a restart).
func (a *agent) restartStopped(t *tracked) {
	w := *t.w
	if w.State == "created" {
		t.state, t.reason, t.healthy = engine.StateStarting, "", false
		a.dispatch(t, actStart, a.startFn(w.ID))
		return
	}
	cause, reason := "exited", fmt.Sprintf("node exited with code %d", w.ExitCode)
	if w.OOMKilled {
		cause, reason = "oom", fmt.Sprintf("node killed: out of memory (limit %d MB)", w.SizeMB)
	}
	a.countRestart(t, cause)
	t.state, t.reason, t.healthy = engine.StateRestarting, reason, false
	a.log.Warn("node stopped; restarting it", "instance", t.id, "container", short(w.ID), "reason", reason, "restarts", t.restarts)
	a.dispatch(t, actStart, a.startFn(w.ID))
}

func (a *agent) countRestart(t *tracked, cause string) {
	t.restarts++
	t.crashes++
	t.nextAttempt = time.Now().Add(min(time.Duration(1<<min(t.crashes-1, 6))*500*time.Millisecond, 30*time.Second))
	a.m.restarts.WithLabelValues(cause).Inc()
}

func (a *agent) resources(in engine.Instance) Resources {
	return ComputeResources(in.SizeMB, a.capacity(), a.host.CPUs)
}

func (a *agent) createFn(in engine.Instance) func(context.Context) (*Workload, error) {
	spec := Spec{Instance: in, Resources: a.resources(in)}
	return func(ctx context.Context) (*Workload, error) {
		if err := a.rt.EnsureImage(ctx, in.Version); err != nil {
			return nil, err
		}
		sec, err := a.securityOf(ctx, in)
		if err != nil {
			return nil, err
		}
		spec.Security = sec
		// A few creates at a time: the engine serialises much of the work,
		// and a batch finishing together makes every node late.
		select {
		case a.createSem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		defer func() { <-a.createSem }()
		w, err := a.rt.Create(ctx, spec)
		return &w, err
	}
}

func (a *agent) recreateFn(old Workload, in engine.Instance) func(context.Context) (*Workload, error) {
	create := a.createFn(in)
	return func(ctx context.Context) (*Workload, error) {
		if err := a.rt.EnsureImage(ctx, in.Version); err != nil {
			return nil, err
		}
		a.keepPreviousTail(ctx, old)
		if err := a.rt.Remove(ctx, old, a.cfg.StopTimeout); err != nil {
			return nil, err
		}
		return create(ctx)
	}
}

func (a *agent) startFn(id string) func(context.Context) (*Workload, error) {
	return func(ctx context.Context) (*Workload, error) { return nil, a.rt.Start(ctx, id) }
}

func (a *agent) restartFn(id string) func(context.Context) (*Workload, error) {
	return func(ctx context.Context) (*Workload, error) { return nil, a.rt.Restart(ctx, id, a.cfg.StopTimeout) }
}

func (a *agent) updateFn(id string, r Resources) func(context.Context) (*Workload, error) {
	return func(ctx context.Context) (*Workload, error) {
		if err := a.rt.Update(ctx, id, r); err != nil {
			return nil, err
		}
		w, err := a.inspect(ctx, id)
		return w, err
	}
}

// inspect re-reads one workload after an action.
func (a *agent) inspect(ctx context.Context, id string) (*Workload, error) {
	ws, err := a.rt.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		if w.ID == id {
			return &w, nil
		}
	}
	return nil, fmt.Errorf("workload %s vanished", short(id))
}

func (a *agent) removeFn(w Workload) func(context.Context) (*Workload, error) {
	return func(ctx context.Context) (*Workload, error) { return nil, a.rt.Remove(ctx, w, a.cfg.StopTimeout) }
}

// dispatch runs a runtime action in the background; its result comes
// back through a.done and triggers a pass.
func (a *agent) dispatch(t *tracked, action string, fn func(context.Context) (*Workload, error)) {
	t.busy, t.dispatchedAt = true, time.Now()
	a.m.actions.WithLabelValues(action).Inc()
	a.inflight.Add(1)
	iid := t.id
	go func() {
		defer a.inflight.Done()
		ctx, cancel := context.WithTimeout(a.ctx, a.cfg.StopTimeout+2*time.Minute)
		w, err := fn(ctx)
		cancel()
		a.done <- opResult{iid: iid, action: action, w: w, err: err}
	}()
}

func (a *agent) handleResult(r opResult) {
	defer a.poke()
	a.results[r.iid] = struct{}{}
	if r.err != nil || (r.w == nil && r.action != actRemove) {
		// The workload is not known from the result (start, restart, a
		// failed action that may have done part of its work): the next
		// pass lists the runtime.
		a.fullNeeded.Store(true)
	}
	t := a.tracked[r.iid]
	if t == nil {
		return
	}
	t.busy = false
	if r.err != nil {
		a.m.actionErrors.WithLabelValues(r.action).Inc()
		if a.ctx.Err() != nil {
			return
		}
		if r.action == actUpdate {
			// The node still runs with its old CPU settings.
			t.reason = fmt.Sprintf("CPU quota update failed: %v", r.err)
			t.nextAttempt = time.Now().Add(30 * time.Second)
			a.log.Warn("cannot update a node's CPU settings; will retry", "instance", r.iid, "err", r.err)
			return
		}
		t.healthy = false
		t.failedActions++
		// A missing image will not appear by retrying; other errors (a
		// busy engine, a port race between concurrent starts) often pass:
		// report failed only when they persist, so that the constructor,
		// which gives up on "failed", does not give up on a hiccup.
		if errors.Is(r.err, ErrImageMissing) || t.failedActions >= failedActionsBeforeFailed {
			t.state = engine.StateFailed
			t.reason = fmt.Sprintf("%s failed: %v", r.action, r.err)
		} else {
			t.reason = fmt.Sprintf("%s failed (attempt %d, retrying): %v", r.action, t.failedActions, r.err)
		}
		t.nextAttempt = time.Now().Add(min(time.Duration(1<<min(t.failedActions-1, 6))*500*time.Millisecond, time.Minute))
		a.log.Error("runtime action failed; will retry", "instance", r.iid, "action", r.action, "err", r.err,
			"attempt", t.failedActions, "retry_at", t.nextAttempt.Format(time.TimeOnly))
		return
	}
	t.failedActions = 0
	switch r.action {
	case actRemove:
		t.w = nil
		if t.desired == nil {
			t.state = engine.StateStopped
		}
		a.log.Info("node removed; its data volume is kept for the grace period", "instance", r.iid, "grace", a.cfg.VolumeGrace.String())
		if _, marked := a.ledger.mark(VolumeName(a.cfg.ID, r.iid), time.Now()); marked {
			a.saveLedger()
		}
	case actUpdate:
		if r.w != nil {
			t.w = r.w
		}
		a.log.Info("node CPU share and quota updated to the allocator's capacity", "instance", r.iid,
			"cpu_shares", t.w.CPUShares, "nano_cpus", t.w.NanoCPUs)
	default:
		if r.w != nil {
			t.w = r.w
		}
		if r.action == actCreate || r.action == actRecreate {
			if a.ledger.clear(VolumeName(a.cfg.ID, r.iid)) {
				a.saveLedger()
			}
		}
		t.everHealthy, t.failures = false, 0
		if t.state != engine.StateRestarting {
			t.reason = ""
		}
		t.state = engine.StateStarting
		a.log.Info("node started", "instance", r.iid, "action", r.action)
	}
}

func (a *agent) saveLedger() {
	if err := a.ledger.save(); err != nil {
		a.log.Warn("cannot save the volume ledger; grace periods restart with the allocator", "err", err)
	}
}

// probeDue reports whether a healthy node's probe is due (within a
// quarter interval: the pass that probes healthy nodes follows the
// tick, which does not wait for the last probes' times to the
// millisecond).
func (a *agent) probeDue(t *tracked, now time.Time) bool {
	return !now.Add(a.cfg.ProbeInterval / 4).Before(t.nextProbe)
}

// probeAll probes running nodes in parallel and updates their state.
func (a *agent) probeAll(ctx context.Context, all []*tracked, now time.Time) {
	// A healthy node is probed every ProbeInterval (probeDue), not on
	// every pass (passes follow every assignment); the others on every
	// pass.
	ts := all[:0:0]
	for _, t := range all {
		if t.healthy && t.everHealthy && !a.probeDue(t, now) {
			continue
		}
		t.nextProbe = now.Add(a.cfg.ProbeInterval)
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		return
	}
	errs := make([]error, len(ts))
	ws := make([]Workload, len(ts))
	for i, t := range ts {
		ws[i] = *t.w
	}
	// At most 32 probes at once, by 32 workers (not a goroutine per
	// instance: an allocator of hundreds of healthy nodes probes them
	// all every ProbeInterval).
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(32, len(ws)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(ws); i = int(next.Add(1) - 1) {
				pctx, cancel := context.WithTimeout(ctx, a.cfg.ProbeTimeout)
				errs[i] = a.rt.Probe(pctx, ws[i])
				cancel()
			}
		}()
	}
	wg.Wait()
	for i, t := range ts {
		err := errs[i]
		if err == nil {
			if !t.everHealthy {
				t.everHealthy, t.crashes = true, 0
				if !t.firstSeen.IsZero() {
					a.m.readySeconds.Observe(now.Sub(t.firstSeen).Seconds())
					t.firstSeen = time.Time{}
				}
				a.log.Info("node healthy", "instance", t.id, "address", t.w.Address)
			}
			t.failures, t.healthy = 0, true
			if t.rejected == "" && a.runtimeErr == "" {
				t.reason = ""
			}
			t.state = engine.StateRunning
			continue
		}
		a.m.probeFailures.Inc()
		t.failures++
		t.healthy = false
		if t.rejected != "" || t.busy {
			continue
		}
		if t.everHealthy {
			t.state = engine.StateUnhealthy
			t.reason = fmt.Sprintf("health check failed %d time(s): %v", t.failures, err)
			if t.failures >= a.cfg.FailureThreshold && a.runtimeErr == "" {
				a.countRestart(t, "unhealthy")
				t.state = engine.StateRestarting
				t.reason = fmt.Sprintf("restarted after %d failed health checks: %v", t.failures, err)
				a.log.Warn("node unhealthy; restarting it", "instance", t.id, "failures", t.failures, "err", err, "restarts", t.restarts)
				a.dispatch(t, actRestart, a.restartFn(t.w.ID))
			}
			continue
		}
		if t.state != engine.StateRestarting {
			t.state = engine.StateStarting
		}
		if !t.w.StartedAt.IsZero() && now.Sub(t.w.StartedAt) > a.cfg.StartTimeout && a.runtimeErr == "" {
			a.countRestart(t, "start_timeout")
			t.state = engine.StateRestarting
			t.reason = fmt.Sprintf("not healthy %s after start: %v", a.cfg.StartTimeout, err)
			a.log.Warn("node never became healthy; restarting it", "instance", t.id, "err", err)
			a.dispatch(t, actRestart, a.restartFn(t.w.ID))
		}
	}
}

// statusOf renders an instance's status znode.
func (a *agent) statusOf(t *tracked) engine.InstanceStatus {
	st := engine.InstanceStatus{ID: t.id, State: t.state, Reason: t.reason, Healthy: t.healthy, Restarts: t.restarts}
	if st.State == "" {
		st.State = engine.StateCreating
	}
	if t.desired != nil {
		in := t.desired
		st.DeploymentID, st.Kind, st.Version, st.SizeMB = in.DeploymentID, in.Kind, in.Version, in.SizeMB
	}
	if w := t.w; w != nil {
		if st.DeploymentID == "" {
			st.DeploymentID, st.Kind, st.Version, st.SizeMB = w.Deployment, w.Kind, w.Version, w.SizeMB
		}
		st.ContainerID, st.Address, st.HostPort, st.Generation = w.ID, w.Address, w.HostPort, w.Generation
		if w.Running {
			st.StartedAt = w.StartedAt.UTC()
			if w.Address != "" {
				st.TunnelAddr = a.tunnelAddr
			}
		}
	}
	return st
}

// aliveData is the alive node's content (UpdatedAt left zero).
func (a *agent) aliveData() engine.AllocatorAlive {
	capMB := a.capacity()
	return engine.AllocatorAlive{CapacityMB: capMB, UsedMB: a.usedMB, FreeMB: max(capMB-a.usedMB, 0),
		Instances: a.desiredN, Healthy: a.healthyN, StartedAt: a.started, DockerOK: a.runtimeErr == "", Error: a.runtimeErr}
}

// collectVolumes removes data volumes whose instance has been gone
// longer than the grace period.
func (a *agent) collectVolumes(ctx context.Context, desired map[string]engine.Instance) {
	vctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	vols, err := a.rt.Volumes(vctx)
	if err != nil {
		a.log.Warn("cannot list data volumes", "err", err)
		return
	}
	changed := false
	now := time.Now()
	for iid, name := range vols {
		t := a.tracked[iid]
		if _, ok := desired[iid]; ok || (t != nil && (t.w != nil || t.busy)) {
			changed = a.ledger.clear(name) || changed
			continue
		}
		since, marked := a.ledger.mark(name, now)
		changed = changed || marked
		if now.Sub(since) < a.cfg.VolumeGrace {
			continue
		}
		if err := a.rt.RemoveVolume(vctx, name); err != nil {
			a.log.Warn("cannot remove an expired data volume", "volume", name, "err", err)
			continue
		}
		a.ledger.clear(name)
		changed = true
		a.m.volumesGC.Inc()
		a.log.Info("data volume removed after its grace period", "volume", name, "instance", iid, "unassigned_since", since.Format(time.RFC3339))
	}
	if changed {
		a.saveLedger()
	}
}
