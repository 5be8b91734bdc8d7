package constructor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"paddock/engine"
	"paddock/engine/placement"
)

// Step names of the plan activity.
const (
	StepValidate  = "validate"
	StepResume    = "resume plan"
	StepPlace     = "place"
	StepWait      = "wait until running and healthy"
	StepSnapshot  = "snapshot"
	StepMigrate   = "migrate data"
	StepPause     = "pause route"
	StepFinalSync = "final sync"
	StepSwitch    = "switch route"
	StepResumeRt  = "resume route"
	StepRemoveOld = "remove old instances"
	StepRemoveRt  = "remove route"
	StepRestart   = "restart instances"
	StepRollback  = "rollback"
	StepCompleted = "completed"
)

// errLost: another constructor owns the plan now; stop without touching
// anything.
var errLost = errors.New("the plan is now run by another constructor")

// errCancelled: the operator asked to cancel.
var errCancelled = errors.New("cancelled on request")

type executor struct {
	l   *leader
	log *slog.Logger

	depID  string
	plan   engine.Plan
	ver    engine.Version
	dep    engine.Deployment
	change Change
}

// execute runs the pending plan of a deployment to its end.
func (l *leader) execute(ctx context.Context, depID string) {
	x := &executor{l: l, depID: depID, log: l.log.With("deployment", depID)}
	start := time.Now()
	if err := x.run(ctx); err != nil {
		if ctx.Err() != nil || errors.Is(err, errLost) {
			x.log.Warn("plan left to the next leader", "plan", x.plan.ID, "err", err)
			return
		}
		x.log.Error("plan failed", "plan", x.plan.ID, "err", err)
	}
	l.m.planSeconds.WithLabelValues(x.plan.Action).Observe(time.Since(start).Seconds())
}

func (x *executor) progress(k string) string { return x.plan.Progress[k] }

func (x *executor) setProgress(k, v string) {
	if x.plan.Progress == nil {
		x.plan.Progress = map[string]string{}
	}
	x.plan.Progress[k] = v
}

// save writes the plan back by compare-and-set, merging a cancellation
// requested meanwhile; errLost if another constructor took it over.
func (x *executor) save(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		v, err := x.l.s.Set(ctx, engine.PendingPlanPath(x.depID), x.plan, x.ver)
		if err == nil {
			x.ver = v
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, engine.ErrNotFound) {
			return errLost
		}
		if errors.Is(err, engine.ErrUnavailable) && attempt < 30 {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if !errors.Is(err, engine.ErrConflict) || attempt > 20 {
			return err
		}
		var remote engine.Plan
		rv, err := x.l.s.GetJSON(ctx, engine.PendingPlanPath(x.depID), &remote)
		if errors.Is(err, engine.ErrNotFound) {
			return errLost
		}
		if err != nil {
			return err
		}
		if remote.Leader != x.plan.Leader || remote.ID != x.plan.ID {
			return errLost
		}
		x.plan.CancelRequested = x.plan.CancelRequested || remote.CancelRequested
		x.ver = rv
	}
}

// cancelled reports a cancellation request (from the cache, cheap).
func (x *executor) cancelled() bool {
	if x.plan.CancelRequested {
		return true
	}
	n, ok := x.l.deps.Get(engine.PendingPlanPath(x.depID))
	if !ok {
		return false
	}
	var p engine.Plan
	if jsonUnmarshal(n.Data, &p) == nil && p.ID == x.plan.ID && p.CancelRequested {
		x.plan.CancelRequested = true
	}
	return x.plan.CancelRequested
}

// step runs fn as a logged step; done steps of a resumed plan are skipped.
func (x *executor) step(ctx context.Context, name, key string, fn func(ctx context.Context) (string, error)) error {
	if key == "" {
		key = name
	}
	if x.progress("done:"+key) != "" {
		return nil
	}
	if name != StepRollback && name != StepCompleted && x.cancelled() {
		return errCancelled
	}
	now := time.Now().UTC()
	x.plan.Steps = append(x.plan.Steps, engine.PlanStep{Name: name, Status: engine.PlanRunning, Started: now, AppliedBy: x.l.cfg.ID})
	if err := x.save(ctx); err != nil {
		return err
	}
	msg, err := fn(ctx)
	if errors.Is(err, errLost) || ctx.Err() != nil {
		if err == nil {
			err = ctx.Err()
		}
		return err
	}
	i := len(x.plan.Steps) - 1
	end := time.Now().UTC()
	x.plan.Steps[i].Ended = &end
	x.plan.Steps[i].Message = msg
	if err != nil {
		x.plan.Steps[i].Status = engine.PlanError
		x.plan.Steps[i].Message = strings.TrimPrefix(msg+": "+err.Error(), ": ")
	} else {
		x.plan.Steps[i].Status = engine.PlanSuccess
		x.setProgress("done:"+key, "1")
	}
	x.l.m.steps.WithLabelValues(name, x.plan.Steps[i].Status).Inc()
	if serr := x.save(ctx); serr != nil {
		return serr
	}
	return err
}

