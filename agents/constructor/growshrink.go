package constructor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"paddock/engine"
	"paddock/engine/placement"
)

// runGrowAndShrink runs the steps of docs/architecture.md in order; each
// step knows when it applies (a new deployment has no data to migrate
// and no route to pause, a scale-in places nothing, ...).
func (x *executor) runGrowAndShrink(ctx context.Context) error {
	_, _, x.hadRoute = x.l.routes.get(x.depID)
	for _, step := range []func(context.Context) error{
		x.validate,
		x.placeNew,
		x.waitNew,
		x.recoverNew,
		x.snapshotData,
		x.migrateData,
		x.pauseRoute,
		x.finalSync,
		x.switchRoute,
		x.resumeRoute,
		x.removeOld,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// migrating: new Elasticsearch nodes take the data of the current ones
// by snapshot and restore, from a node that holds it (not when they
// take it by replication recovery).
func (x *executor) migrating() bool {
	return x.change.NeedsMigration() && !x.plan.Progress.NoSource && !x.plan.Progress.ByRecovery
}

// recoverNew makes the new Elasticsearch instances copies of the
// replication group, out of sync, and waits until they recovered from
// the primary (operation-based or a full copy, the node's choice) and
// joined in_sync: the data moves while writes go on, with no snapshot
// and no paused route. It is the default whenever the primary runs and
// stays until the switch (canRecover) unless Config.MigrateBySnapshot.
// A recovery that makes no progress for Config.RecoveryStall (or does
// not finish within StepTimeout), or that certainly cannot finish
// (recoveryDoomed), takes the new copies out of the group again and the
// plan moves the data by snapshot (the step says why).
func (x *executor) recoverNew(ctx context.Context) error {
	if !x.change.NeedsMigration() || x.plan.Progress.IsDone(StepRecover) {
		return nil
	}
	if !x.plan.Progress.ByRecovery && (x.l.cfg.MigrateBySnapshot || !x.canRecover()) {
		return nil
	}
	x.plan.Progress.ByRecovery = true
	return x.step(ctx, StepRecover, "", stepLong, func(ctx context.Context) (string, error) {
		if r, _, ok := x.l.w.replication(x.depID); ok && inSyncAll(r, x.plan.NewInstances) {
			// A leader that died in the switch wrote its routing (the new
			// copies in sync, maybe alone) before this step's end: the
			// old copies are not added back to recover.
			return fmt.Sprintf("%d new cop(ies) in sync already (term %d, primary %s)", len(esOnly(x.plan.NewInstances)), r.Term, engine.Short(r.Primary)), nil
		}
		old := append(append([]engine.PlacedInstance{}, x.change.Keep...), x.change.Retire...)
		// A copy that does not run (a lost allocator's, retiring) cannot
		// take the push; the routing is written and the replication check
		// pushes again: only an unwritten routing fails the step.
		msg, err := x.replicateErr(ctx, append(slices.Clone(old), x.plan.NewInstances...), nil)
		if msg == "" && err != nil {
			return "", err
		}
		if err != nil {
			msg += " (" + err.Error() + ")"
		}
		done, err := x.waitRecovered(ctx, x.plan.NewInstances)
		if !errors.Is(err, errRecoveryStalled) && !errors.Is(err, errRecoveryFailed) {
			return done + msg, err
		}
		// Fall back: the old copies alone again (the new ones get the
		// routing too and stop recovering), then snapshot and restore.
		back, perr := x.replicateErr(ctx, old, nil)
		if back == "" && perr != nil {
			return "", fmt.Errorf("%w; the new copies could not be taken out of the replication group: %w", err, perr)
		}
		if perr != nil {
			back += " (" + perr.Error() + ")"
		}
		x.plan.Progress.ByRecovery = false
		x.l.m.recoveryFallbacks.Inc()
		return fmt.Sprintf("%v: new copies taken out of the group%s; moving the data by snapshot and restore instead", err, back), nil
	})
}

// inSyncAll reports whether every Elasticsearch instance of ins is in
// the routing's in-sync set (false when there is none).
func inSyncAll(r engine.Replication, ins []engine.PlacedInstance) bool {
	es := esOnly(ins)
	for _, in := range es {
		if !r.IsInSync(in.ID) {
			return false
		}
	}
	return len(es) > 0
}

// errRecoveryStalled: the new copies' recovery made no progress for
// RecoveryStall, or did not finish within StepTimeout.
var errRecoveryStalled = errors.New("recovery of the new copies stalled")

// errRecoveryFailed: the new copies' recovery certainly cannot finish
// (recoveryDoomed), whatever progress it makes.
var errRecoveryFailed = errors.New("recovery of the new copies cannot finish")

// copyObs is what the leader knows of one new copy while it recovers.
type copyObs struct {
	id, zone string
	// removed: its instance znode is gone.
	removed bool
	// failed: the allocator reports its container failed (why).
	failed string
	// lost: why it does not run on a live allocator ("" when it does:
	// running but unhealthy is not lost here), in the failover's words.
	lost string
	// refused: the primary's last recovery error for it, when the copy's
	// answer was one retrying will not change (the node's view says
	// "refused").
	refused string
	// noAPI: the copy has no replication endpoints.
	noAPI bool
}

// recoveryDoomed says why the recovery of the copies cannot finish, ""
// while it may. At once: a copy removed, its container failed (the
// allocator gave up on it), a copy without the replication endpoints.
// After grace (the failover's, so a container re-created at once keeps
// recovering): a copy lost (no status, container not running, allocator
// lost), or refused by the primary's every attempt.
// since holds when each condition was first seen (updated; conditions
// that cleared are forgotten).
func recoveryDoomed(obs []copyObs, since map[string]time.Time, now time.Time, grace time.Duration) string {
	held := func(key string, on bool) (time.Duration, bool) {
		if !on {
			delete(since, key)
			return 0, false
		}
		t, ok := since[key]
		if !ok {
			since[key], t = now, now
		}
		return now.Sub(t), now.Sub(t) >= grace
	}
	for _, o := range obs {
		name := "new copy " + engine.Short(o.id) + " in " + o.zone
		switch {
		case o.removed:
			return name + " was removed (its instance is gone)"
		case o.failed != "":
			return name + ": its container failed (" + o.failed + ")"
		case o.noAPI:
			return name + " has no replication endpoints (a node version without them)"
		}
		if d, ok := held("lost:"+o.id, o.lost != ""); ok {
			return fmt.Sprintf("%s lost for %s: %s", name, d.Round(100*time.Millisecond), o.lost)
		}
		if d, ok := held("refused:"+o.id, o.refused != ""); ok {
			return fmt.Sprintf("%s refuses the primary's recovery (for %s): %s", name, d.Round(100*time.Millisecond), o.refused)
		}
	}
	return ""
}

// observeCopies gathers what the leader knows of the waiting new
// copies (refused and noAPI from the last poll of the nodes).
func (x *executor) observeCopies(waiting []engine.PlacedInstance, pv recoveryView) []copyObs {
	obs := make([]copyObs, 0, len(waiting))
	for _, in := range waiting {
		o := copyObs{id: in.ID, zone: in.Zone, refused: pv.refused[in.ID], noAPI: pv.noAPI[in.ID]}
		if _, ok := x.l.w.instanceAt(x.depID, in.ID); !ok {
			o.removed = true
		} else if st, ok := x.l.status(in.Allocator, in.ID); ok && st.State == engine.StateFailed {
			o.failed = orUnknownReason(st.Reason)
		} else if !ok || st.State != engine.StateRunning || !x.l.alive(in.Allocator) {
			// Not "running but unhealthy": a node busy taking a full copy
			// may miss its probes and still finish (the stall rule waits).
			o.lost = x.l.repl.lostReason(x.depID, in.ID)
		}
		obs = append(obs, o)
	}
	return obs
}

// recoveryPoll is how often waitRecovered reads the primary's and the
// new copies' checkpoints to see whether recovery progresses.
const recoveryPoll = 500 * time.Millisecond

// waitRecovered waits until every Elasticsearch instance of ins is in
// the routing's in-sync set (their recovery finished), woken by the
// deployment's changes. Progress is a copy joining in_sync or a
// checkpoint moving (the primary's view of a new copy, or a new copy's
// own indices); errRecoveryStalled when there is none for
// RecoveryStall, or when StepTimeout passes; errRecoveryFailed as soon
// as recoveryDoomed says a copy cannot recover.
func (x *executor) waitRecovered(ctx context.Context, ins []engine.PlacedInstance) (string, error) {
	changed, stop := x.l.w.watch(x.depID)
	defer stop()
	deadline := time.NewTimer(x.l.cfg.StepTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(recoveryPoll)
	defer poll.Stop()
	var seen, why string
	var pv recoveryView
	doomedSince := map[string]time.Time{}
	progressed := time.Now()
	for {
		r, _, _ := x.l.w.replication(x.depID)
		var waiting []string
		var waitingIns []engine.PlacedInstance
		for _, in := range esOnly(ins) {
			if !r.IsInSync(in.ID) {
				waiting = append(waiting, engine.Short(in.ID)+" in "+in.Zone)
				waitingIns = append(waitingIns, in)
			}
		}
		if len(waiting) == 0 {
			return fmt.Sprintf("%d new cop(ies) recovered from primary %s and in sync", len(esOnly(ins)), engine.Short(r.Primary)), nil
		}
		if x.cancelled() {
			return "", errCancelled
		}
		if doomed := recoveryDoomed(x.observeCopies(waitingIns, pv), doomedSince, time.Now(), x.l.cfg.FailoverGrace); doomed != "" {
			return "", fmt.Errorf("%w: %s", errRecoveryFailed, doomed)
		}
		if err := x.setWaiting(ctx, fmt.Sprintf("%d of %d new copies in sync; recovering: %s; last progress %s ago",
			len(esOnly(ins))-len(waiting), len(esOnly(ins)), strings.Join(waiting, ", "), time.Since(progressed).Round(time.Second))); err != nil {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-changed:
		case <-x.waitingDue():
			if err := x.flush(ctx); err != nil {
				return "", err
			}
		case <-poll.C:
			pv = x.recoveryProgress(ctx, r, ins)
			why = pv.why
			fp := pv.fp + fmt.Sprintf(" waiting=%d", len(waiting))
			if pv.primaryNoAPI {
				return "", fmt.Errorf("%w: the primary %s cannot recover copies (a node version without the replication endpoints)",
					errRecoveryStalled, engine.Short(r.Primary))
			}
			if fp != seen {
				seen, progressed = fp, time.Now()
			} else if time.Since(progressed) >= x.l.cfg.RecoveryStall {
				return "", fmt.Errorf("%w: no progress in %s (still recovering: %s%s)", errRecoveryStalled,
					x.l.cfg.RecoveryStall, strings.Join(waiting, ", "), why)
			}
		case <-deadline.C:
			return "", fmt.Errorf("%w: new copies not in sync after %s (still recovering: %s%s)", errRecoveryStalled,
				x.l.cfg.StepTimeout, strings.Join(waiting, ", "), why)
		}
	}
}

// recoveryView is what recoveryProgress read from the nodes.
type recoveryView struct {
	// fp changes when recovery progresses.
	fp string
	// why says what the primary last reported (errors) or which node
	// could not be read.
	why string
	// primaryNoAPI: the primary has no replication endpoints (it will
	// never recover a copy).
	primaryNoAPI bool
	// refused: the primary's error for each copy that refuses recovery.
	refused map[string]string
	// noAPI: the copies without replication endpoints.
	noAPI map[string]bool
}

// recoveryProgress reads how far the new copies of ins got: the
// primary's view of each (state, checkpoint, error, refused) and each
// copy's own indices (count, sum of max_seq_no).
func (x *executor) recoveryProgress(ctx context.Context, r engine.Replication, ins []engine.PlacedInstance) recoveryView {
	read := func(iid string) (NodeReplication, error) {
		in, ok := x.l.w.instanceAt(x.depID, iid)
		addr := ""
		if ok {
			addr = x.nodeAddr(in)
		}
		if addr == "" {
			return NodeReplication{}, fmt.Errorf("%s not running", engine.Short(iid))
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return x.l.cfg.Nodes.NodeReplication(cctx, addr)
	}
	var b strings.Builder
	var notes []string
	out := recoveryView{refused: map[string]string{}, noAPI: map[string]bool{}}
	pv, perr := read(r.Primary)
	if errors.Is(perr, errNoReplicationAPI) {
		out.primaryNoAPI = true
		return out
	}
	if perr != nil {
		notes = append(notes, "primary "+engine.Short(r.Primary)+": "+perr.Error())
	}
	for _, in := range esOnly(ins) {
		c := pv.Copies[in.ID]
		fmt.Fprintf(&b, "%s:%s/%d", in.ID, c.State, c.Checkpoint)
		if c.Error != "" {
			notes = append(notes, engine.Short(in.ID)+": "+c.Error)
		}
		if c.Refused {
			out.refused[in.ID] = c.Error
		}
		v, err := read(in.ID)
		if errors.Is(err, errNoReplicationAPI) {
			out.noAPI[in.ID] = true
		}
		if err != nil {
			notes = append(notes, err.Error())
			b.WriteString(" ? ")
			continue
		}
		var sum int64
		for _, cp := range v.Indices {
			sum += cp.MaxSeqNo
		}
		fmt.Fprintf(&b, " %d/%d ", len(v.Indices), sum)
	}
	if len(notes) > 0 {
		out.why = "; " + strings.Join(notes, "; ")
	}
	out.fp = b.String()
	return out
}

// placeNew decides where the new instances go and queues their
// assignments with the plan's record of them.
func (x *executor) placeNew(ctx context.Context) error {
	if len(x.change.Requests) == 0 {
		return nil
	}
	return x.step(ctx, StepPlace, "", stepInstant, func(ctx context.Context) (string, error) {
		if len(x.plan.NewInstances) > 0 { // resumed after recording them
			return "instances placed before the leader change: " + describePlaced(x.plan.NewInstances), x.ensureInstances(ctx, x.plan.NewInstances)
		}
		placed, err := x.place(x.change.Requests)
		if err != nil {
			return "", err
		}
		return describePlaced(placed) + " (strategy " + orDefault(x.l.config().PlacementStrategy, engine.StrategyFillAntiAffinity) + ")", nil
	})
}

// place decides new instances for reqs (counted at once in the leader's
// state, so plans placing together never share memory) and queues their
// znodes, written with the plan that records them: a new leader knows
// what to clean up, and a failed write gives the memory back.
func (x *executor) place(reqs []placement.Request) ([]engine.PlacedInstance, error) {
	now := time.Now().UTC()
	ins, allocs, err := x.l.w.reserve(x.depID, reqs, x.l.config().PlacementStrategy, func(p placement.Placement) engine.Instance {
		return engine.Instance{ID: engine.NewID(), DeploymentID: x.depID, Kind: p.Kind, Version: x.plan.Spec.Version,
			SizeMB: p.SizeMB, Zone: p.Zone, PlanID: x.plan.ID, CreatedAt: now}
	})
	if err != nil {
		return nil, err
	}
	placed := make([]engine.PlacedInstance, len(ins))
	for i, in := range ins {
		alloc := allocs[i]
		placed[i] = engine.PlacedInstance{ID: in.ID, Kind: in.Kind, Allocator: alloc, Zone: in.Zone, SizeMB: in.SizeMB, Version: in.Version}
		x.reserved = append(x.reserved, reservation{alloc: alloc, id: in.ID})
		op := engine.OpCreate(engine.InstancePath(alloc, in.ID), in)
		x.queue(effect{build: func() (*engine.Op, func(engine.OpResult)) {
			return &op, func(engine.OpResult) { x.l.w.instanceWritten(alloc, in.ID, &in) }
		}})
	}
	x.plan.NewInstances = append(x.plan.NewInstances, placed...)
	x.l.m.placements.Add(float64(len(placed)))
	return placed, nil
}

// waitNew waits for the new instances to run healthy.
func (x *executor) waitNew(ctx context.Context) error {
	if len(x.change.Requests) == 0 {
		return nil
	}
	return x.step(ctx, StepWait, "", stepLong, func(ctx context.Context) (string, error) {
		return x.waitHealthy(ctx, x.plan.NewInstances, nil)
	})
}

// snapshotData snapshots a node holding the data or, when none is
// healthy (its allocator is lost), finds the newest snapshot to recover.
func (x *executor) snapshotData(ctx context.Context) error {
	if !x.change.NeedsMigration() || x.plan.Progress.ByRecovery {
		return nil
	}
	return x.step(ctx, StepSnapshot, "", stepLong, func(ctx context.Context) (string, error) {
		src := x.source()
		if src != "" {
			x.plan.Progress.Source = src
			return "snapshot " + x.snapName("initial") + " of " + src, x.takeSnapshot(ctx, src, x.snapName("initial"))
		}
		x.plan.Progress.NoSource = true
		// The data is on no running node (its allocator is lost): recover
		// the newest snapshot, the platform schedule's when it is newer
		// than the last plan (which wrote the plans' own), else the
		// plans' repository's.
		if msg, ok := x.recoverFromPlatform(ctx, x.lastPlanEnd(ctx)); ok {
			return msg, nil
		}
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
				x.plan.Progress.Recover = latest
				return "no healthy node holds the data (lost allocator): recovering the newest snapshot " + latest +
					"; writes made after it are lost", nil
			}
			break
		}
		if msg, ok := x.recoverFromPlatform(ctx, time.Time{}); ok {
			return msg, nil
		}
		return "no healthy node holds the data and the repository has no snapshot: the new nodes start empty", nil
	})
}

// migrateData restores the snapshot into the new nodes.
func (x *executor) migrateData(ctx context.Context) error {
	if !x.migrating() && x.plan.Progress.Recover == "" {
		return nil
	}
	snap := x.snapName("initial")
	if r := x.plan.Progress.Recover; r != "" {
		snap = r
	}
	return x.step(ctx, StepMigrate, "", stepLong, func(ctx context.Context) (string, error) {
		if strings.HasPrefix(snap, platformRecoverPrefix) {
			return fmt.Sprintf("restored %s into %d new node(s)", strings.TrimPrefix(snap, platformRecoverPrefix), len(esOnly(x.plan.NewInstances))),
				x.restorePlatform(ctx, snap, x.plan.NewInstances)
		}
		return fmt.Sprintf("restored %s into %d new node(s)", snap, len(esOnly(x.plan.NewInstances))),
			x.restoreAll(ctx, snap, x.plan.NewInstances)
	})
}

// pauseRoute pauses a serving route before the final sync, and lets
// proxies see it and in-flight writes finish.
func (x *executor) pauseRoute(ctx context.Context) error {
	if !x.hadRoute || !x.migrating() {
		return nil
	}
	return x.step(ctx, StepPause, "", stepInstant, func(ctx context.Context) (string, error) {
		x.queueRouteState(engine.RoutePaused)
		x.plan.Progress.Paused = true
		if err := x.flush(ctx); err != nil {
			return "", err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(x.l.cfg.PauseSettle):
		}
		return fmt.Sprintf("route paused; settled %s", x.l.cfg.PauseSettle), nil
	})
}

// finalSync restores what was written since the first snapshot.
func (x *executor) finalSync(ctx context.Context) error {
	if !x.hadRoute || !x.migrating() {
		return nil
	}
	return x.step(ctx, StepFinalSync, "", stepLong, func(ctx context.Context) (string, error) {
		src := x.plan.Progress.Source
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
	})
}

// switchRoute points the route at the final topology (queued: written
// with the next record; a new deployment's with its end).
func (x *executor) switchRoute(ctx context.Context) error {
	final := x.finalInstances()
	backends := x.l.backends(final)
	cur, _, hasRoute := x.l.routes.get(x.depID)
	if hasRoute && sameBackends(cur.Backends, backends) && !x.plan.Progress.Paused {
		return nil
	}
	return x.step(ctx, StepSwitch, "", stepInstant, func(ctx context.Context) (string, error) {
		var migrated []engine.PlacedInstance
		if x.migrating() || x.plan.Progress.Recover != "" {
			migrated = x.plan.NewInstances
		}
		peers := x.replicate(ctx, final, migrated)
		state := engine.RouteLive
		if x.plan.Progress.Paused {
			state = engine.RoutePaused
		}
		x.queueRoute(backends, state)
		x.plan.Progress.Switched = true
		return fmt.Sprintf("route to %d node(s)%s", len(backends), peers), nil
	})
}

// resumeRoute makes a paused route live again.
func (x *executor) resumeRoute(ctx context.Context) error {
	if !x.plan.Progress.Paused {
		return nil
	}
	return x.step(ctx, StepResumeRt, "", stepInstant, func(context.Context) (string, error) {
		x.queueRouteState(engine.RouteLive)
		return "route live", nil
	})
}

// removeOld removes the instances the new topology replaces; the route
// serves the new ones already, so a failure is retried, not rolled back.
func (x *executor) removeOld(ctx context.Context) error {
	if len(x.change.Retire) == 0 {
		return nil
	}
	// The switch is written first, whatever happens next.
	if err := x.flush(ctx); err != nil {
		return err
	}
	err := x.step(ctx, StepRemoveOld, "", stepLong, func(ctx context.Context) (string, error) {
		return describePlaced(x.change.Retire), x.removeInstances(ctx, x.change.Retire)
	})
	if err == nil || errors.Is(err, errLost) || ctx.Err() != nil {
		return err
	}
	if errors.Is(err, errCancelled) {
		return x.removeInstances(ctx, x.change.Retire)
	}
	_, rerr := backoff.Retry(ctx, func() (struct{}, error) {
		err := x.removeInstances(ctx, x.change.Retire)
		if errors.Is(err, errLost) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(backoff.NewConstantBackOff(time.Second)), backoff.WithMaxTries(10))
	if rerr != nil {
		return fmt.Errorf("old instances could not be removed after the switch: %w", err)
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