func (x *executor) run(ctx context.Context) error {
	s := x.l.s
	ver, err := s.GetJSON(ctx, engine.PendingPlanPath(x.depID), &x.plan)
	if errors.Is(err, engine.ErrNotFound) {
		return nil // finished meanwhile (the cache lagged)
	}
	if err != nil {
		return err
	}
	x.ver = ver
	if x.plan.Status != engine.PlanPending && x.plan.Status != engine.PlanRunning {
		return nil
	}
	if _, err := s.GetJSON(ctx, engine.DeploymentPath(x.depID), &x.dep); err != nil {
		return fmt.Errorf("read deployment %s: %w", x.depID, err)
	}
	if x.dep.ID == "" {
		x.dep.ID = x.depID
	}
	previous := x.plan.Leader
	resumed := x.plan.Status == engine.PlanRunning
	x.plan.Leader, x.plan.Status = x.l.cfg.ID, engine.PlanRunning
	if x.plan.Steps == nil {
		x.plan.Steps = []engine.PlanStep{}
	}
	if err := x.save(ctx); err != nil {
		return err
	}
	x.log = x.log.With("plan", x.plan.ID, "action", x.plan.Action)
	x.change = ComputeChange(x.dep, x.plan)
	if resumed {
		next := "the start"
		for _, st := range x.plan.Steps {
			if st.Status == engine.PlanSuccess {
				next = "the step after " + st.Name
			}
		}
		// A step a dead leader left running is marked as interrupted.
		for i := range x.plan.Steps {
			if x.plan.Steps[i].Status == engine.PlanRunning {
				end := time.Now().UTC()
				x.plan.Steps[i].Status, x.plan.Steps[i].Ended = engine.PlanError, &end
				x.plan.Steps[i].Message = "interrupted: its constructor stopped leading"
			}
		}
		msg := fmt.Sprintf("constructor %s took over from %s and resumes at %s", x.l.cfg.ID, orUnknown(previous), next)
		x.log.Warn("resuming a plan left half-done", "previous_leader", previous)
		if err := x.step(ctx, StepResume, fmt.Sprintf("resume:%d", len(x.plan.Steps)), func(context.Context) (string, error) { return msg, nil }); err != nil {
			return x.fail(ctx, err)
		}
	} else if err := x.markDeployment(ctx); err != nil {
		return err
	}
	x.log.Info("running plan", "change", x.change.Describe, "resumed", resumed)
	var runErr error
	switch x.plan.Action {
	case engine.ActionDelete:
		runErr = x.runDelete(ctx)
	case engine.ActionRestart:
		runErr = x.runRestart(ctx)
	default:
		if x.plan.Strategy == engine.PlanRolling && x.plan.Action == engine.ActionUpdate && x.replacing() {
			runErr = x.runRolling(ctx)
		} else {
			runErr = x.runGrowAndShrink(ctx)
		}
	}
	if runErr != nil {
		return x.fail(ctx, runErr)
	}
	return x.finish(ctx, engine.PlanSuccess, x.finalInstances(), "")
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown constructor"
	}
	return s
}

// replacing reports whether the change replaces instances in place.
func (x *executor) replacing() bool {
	for _, r := range x.change.Requests {
		if r.Replaces {
			return true
		}
	}
	return false
}

// markDeployment records the plan start on the deployment.
func (x *executor) markDeployment(ctx context.Context) error {
	var d engine.Deployment
	_, err := x.l.s.Update(ctx, engine.DeploymentPath(x.depID), &d, func() error {
		d.LastPlanID, d.LastPlanStatus = x.plan.ID, engine.PlanRunning
		switch {
		case x.plan.Action == engine.ActionDelete:
			d.Status = engine.DeploymentDeleting
		case len(d.Instances) == 0:
			d.Status = engine.DeploymentInitializing
		default:
			d.Status = engine.DeploymentReconfiguring
		}
		d.UpdatedAt = time.Now().UTC()
		return nil
	})
	return err
}

func (x *executor) validate(ctx context.Context) error {
	return x.step(ctx, StepValidate, "", func(context.Context) (string, error) {
		if x.plan.Action == engine.ActionDelete || x.plan.Action == engine.ActionRestart {
			return x.change.Describe, nil
		}
		if err := engine.SpecError(engine.ValidateSpec(x.l.config(), 0, x.plan.Spec)); err != nil {
			return "", err
		}
		if x.plan.Action == engine.ActionMove && len(x.change.Requests) == 0 {
			return "no instance on " + strings.Join(x.plan.MoveFrom, ", ") + ": nothing to move", nil
		}
		return x.change.Describe, nil
	})
}

// seed makes placement tie-breaks repeatable per plan.
func (x *executor) seed() int64 {
	if x.l.cfg.Seed != 0 {
		return x.l.cfg.Seed
	}
	return placement.PlanSeed(x.plan.ID)
}

// place decides and writes new instances for reqs, recording them in the
// plan first so that a new leader knows what to clean up.
func (x *executor) place(ctx context.Context, reqs []placement.Request) ([]engine.PlacedInstance, error) {
	l := x.l
	l.placeMu.Lock()
	defer l.placeMu.Unlock()
	// The cache is the inventory (no round trips), plus the instances
	// this leader wrote that the cache does not show yet.
	inv := l.inventory()
	res, err := placement.Place(placement.FromInventory(inv), reqs, placement.Options{Strategy: l.config().PlacementStrategy, Seed: x.seed()})
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	var placed []engine.PlacedInstance
	var ops []engine.Op
	for _, p := range res.Placements {
		in := engine.Instance{ID: engine.NewID(), DeploymentID: x.depID, Kind: p.Kind, Version: x.plan.Spec.Version,
			SizeMB: p.SizeMB, Zone: p.Zone, PlanID: x.plan.ID, CreatedAt: now}
		placed = append(placed, engine.PlacedInstance{ID: in.ID, Kind: in.Kind, Allocator: p.Allocator, Zone: p.Zone, SizeMB: p.SizeMB, Version: in.Version})
		ops = append(ops, engine.OpCreate(engine.InstancePath(p.Allocator, in.ID), in))
	}
	x.plan.NewInstances = append(x.plan.NewInstances, placed...)
	if err := x.save(ctx); err != nil {
		return nil, err
	}
	if err := l.s.Multi(ctx, ops...); err != nil {
		return nil, fmt.Errorf("write instance assignments: %w", err)
	}
	l.m.placements.Add(float64(len(placed)))
	for _, p := range placed {
		in := engine.Instance{ID: p.ID, DeploymentID: x.depID, Kind: p.Kind, SizeMB: p.SizeMB, Zone: p.Zone}
		l.placed[engine.InstancePath(p.Allocator, p.ID)] = placedEntry{alloc: p.Allocator, in: in, at: time.Now()}
	}
	return placed, nil
}

// ensureInstances re-creates recorded instance znodes missing after a
// leader change between recording and writing them.
func (x *executor) ensureInstances(ctx context.Context, ins []engine.PlacedInstance) error {
	for _, p := range ins {
		in := engine.Instance{ID: p.ID, DeploymentID: x.depID, Kind: p.Kind, Version: p.Version, SizeMB: p.SizeMB,
			Zone: p.Zone, PlanID: x.plan.ID, CreatedAt: time.Now().UTC()}
		if err := x.l.s.Create(ctx, engine.InstancePath(p.Allocator, p.ID), in); err != nil && !errors.Is(err, engine.ErrExists) {
			return err
		}
	}
	return nil
}

func describePlaced(ins []engine.PlacedInstance) string {
	parts := make([]string, len(ins))
	for i, p := range ins {
		parts[i] = fmt.Sprintf("%s %s on %s (%s)", p.Kind, engine.FormatSize(p.SizeMB), p.Allocator, p.Zone)
	}
	return strings.Join(parts, ", ")
}

// waitHealthy waits until every instance runs healthy (at least at
// generation gen for restarts).
func (x *executor) waitHealthy(ctx context.Context, ins []engine.PlacedInstance, gen map[string]int) (string, error) {
	deadline := time.Now().Add(x.l.cfg.HealthyTimeout)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		var waiting []string
		for _, in := range ins {
			st, ok := x.l.status(in.Allocator, in.ID)
			switch {
			case !ok:
				waiting = append(waiting, fmt.Sprintf("%s on %s: no status yet", in.ID[:8], in.Allocator))
			case st.State == engine.StateFailed:
				return "", fmt.Errorf("instance %s on allocator %s failed: %s (see the allocator's logs)", in.ID, in.Allocator, st.Reason)
			case st.State != engine.StateRunning || !st.Healthy || st.Generation < gen[in.ID]:
				waiting = append(waiting, fmt.Sprintf("%s on %s: %s", in.ID[:8], in.Allocator, st.State))
			}
		}
		if len(waiting) == 0 {
			return fmt.Sprintf("%d instance(s) running and healthy", len(ins)), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("not healthy after %s: %s: check the allocators (paddock allocator list) and their logs", x.l.cfg.HealthyTimeout, strings.Join(waiting, "; "))
		}
		if x.cancelled() {
			return "", errCancelled
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-t.C:
		}
	}
}

// address of a healthy instance, or "".
func (x *executor) address(in engine.PlacedInstance) string {
	st, ok := x.l.status(in.Allocator, in.ID)
	if !ok || !st.Healthy || st.State != engine.StateRunning || !x.l.alive(in.Allocator) {
		return ""
	}
	return st.Address
}

// nodeAddr is where the NodeAPI calls a healthy instance (the address()
// rules): its allocator's node tunnel when this constructor has a node
// certificate and the allocator runs one, else its Address. "" when not
// healthy.
func (x *executor) nodeAddr(in engine.PlacedInstance) string {
	a := x.address(in)
	if a == "" || x.l.cfg.NodeLoader == nil {
		return a
	}
	if st, _ := x.l.status(in.Allocator, in.ID); st.TunnelAddr != "" {
		return TunnelTarget(st.TunnelAddr, in.ID)
	}
	return a
}

func esOnly(ins []engine.PlacedInstance) []engine.PlacedInstance {
	var out []engine.PlacedInstance
	for _, in := range ins {
		if in.Kind == engine.KindElasticsearch {
			out = append(out, in)
		}
	}
	return out
}

// source picks the node holding the data: a healthy old Elasticsearch
// instance, preferring those that stay.
func (x *executor) source() string {
	for _, in := range append(esOnly(x.change.Keep), esOnly(x.change.Retire)...) {
		if slices.Contains(x.plan.MoveFrom, in.Allocator) && !x.l.alive(in.Allocator) {
			continue
		}
		if a := x.nodeAddr(in); a != "" {
			return a
		}
	}
	return ""
}

func (x *executor) snapName(phase string) string {
	return fmt.Sprintf("plan-%s-%s", x.plan.ID[:min(12, len(x.plan.ID))], phase)
}

// migrate copies snapshot snap from the source into every new ES node.
func (x *executor) restoreAll(ctx context.Context, snap string, targets []engine.PlacedInstance) error {
	for _, in := range esOnly(targets) {
		addr := x.nodeAddr(in)
		if addr == "" {
			return fmt.Errorf("new instance %s on %s is not healthy: cannot restore into it", in.ID, in.Allocator)
		}
		cctx, cancel := context.WithTimeout(ctx, x.l.cfg.StepTimeout)
		err := x.l.cfg.Nodes.Restore(cctx, addr, SnapshotLocation(x.depID), snap)
		cancel()
		if err != nil {
			return fmt.Errorf("restore %s into %s: %w", snap, in.ID, err)
		}
	}
	return nil
}

func (x *executor) takeSnapshot(ctx context.Context, src, snap string) error {
	cctx, cancel := context.WithTimeout(ctx, x.l.cfg.StepTimeout)
	defer cancel()
	if err := x.l.cfg.Nodes.Snapshot(cctx, src, SnapshotLocation(x.depID), snap); err != nil {
		return fmt.Errorf("snapshot %s on %s: %w", snap, src, err)
	}
	return nil
}

// setPeers makes the ES nodes of ins replicate to each other (best
// effort: a failure is reported in the step message).
func (x *executor) setPeers(ctx context.Context, ins []engine.PlacedInstance) string {
	var addrs, peerURLs []string
	for _, in := range esOnly(ins) {
		if a := x.address(in); a != "" {
			addrs = append(addrs, x.nodeAddr(in))
			peerURLs = append(peerURLs, x.l.peerURL(in, a))
		}
	}
	var failed []string
	for i, a := range addrs {
		var peers []string
		for j := range addrs {
			if j != i {
				peers = append(peers, peerURLs[j])
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := x.l.cfg.Nodes.SetPeers(cctx, a, peers); err != nil {
			failed = append(failed, err.Error())
		}
		cancel()
	}
	if len(failed) > 0 {
		return "; replication peers not set: " + strings.Join(failed, "; ")
	}
	return ""
}

// finalInstances is the topology after success.
func (x *executor) finalInstances() []engine.PlacedInstance {
	if x.plan.Action == engine.ActionDelete {
		return []engine.PlacedInstance{}
	}
	out := append([]engine.PlacedInstance{}, x.change.Keep...)
	out = append(out, x.plan.NewInstances...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Zone < out[j].Zone
	})
	return out
}

func (x *executor) runGrowAndShrink(ctx context.Context) error {
	if err := x.validate(ctx); err != nil {
		return err
	}
	if len(x.change.Requests) > 0 {
		if err := x.step(ctx, StepPlace, "", func(ctx context.Context) (string, error) {
			if len(x.plan.NewInstances) > 0 { // resumed after recording them
				return "instances placed before the leader change: " + describePlaced(x.plan.NewInstances), x.ensureInstances(ctx, x.plan.NewInstances)
			}
			placed, err := x.place(ctx, x.change.Requests)
			if err != nil {
				return "", err
			}
			return describePlaced(placed) + " (strategy " + orDefault(x.l.config().PlacementStrategy, engine.StrategyFillAntiAffinity) + ")", nil
		}); err != nil {
			return err
		}
		if err := x.step(ctx, StepWait, "", func(ctx context.Context) (string, error) {
			return x.waitHealthy(ctx, x.plan.NewInstances, nil)
		}); err != nil {
			return err
		}
	}
	final := x.finalInstances()
	_, routed := x.l.routes.Get(engine.RoutePath(x.depID))
	migrate := x.change.NeedsMigration()
	src := ""
	if migrate {
		if err := x.step(ctx, StepSnapshot, "", func(ctx context.Context) (string, error) {
			src = x.source()
			if src == "" {
				x.setProgress("nosource", "1")
				// The data is on no running node (its allocator is lost):
				// recover the newest snapshot of the deployment's repository.
				for _, in := range esOnly(x.plan.NewInstances) {
					addr := x.nodeAddr(in)
					if addr == "" {
						continue
					}
					cctx, cancel := context.WithTimeout(ctx, x.l.cfg.StepTimeout)
					latest, err := x.l.cfg.Nodes.LatestSnapshot(cctx, addr, SnapshotLocation(x.depID))
					cancel()
					if err != nil {
						return "", fmt.Errorf("no healthy node holds the data, and the snapshot repository cannot be listed: %w", err)
					}
					if latest != "" {
						x.setProgress("recover", latest)
						return "no healthy node holds the data (lost allocator): recovering the newest snapshot " + latest +
							"; writes made after it are lost", nil
					}
					break
				}
				return "no healthy node holds the data and the repository has no snapshot: the new nodes start empty", nil
			}
			x.setProgress("source", src)
			return "snapshot " + x.snapName("initial") + " of " + src, x.takeSnapshot(ctx, src, x.snapName("initial"))
		}); err != nil {
			return err
		}
		migrate = x.progress("nosource") == ""
	}
	if migrate || x.progress("recover") != "" {
		snap := x.snapName("initial")
		if r := x.progress("recover"); r != "" {
			snap = r
		}
		if err := x.step(ctx, StepMigrate, "", func(ctx context.Context) (string, error) {
			return fmt.Sprintf("restored %s into %d new node(s)", snap, len(esOnly(x.plan.NewInstances))),
				x.restoreAll(ctx, snap, x.plan.NewInstances)
		}); err != nil {
			return err
		}
	}
	if routed && migrate {
		if err := x.step(ctx, StepPause, "", func(ctx context.Context) (string, error) {
			if err := x.l.setRouteState(ctx, x.depID, engine.RoutePaused); err != nil {
				return "", err
			}
			x.setProgress("paused", "1")
			// Let proxies see the pause and in-flight writes finish.
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(x.l.cfg.PauseSettle):
			}
			return fmt.Sprintf("route paused; settled %s", x.l.cfg.PauseSettle), nil
		}); err != nil {
			return err
		}
		if err := x.step(ctx, StepFinalSync, "", func(ctx context.Context) (string, error) {
			src := x.progress("source")
			if a := x.source(); a != "" {
				src = a
			}
			if src == "" {
				return "", fmt.Errorf("no healthy node to take the final snapshot from")
			}
			if err := x.takeSnapshot(ctx, src, x.snapName("final")); err != nil {
				return "", err
			}
			return "delta since " + x.snapName("initial") + " restored into the new nodes", x.restoreAll(ctx, x.snapName("final"), x.plan.NewInstances)
		}); err != nil {
			return err
		}
	}
	backends := x.l.backends(final)
	n, hasRoute := x.l.routes.Get(engine.RoutePath(x.depID))
	var cur engine.Route
	if hasRoute {
		_ = jsonUnmarshal(n.Data, &cur)
	}
	if !hasRoute || !sameBackends(cur.Backends, backends) || x.progress("paused") != "" {
		if err := x.step(ctx, StepSwitch, "", func(ctx context.Context) (string, error) {
			peers := x.setPeers(ctx, final)
			state := engine.RouteLive
			if x.progress("paused") != "" {
				state = engine.RoutePaused
			}
			if err := x.l.writeRoute(ctx, x.depID, backends, state); err != nil {
				return "", err
			}
			x.setProgress("switched", "1")
			return fmt.Sprintf("route to %d node(s)%s", len(backends), peers), nil
		}); err != nil {
			return err
		}
	}
	if x.progress("paused") != "" {
		if err := x.step(ctx, StepResumeRt, "", func(ctx context.Context) (string, error) {
			return "route live", x.l.setRouteState(ctx, x.depID, engine.RouteLive)
		}); err != nil {
			return err
		}
	}
	if len(x.change.Retire) > 0 {
		if err := x.step(ctx, StepRemoveOld, "", func(ctx context.Context) (string, error) {
			return describePlaced(x.change.Retire), x.removeInstances(ctx, x.change.Retire)
		}); err != nil {
			// The new topology serves already: retry instead of rolling back.
			return x.retryRemove(ctx, err)
		}
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// retryRemove keeps trying to remove the old instances once the route
// serves the new ones (a rollback would be worse than a retry).
func (x *executor) retryRemove(ctx context.Context, first error) error {
	if errors.Is(first, errLost) || errors.Is(first, errCancelled) || ctx.Err() != nil {
		if errors.Is(first, errCancelled) {
			return x.removeInstances(ctx, x.change.Retire)
		}
		return first
	}
	for i := 0; i < 10; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		if err := x.removeInstances(ctx, x.change.Retire); err == nil {
			return nil
		}
	}
	return fmt.Errorf("old instances could not be removed after the switch: %w", first)
}

func (x *executor) removeInstances(ctx context.Context, ins []engine.PlacedInstance) error {
	x.l.placeMu.Lock()
	for _, in := range ins {
		delete(x.l.placed, engine.InstancePath(in.Allocator, in.ID))
	}
	x.l.placeMu.Unlock()
	for _, in := range ins {
		if err := x.l.s.Delete(ctx, engine.InstancePath(in.Allocator, in.ID), engine.AnyVersion); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return fmt.Errorf("remove instance %s from %s: %w", in.ID, in.Allocator, err)
		}
	}
	return nil
}

func (x *executor) runDelete(ctx context.Context) error {
	if err := x.validate(ctx); err != nil {
		return err
	}
	if err := x.step(ctx, StepRemoveRt, "", func(ctx context.Context) (string, error) {
		err := x.l.s.Delete(ctx, engine.RoutePath(x.depID), engine.AnyVersion)
		if errors.Is(err, engine.ErrNotFound) {
			return "no route", nil
		}
		return "route removed", err
	}); err != nil {
		return err
	}
	// Every instance znode of the deployment, including strays of
	// interrupted plans.
	all := append([]engine.PlacedInstance{}, x.dep.Instances...)
	for _, a := range x.l.allocs.Children(engine.PathAllocators) {
		for _, iid := range x.l.allocs.Children(engine.InstancesPath(a)) {
			n, ok := x.l.allocs.Get(engine.InstancePath(a, iid))
			var in engine.Instance
			if ok && jsonUnmarshal(n.Data, &in) == nil && in.DeploymentID == x.depID {
				all = append(all, engine.PlacedInstance{ID: iid, Allocator: a, Kind: in.Kind, Zone: in.Zone})
			}
		}
	}
	return x.step(ctx, StepRemoveOld, "", func(ctx context.Context) (string, error) {
		return fmt.Sprintf("%d instance(s) removed", len(x.dep.Instances)), x.removeInstances(ctx, all)
	})
}

func (x *executor) runRestart(ctx context.Context) error {
	if err := x.validate(ctx); err != nil {
		return err
	}
	// One instance at a time: the others keep serving.
	for _, in := range x.change.Restart {
		in := in
		if err := x.step(ctx, StepRestart, "restart:"+in.ID, func(ctx context.Context) (string, error) {
			var cur engine.Instance
			if _, err := x.l.s.Update(ctx, engine.InstancePath(in.Allocator, in.ID), &cur, func() error {
				if g := x.progress("gen:" + in.ID); g != "" {
					return engine.ErrNoChange // bumped before a leader change
				}
				cur.Generation++
				return nil
			}); err != nil {
				return "", err
			}
			if x.progress("gen:"+in.ID) == "" {
				x.setProgress("gen:"+in.ID, fmt.Sprint(cur.Generation))
			}
			var g int
			fmt.Sscan(x.progress("gen:"+in.ID), &g)
			msg, err := x.waitHealthy(ctx, []engine.PlacedInstance{in}, map[string]int{in.ID: g})
			return fmt.Sprintf("%s on %s restarted (generation %d); %s", in.ID[:8], in.Allocator, g, msg), err
		}); err != nil {
			return err
		}
	}
	return nil
}

// fail rolls back (or, for the delete and restart actions, just records)
// and finishes the plan with an error or cancelled status.
func (x *executor) fail(ctx context.Context, cause error) error {
	if errors.Is(cause, errLost) || ctx.Err() != nil {
		return cause
	}
	status := engine.PlanError
	if errors.Is(cause, errCancelled) {
		status = engine.PlanCancelled
	}
	x.log.Warn("plan failed: rolling back", "err", cause)
	instances := x.dep.Instances
	switch x.plan.Action {
	case engine.ActionDelete, engine.ActionRestart:
	default:
		if x.progress("rolling") != "" {
			// Zones already replaced stay replaced; the route serves
			// what runs, live again if it was paused.
			instances = x.rollingInstances()
			if err := x.step(ctx, StepRollback, "", func(ctx context.Context) (string, error) {
				// A successor that is not healthy, or whose data was not
				// restored, must not serve: it goes.
				unrestored := map[string]bool{}
				for _, o := range x.change.Retire {
					if s := x.progress("successor:" + o.ID); s != "" && o.Kind == engine.KindElasticsearch &&
						x.progress("nosnap:"+o.ID) == "" && x.progress("done:"+StepMigrate+"@"+o.ID) == "" {
						unrestored[s] = true
					}
				}
				var pending []engine.PlacedInstance
				for _, in := range x.plan.NewInstances {
					if x.address(in) == "" || unrestored[in.ID] {
						pending = append(pending, in)
					}
				}
				if err := x.removeInstances(ctx, pending); err != nil {
					return "", err
				}
				kept := instances[:0:0]
				for _, in := range instances {
					if !slices.ContainsFunc(pending, func(p engine.PlacedInstance) bool { return p.ID == in.ID }) {
						kept = append(kept, in)
					}
				}
				instances = kept
				b := x.l.backends(instances)
				if len(b) == 0 {
					return "no node left to route to", nil
				}
				return fmt.Sprintf("rolling stopped: %d new instance(s) unhealthy or without their data removed; route to the %d serving node(s)", len(pending), len(b)),
					x.l.writeRoute(ctx, x.depID, b, engine.RouteLive)
			}); err != nil && (errors.Is(err, errLost) || ctx.Err() != nil) {
				return err
			}
			break
		}
		if err := x.step(ctx, StepRollback, "", func(ctx context.Context) (string, error) {
			return x.rollback(ctx)
		}); err != nil && (errors.Is(err, errLost) || ctx.Err() != nil) {
			return err
		}
	}
	if err := x.finish(ctx, status, instances, cause.Error()); err != nil {
		return err
	}
	return cause
}

// rollback returns to the last good topology: the old route, the old
// instances; the new instances go.
func (x *executor) rollback(ctx context.Context) (string, error) {
	var did []string
	old := x.dep.Instances
	if x.progress("switched") != "" || x.progress("paused") != "" {
		if peers := x.setPeers(ctx, old); peers != "" {
			did = append(did, strings.TrimPrefix(peers, "; "))
		}
		if err := x.l.writeRoute(ctx, x.depID, x.l.backends(old), engine.RouteLive); err != nil {
			return "", fmt.Errorf("restore the old route: %w", err)
		}
		did = append(did, "old route restored")
	}
	if len(x.plan.NewInstances) > 0 {
		if err := x.removeInstances(ctx, x.plan.NewInstances); err != nil {
			return "", err
		}
		did = append(did, fmt.Sprintf("%d new instance(s) removed", len(x.plan.NewInstances)))
	}
	if len(did) == 0 {
		did = append(did, "nothing had changed")
	}
	return strings.Join(did, "; ") + "; the previous topology serves", nil
}

// finish writes the plan to the history, deletes the pending plan and
// updates the deployment, in one Multi.
func (x *executor) finish(ctx context.Context, status string, instances []engine.PlacedInstance, reason string) error {
	s := x.l.s
	msg := "plan succeeded: " + x.change.Describe
	stepStatus := engine.PlanSuccess
	if status != engine.PlanSuccess {
		stepStatus = engine.PlanError
		msg = "plan " + status + ": " + reason
	}
	now := time.Now().UTC()
	x.plan.Steps = append(x.plan.Steps, engine.PlanStep{Name: StepCompleted, Status: stepStatus, Started: now, Ended: &now,
		Message: msg, AppliedBy: x.l.cfg.ID})
	x.plan.Status, x.plan.EndedAt = status, &now
	if err := s.EnsurePath(ctx, engine.PlanHistoryPath(x.depID)); err != nil {
		return err
	}
	if instances == nil {
		instances = []engine.PlacedInstance{}
	}
	for attempt := 0; attempt < 20; attempt++ {
		var d engine.Deployment
		dv, err := s.GetJSON(ctx, engine.DeploymentPath(x.depID), &d)
		if err != nil {
			return err
		}
		d.Instances = instances
		d.LastPlanID, d.LastPlanStatus, d.UpdatedAt = x.plan.ID, status, now
		switch {
		case status == engine.PlanSuccess && x.plan.Action == engine.ActionDelete:
			d.Status = engine.DeploymentDeleted
		case status == engine.PlanSuccess:
			if x.plan.Action == engine.ActionCreate || x.plan.Action == engine.ActionUpdate {
				d.Spec = x.plan.Spec
			}
			d.Status = engine.DeploymentRunning
		case x.plan.Action == engine.ActionDelete:
			d.Status = engine.DeploymentFailed
		case len(instances) > 0:
			d.Status = engine.DeploymentRunning
		default:
			d.Status = engine.DeploymentFailed
		}
		err = s.Multi(ctx,
			engine.OpCreateSequential(engine.PlanHistoryEntryPath(x.depID, "plan-"), x.plan),
			engine.OpDelete(engine.PendingPlanPath(x.depID), x.ver),
			engine.OpSet(engine.DeploymentPath(x.depID), d, dv))
		if err == nil {
			x.l.m.plans.WithLabelValues(x.plan.Action, status).Inc()
			x.log.Info("plan finished", "status", status, "instances", len(instances))
			return nil
		}
		if !errors.Is(err, engine.ErrConflict) {
			return fmt.Errorf("finish plan %s: %w", x.plan.ID, err)
		}
		// The deployment or the pending plan changed: re-read and retry.
		var remote engine.Plan
		rv, gerr := s.GetJSON(ctx, engine.PendingPlanPath(x.depID), &remote)
		if gerr != nil {
			return gerr
		}
		if remote.Leader != x.plan.Leader || remote.ID != x.plan.ID {
			return errLost
		}
		x.ver = rv
	}
	return fmt.Errorf("finish plan %s: too many concurrent writers", x.plan.ID)
}
