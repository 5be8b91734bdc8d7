package constructor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"

	"paddock/engine"
)

// Step names of the plan activity.
const (
	StepValidate  = "validate"
	StepResume    = "resume plan"
	StepPlace     = "place"
	StepWait      = "wait until running and healthy"
	StepSnapshot  = "snapshot"
	StepMigrate   = "migrate data"
	StepRecover   = "recover new copies"
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

// errLost: this constructor no longer leads, or the plan is gone; stop
// without touching anything.
var errLost = errors.New("the plan is now run by another constructor")

// errCancelled: the operator asked to cancel.
var errCancelled = errors.New("cancelled on request")

// errRestart: the plan must start over from its znode.
var errRestart = errors.New("the plan's records changed while it started: starting over")

// executor runs one plan. Its records (the plan's steps and progress)
// are written behind: a step that completes at once is recorded with its
// effects (instance assignments, a route) and both go out in the next
// write, one Multi fenced by the leader's election znode and
// compare-and-set on the pending plan; a step that waits or calls nodes
// writes its start (and everything recorded before it) first. A create
// is two writes: the assignments with the steps up to "wait until
// running and healthy", then the route with the plan's end.
type executor struct {
	l   *leader
	log *slog.Logger

	depID  string
	plan   engine.Plan
	ver    engine.Version
	dep    engine.Deployment
	depVer engine.Version
	change Change

	// Not yet written: plan changes, effects, the route, the
	// deployment's mark.
	dirty   bool
	effects []effect
	route   *routeIntent
	depMark bool
	// hadRoute: the deployment had a route when the plan started.
	hadRoute bool
	// reserved are placements counted in the world and not yet written.
	reserved []reservation
	// wroteAt is when the plan was last written; waitingUnwritten says
	// the running step's waiting text changed since (setWaiting).
	wroteAt          time.Time
	waitingUnwritten bool
	// cancelIgnored: a cancel came after the handover (logged once).
	cancelIgnored bool
}

// waitingEvery is how long a changed waiting text may stay unwritten:
// an instance acknowledged within it costs the plan no write of its own.
const waitingEvery = 2 * time.Second

// effect is a write queued with the plan's records.
type effect struct {
	// build returns the op (nil: nothing to write any more) and what to
	// do once it is written.
	build func() (*engine.Op, func(engine.OpResult))
	// refresh re-reads what the op depends on after it lost a race
	// (nil: a failure of the op fails the write).
	refresh func(ctx context.Context) error
}

// execute runs the pending plan of a deployment to its end; it returns
// the plan's id when the plan finished (history written).
func (l *leader) execute(ctx context.Context, depID string) string {
	ctx = WithDeployment(ctx, depID) // node calls authenticate as the platform
	for attempt := 0; ; attempt++ {
		x := &executor{l: l, depID: depID, log: l.log.With("deployment", depID)}
		start := time.Now()
		finished, err := x.run(ctx)
		l.w.release(x.reserved)
		if errors.Is(err, errRestart) && attempt < 5 && ctx.Err() == nil {
			x.log.Info("plan starts over", "plan", x.plan.ID, "err", err)
			continue
		}
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, errLost) {
				x.log.Warn("plan left to the next leader", "plan", x.plan.ID, "err", err)
				return ""
			}
			x.log.Error("plan failed", "plan", x.plan.ID, "err", err)
		}
		if !finished {
			return ""
		}
		l.m.planSeconds.WithLabelValues(x.plan.Action).Observe(time.Since(start).Seconds())
		return x.plan.ID
	}
}

// load takes the plan and the deployment from the leader's state (read
// from ZooKeeper when the state lacks them); a stale copy shows as a
// conflict at the first write.
func (x *executor) load(ctx context.Context) (bool, error) {
	p, ver, ok := x.l.w.pending(x.depID)
	d, dver, dok := x.l.w.deployment(x.depID)
	if !ok || !dok {
		var err error
		if ver, err = x.l.s.GetJSON(ctx, engine.PendingPlanPath(x.depID), &p); err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				return false, nil // finished meanwhile
			}
			return false, err
		}
		if dver, err = x.l.s.GetJSON(ctx, engine.DeploymentPath(x.depID), &d); err != nil {
			return false, fmt.Errorf("read deployment %s: %w", x.depID, err)
		}
	}
	x.plan, x.ver, x.dep, x.depVer = p, ver, d, dver
	if x.dep.ID == "" {
		x.dep.ID = x.depID
	}
	return p.Status == engine.PlanPending || p.Status == engine.PlanRunning, nil
}

func (x *executor) run(ctx context.Context) (bool, error) {
	if ok, err := x.load(ctx); !ok || err != nil {
		return false, err
	}
	previous := x.plan.Leader
	resumed := x.plan.Status == engine.PlanRunning
	x.plan.Leader, x.plan.Status = x.l.cfg.ID, engine.PlanRunning
	if x.plan.Steps == nil {
		x.plan.Steps = []engine.PlanStep{}
	}
	x.dirty = true
	x.log = x.log.With("plan", x.plan.ID, "action", x.plan.Action)
	x.change = ComputeChange(x.dep, x.plan)
	if resumed {
		if err := x.resume(ctx, previous); err != nil {
			return x.fail(ctx, err)
		}
	} else {
		x.depMark = x.needsMark()
	}
	x.log.Debug("running plan", "change", x.change.Describe, "resumed", resumed)
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
	if err := x.finish(ctx, engine.PlanSuccess, x.finalInstances(), ""); err != nil {
		return false, err
	}
	return true, nil
}

// resume marks the steps a dead leader left running as interrupted and
// records who took over, at once (the plan is claimed before anything
// else happens).
func (x *executor) resume(ctx context.Context, previous string) error {
	next := "the start"
	for _, st := range x.plan.Steps {
		if st.Status == engine.PlanSuccess {
			next = "the step after " + st.Name
		}
	}
	for i := range x.plan.Steps {
		if x.plan.Steps[i].Status == engine.PlanRunning {
			end := time.Now().UTC()
			x.plan.Steps[i].Status, x.plan.Steps[i].Ended = engine.PlanError, &end
			x.plan.Steps[i].Message = "interrupted: its constructor stopped leading"
		}
	}
	msg := fmt.Sprintf("constructor %s took over from %s and resumes at %s", x.l.cfg.ID, orUnknown(previous), next)
	if x.cancelled() {
		msg = fmt.Sprintf("constructor %s took over from %s; the plan was cancelled: rolling back", x.l.cfg.ID, orUnknown(previous))
	}
	x.log.Warn("resuming a plan left half-done", "previous_leader", previous)
	if err := x.step(ctx, StepResume, fmt.Sprintf("resume:%d", len(x.plan.Steps)), stepInstant, func(context.Context) (string, error) { return msg, nil }); err != nil {
		return err
	}
	return x.flush(ctx)
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

// stepKind says when a step's start is written.
type stepKind int

const (
	// stepInstant: done within one write; started and ended are
	// recorded together and written with the next write.
	stepInstant stepKind = iota
	// stepLong: waits or calls nodes; its start (and everything recorded
	// before it) is written before it runs.
	stepLong
)

// step runs fn as a logged step; done steps of a resumed plan are
// skipped. fn may queue effects (written with the step's end) and flush.
func (x *executor) step(ctx context.Context, name, key string, kind stepKind, fn func(ctx context.Context) (string, error)) error {
	if key == "" {
		key = name
	}
	if x.plan.Progress.IsDone(key) {
		return nil
	}
	// A resumed plan records who took over even when it was cancelled
	// meanwhile (the rollback follows).
	if name != StepRollback && name != StepCompleted && name != StepResume && x.cancelled() {
		return errCancelled
	}
	started := time.Now().UTC()
	x.plan.Steps = append(x.plan.Steps, engine.PlanStep{Name: name, Status: engine.PlanRunning, Started: started, AppliedBy: x.l.cfg.ID})
	x.dirty = true
	if kind == stepLong {
		deadline := started.Add(x.l.cfg.StepDeadline)
		x.plan.Steps[len(x.plan.Steps)-1].Deadline = &deadline
		x.l.inflight.start(x.depID, x.plan.ID, name, deadline)
		defer x.l.inflight.end(x.depID)
		if err := x.flush(ctx); err != nil {
			return err
		}
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
	x.plan.Steps[i].Waiting = ""
	if err != nil {
		x.plan.Steps[i].Status = engine.PlanError
		x.plan.Steps[i].Message = strings.TrimPrefix(msg+": "+err.Error(), ": ")
	} else {
		x.plan.Steps[i].Status = engine.PlanSuccess
		x.plan.Progress.MarkDone(key)
	}
	x.dirty = true
	x.l.m.steps.WithLabelValues(name, x.plan.Steps[i].Status).Inc()
	return err
}

// queue adds an effect written with the plan's next write.
func (x *executor) queue(e effect) {
	x.effects = append(x.effects, e)
}

// queueRoute queues the route write that makes backends and state.
// Route writes queued before the next write merge into one (a switch to
// new backends and the resume that follows are one write).
func (x *executor) queueRoute(backends []engine.Backend, state string) {
	x.route = &routeIntent{backends: backends, setBackends: true, state: state}
}

// queueRouteState queues a pause or resume of the route.
func (x *executor) queueRouteState(state string) {
	if x.route == nil {
		x.route = &routeIntent{}
	}
	x.route.state = state
}

// routeIntent is the route a plan's next write makes.
type routeIntent struct {
	backends    []engine.Backend
	setBackends bool
	state       string
}

func (x *executor) routeEffect() effect {
	want := *x.route
	return effect{
		build: func() (*engine.Op, func(engine.OpResult)) {
			var op *engine.Op
			var r engine.Route
			if want.setBackends {
				op, r = x.l.routes.routeOp(x.depID, want.backends, want.state)
			} else {
				op, r = x.l.routes.stateOp(x.depID, want.state)
			}
			if op == nil {
				return nil, nil
			}
			return op, func(res engine.OpResult) {
				x.l.routes.set(x.depID, r, res.Version)
				x.l.m.routeWrites.Inc()
			}
		},
		refresh: func(ctx context.Context) error { return x.l.routes.refresh(ctx, x.l.s, x.depID) },
	}
}

// cancelled reports a cancellation request (from the leader's state)
// that can be honoured: not once the routing made one of this plan's new
// instances primary (handedOver).
func (x *executor) cancelled() bool {
	if !x.plan.CancelRequested {
		if p, _, ok := x.l.w.pending(x.depID); ok && p.ID == x.plan.ID && p.CancelRequested {
			x.plan.CancelRequested = true
		}
	}
	if x.plan.CancelRequested && x.handedOver() {
		if !x.cancelIgnored {
			x.cancelIgnored = true
			x.log.Warn("cancel not honoured: the primary is a new instance already, the old copies are out of sync; the plan goes on")
		}
		return false
	}
	return x.plan.CancelRequested
}

// handedOver reports whether the deployment's routing made one of this
// plan's new instances primary in place of an old copy (a switch
// written, perhaps by a leader that died before recording it, or a
// failover to a recovered copy): from then on the old copies are out of
// sync, and rolling back to them would lose the writes made since. A
// deployment without Elasticsearch instances before (a create) has no
// old copies to lose.
func (x *executor) handedOver() bool {
	if len(esOnly(x.dep.Instances)) == 0 {
		return false
	}
	r, _, ok := x.l.w.replication(x.depID)
	return ok && slices.ContainsFunc(x.plan.NewInstances, func(in engine.PlacedInstance) bool { return in.ID == r.Primary })
}

// flush writes the plan with what was recorded since the last write.
func (x *executor) flush(ctx context.Context) error {
	if !x.dirty && len(x.effects) == 0 && x.route == nil && !x.depMark {
		return nil
	}
	return x.write(ctx, nil)
}

// planOps are the plan-specific operations of a write: setting the
// pending plan, or (finish) writing it to the history and deleting it.
type planOps func() []engine.Op

// write sends the plan's records, the deployment's mark and the queued
// effects in one fenced Multi, retrying lost races with backoff: a
// cancellation written meanwhile is merged, a deployment changed
// meanwhile re-read, a route re-read. fin, when set, replaces setting
// the pending plan (finish). Nothing is applied when it fails.
func (x *executor) write(ctx context.Context, fin *finishing) error {
	effects := x.effects
	if x.route != nil {
		effects = append(effects[:len(effects):len(effects)], x.routeEffect())
	}
	attempt := func() (struct{}, error) {
		ops := x.l.fenced()
		if fin != nil {
			ops = append(ops, engine.OpDelete(engine.PendingPlanPath(x.depID), x.ver))
		} else {
			ops = append(ops, engine.OpSet(engine.PendingPlanPath(x.depID), x.plan, x.ver))
		}
		depAt, histAt := -1, -1
		var dep engine.Deployment
		switch {
		case fin != nil:
			dep = fin.deployment(x.dep)
			ops = append(ops, engine.OpSet(engine.DeploymentPath(x.depID), dep, x.depVer))
			depAt = len(ops) - 1
			ops = append(ops, engine.OpCreateSequential(engine.PlanHistoryEntryPath(x.depID, "plan-"), x.plan))
			histAt = len(ops) - 1
		case x.depMark:
			dep = x.markedDeployment(x.dep)
			ops = append(ops, engine.OpSet(engine.DeploymentPath(x.depID), dep, x.depVer))
			depAt = len(ops) - 1
		}
		type after struct {
			at   int
			done func(engine.OpResult)
			eff  int
		}
		var afters []after
		for i, e := range effects {
			op, done := e.build()
			if op == nil {
				continue
			}
			ops = append(ops, *op)
			afters = append(afters, after{at: len(ops) - 1, done: done, eff: i})
		}
		res, err := x.l.s.MultiResults(ctx, ops...)
		if err == nil {
			x.written(res[1].Version)
			if depAt >= 0 {
				x.dep, x.depVer, x.depMark = dep, res[depAt].Version, false
			}
			for _, a := range afters {
				if a.done != nil {
					a.done(res[a.at])
				}
			}
			return struct{}{}, nil
		}
		i, indexed := engine.FailedOp(err)
		switch {
		case ctx.Err() != nil:
			return struct{}{}, backoff.Permanent(ctx.Err())
		case indexed && i == 0:
			return struct{}{}, backoff.Permanent(fmt.Errorf("%w: this constructor no longer leads (%v)", errLost, err))
		case indexed && i == 1:
			return struct{}{}, x.planRace(ctx, err)
		case indexed && i == depAt && errors.Is(err, engine.ErrConflict):
			var d engine.Deployment
			v, rerr := x.l.s.GetJSON(ctx, engine.DeploymentPath(x.depID), &d)
			if rerr != nil {
				return struct{}{}, rerr
			}
			if !slices.Equal(d.Instances, x.dep.Instances) {
				return struct{}{}, backoff.Permanent(errRestart)
			}
			x.dep, x.depVer = d, v
			return struct{}{}, err
		case indexed && i == histAt && errors.Is(err, engine.ErrNotFound):
			if eerr := x.l.s.EnsurePath(ctx, engine.PlanHistoryPath(x.depID)); eerr != nil {
				return struct{}{}, eerr
			}
			return struct{}{}, err
		case indexed:
			for _, a := range afters {
				if a.at == i && effects[a.eff].refresh != nil {
					if rerr := effects[a.eff].refresh(ctx); rerr != nil {
						return struct{}{}, rerr
					}
					return struct{}{}, err
				}
			}
			return struct{}{}, backoff.Permanent(err)
		case errors.Is(err, engine.ErrUnavailable):
			// The connection dropped: the write may have been applied.
			applied, rerr := x.appliedAfterAll(ctx, fin != nil)
			if rerr != nil {
				return struct{}{}, err
			}
			if applied {
				x.written(x.ver)
				if depAt >= 0 {
					var d engine.Deployment
					if v, rerr := x.l.s.GetJSON(ctx, engine.DeploymentPath(x.depID), &d); rerr == nil {
						x.dep, x.depVer, x.depMark = d, v, false
					}
				}
				for _, a := range afters {
					if e := effects[a.eff]; e.refresh != nil {
						_ = e.refresh(ctx)
					} else if a.done != nil {
						a.done(engine.OpResult{})
					}
				}
				return struct{}{}, nil
			}
			return struct{}{}, err
		}
		return struct{}{}, backoff.Permanent(err)
	}
	_, err := backoff.Retry(ctx, attempt, backoff.WithBackOff(writeBackOff()), backoff.WithMaxElapsedTime(time.Minute))
	if err != nil {
		// Nothing of this write was applied: its reservations go back.
		x.effects, x.route = nil, nil
		x.dropUnwritten()
		if errors.Is(err, errLost) || errors.Is(err, errRestart) || ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("write plan %s: %w", x.plan.ID, err)
	}
	return nil
}

func writeBackOff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 20 * time.Millisecond
	b.MaxInterval = 2 * time.Second
	return b
}

// dropUnwritten gives back the placements not written and forgets them
// in the plan.
func (x *executor) dropUnwritten() {
	if len(x.reserved) == 0 {
		return
	}
	gone := map[string]bool{}
	for _, r := range x.reserved {
		gone[r.id] = true
	}
	x.plan.NewInstances = slices.DeleteFunc(x.plan.NewInstances, func(p engine.PlacedInstance) bool { return gone[p.ID] })
	x.l.w.release(x.reserved)
	x.reserved = nil
}

// written records a successful write: nothing is pending any more.
func (x *executor) written(ver engine.Version) {
	x.ver, x.dirty, x.effects, x.route, x.reserved = ver, false, nil, nil, nil
	x.wroteAt, x.waitingUnwritten = time.Now(), false
}

// planRace handles a lost compare-and-set on the pending plan: the
// service layer may set cancel_requested meanwhile (merged, retried);
// a plan gone or replaced is lost.
func (x *executor) planRace(ctx context.Context, err error) error {
	if errors.Is(err, engine.ErrNotFound) {
		return backoff.Permanent(fmt.Errorf("%w: the pending plan is gone", errLost))
	}
	if !errors.Is(err, engine.ErrConflict) {
		return backoff.Permanent(err)
	}
	var remote engine.Plan
	rv, gerr := x.l.s.GetJSON(ctx, engine.PendingPlanPath(x.depID), &remote)
	if errors.Is(gerr, engine.ErrNotFound) {
		return backoff.Permanent(fmt.Errorf("%w: the pending plan is gone", errLost))
	}
	if gerr != nil {
		return gerr
	}
	if remote.ID != x.plan.ID {
		return backoff.Permanent(fmt.Errorf("%w: plan %s replaced by %s", errLost, x.plan.ID, remote.ID))
	}
	x.plan.CancelRequested = x.plan.CancelRequested || remote.CancelRequested
	x.ver = rv
	return err
}

// appliedAfterAll reads the pending plan back after a write whose
// outcome is unknown: it was applied when the znode holds what was
// written (or, finishing, is gone with this plan in the history).
func (x *executor) appliedAfterAll(ctx context.Context, finishing bool) (bool, error) {
	var remote engine.Plan
	rv, err := x.l.s.GetJSON(ctx, engine.PendingPlanPath(x.depID), &remote)
	if finishing {
		if errors.Is(err, engine.ErrNotFound) {
			return true, nil
		}
		return false, err
	}
	if err != nil {
		return false, err
	}
	mine := x.plan
	mine.CancelRequested = remote.CancelRequested
	a, _ := json.Marshal(mine)
	b, _ := json.Marshal(remote)
	if bytes.Equal(a, b) {
		x.ver = rv
		x.plan.CancelRequested = remote.CancelRequested
		return true, nil
	}
	return false, nil
}

// needsMark says the deployment does not show this plan yet. The
// service layer records a create's or an update's plan on the
// deployment (its id, pending) in the Multi that asks for it; then the
// pending znode says the plan runs, and the deployment is written only
// when the plan ends (a write and, for every watcher, a read saved).
func (x *executor) needsMark() bool {
	d := x.dep
	shown := d.LastPlanID == x.plan.ID && (d.LastPlanStatus == engine.PlanPending || d.LastPlanStatus == engine.PlanRunning)
	return !shown || x.markedDeployment(d).Status != d.Status
}

// markedDeployment is the deployment with this plan's start recorded.
func (x *executor) markedDeployment(d engine.Deployment) engine.Deployment {
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
	return d
}

func (x *executor) validate(ctx context.Context) error {
	return x.step(ctx, StepValidate, "", stepInstant, func(context.Context) (string, error) {
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

func describePlaced(ins []engine.PlacedInstance) string {
	parts := make([]string, len(ins))
	for i, p := range ins {
		parts[i] = fmt.Sprintf("%s %s on %s (%s)", p.Kind, engine.FormatSize(p.SizeMB), p.Allocator, p.Zone)
	}
	return strings.Join(parts, ", ")
}

// waitHealthy waits until every instance runs healthy (at least at
// generation gen for restarts), woken by the deployment's changes.
func (x *executor) waitHealthy(ctx context.Context, ins []engine.PlacedInstance, gen map[string]int) (string, error) {
	changed, stop := x.l.w.watch(x.depID)
	defer stop()
	deadline := time.NewTimer(x.l.cfg.HealthyTimeout)
	defer deadline.Stop()
	for {
		var waiting []string
		for _, in := range ins {
			st, ok := x.l.status(in.Allocator, in.ID)
			switch {
			case !ok:
				waiting = append(waiting, fmt.Sprintf("%s on %s (no status yet)", in.ID[:min(8, len(in.ID))], in.Allocator))
			case st.State == engine.StateFailed:
				return "", fmt.Errorf("instance %s on allocator %s failed: %s (see the allocator's logs)", in.ID, in.Allocator, st.Reason)
			case st.State != engine.StateRunning || !st.Healthy || st.Generation < gen[in.ID]:
				waiting = append(waiting, fmt.Sprintf("%s on %s (%s%s)", in.ID[:min(8, len(in.ID))], in.Allocator, st.State, unhealthy(st)))
			}
		}
		if len(waiting) == 0 {
			return fmt.Sprintf("%d instance(s) running and healthy", len(ins)), nil
		}
		late, err := x.waitTurn(ctx, fmt.Sprintf("%d of %d instances healthy; waiting for instance %s", len(ins)-len(waiting), len(ins),
			strings.Join(waiting, "; instance ")), changed, deadline.C)
		if err != nil {
			return "", err
		}
		if late {
			return "", fmt.Errorf("not healthy after %s: %s: check the allocators (paddock allocator list) and their logs", x.l.cfg.HealthyTimeout, strings.Join(waiting, "; "))
		}
	}
}

// waitTurn is one turn of a step's wait: it records what the step waits
// for (setWaiting) and blocks until the deployment changes, the waiting
// text is due (written), or deadline fires (late). A cancelled plan
// ends the wait with errCancelled.
func (x *executor) waitTurn(ctx context.Context, waiting string, changed <-chan struct{}, deadline <-chan time.Time) (late bool, err error) {
	if x.cancelled() {
		return false, errCancelled
	}
	if err := x.setWaiting(ctx, waiting); err != nil {
		return false, err
	}
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-changed:
	case <-x.waitingDue():
		return false, x.flush(ctx)
	case <-deadline:
		return true, nil
	}
	return false, nil
}

// unhealthy adds ", not healthy" to a running instance that is not.
func unhealthy(st engine.InstanceStatus) string {
	if st.State == engine.StateRunning && !st.Healthy {
		return ", not healthy"
	}
	return ""
}

// setWaiting records what the running step waits for now. The text is
// written at once when the plan's last write is older than
// waitingEvery, else with the next write or when waitingDue fires (the
// waiting loops select on it): a step that waits less than that, as
// most do, writes no text of its own, and the activity still follows a
// longer wait within waitingEvery.
func (x *executor) setWaiting(ctx context.Context, waiting string) error {
	i := len(x.plan.Steps) - 1
	if i < 0 || x.plan.Steps[i].Ended != nil || x.plan.Steps[i].Waiting == waiting {
		return nil
	}
	x.plan.Steps[i].Waiting = waiting
	x.l.inflight.wait(x.depID, waiting)
	x.dirty = true
	if time.Since(x.wroteAt) < waitingEvery {
		x.waitingUnwritten = true
		return nil
	}
	return x.flush(ctx)
}

// waitingDue fires when an unwritten waiting text is due (nil: none is).
func (x *executor) waitingDue() <-chan time.Time {
	if !x.waitingUnwritten {
		return nil
	}
	return time.After(time.Until(x.wroteAt.Add(waitingEvery)))
}

// address of a healthy instance, or "".
func (x *executor) address(in engine.PlacedInstance) string { return x.l.address(in) }

// nodeAddr is where the NodeAPI calls a healthy instance (leader.nodeAddr).
func (x *executor) nodeAddr(in engine.PlacedInstance) string { return x.l.nodeAddr(in) }

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

// restoreAll copies snapshot snap into every new ES node.
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

// removeInstances deletes instance znodes (missing ones are fine): one
// fenced Multi, or one write each when some are already gone.
func (x *executor) removeInstances(ctx context.Context, ins []engine.PlacedInstance) error {
	if len(ins) == 0 {
		return nil
	}
	ops := make([]engine.Op, 0, len(ins))
	for _, in := range ins {
		ops = append(ops, engine.OpDelete(engine.InstancePath(in.Allocator, in.ID), engine.AnyVersion))
	}
	err := x.l.s.Multi(ctx, x.l.fenced(ops...)...)
	if err == nil {
		for _, in := range ins {
			x.l.w.instanceWritten(in.Allocator, in.ID, nil)
		}
		return nil
	}
	if i, ok := engine.FailedOp(err); ok && i == 0 {
		return fmt.Errorf("%w: %v", errLost, err)
	}
	if !errors.Is(err, engine.ErrNotFound) {
		return fmt.Errorf("remove instances: %w", err)
	}
	for i, op := range ops {
		err := x.l.s.Multi(ctx, x.l.fenced(op)...)
		if i, ok := engine.FailedOp(err); ok && i == 0 {
			return fmt.Errorf("%w: %v", errLost, err)
		}
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return fmt.Errorf("remove instance %s: %w", op.Path(), err)
		}
		x.l.w.instanceWritten(ins[i].Allocator, ins[i].ID, nil)
	}
	return nil
}

// ensureInstances re-creates recorded instance znodes missing after a
// leader change between recording and writing them (one fenced write
// each: those that exist are fine).
func (x *executor) ensureInstances(ctx context.Context, ins []engine.PlacedInstance) error {
	for _, p := range ins {
		in := engine.Instance{ID: p.ID, DeploymentID: x.depID, Kind: p.Kind, Version: p.Version, SizeMB: p.SizeMB,
			Zone: p.Zone, PlanID: x.plan.ID, CreatedAt: time.Now().UTC()}
		path := engine.InstancePath(p.Allocator, p.ID)
		err := x.l.s.Multi(ctx, x.l.fenced(engine.OpCreate(path, in))...)
		if i, ok := engine.FailedOp(err); ok && i == 0 {
			return fmt.Errorf("%w: %v", errLost, err)
		}
		if errors.Is(err, engine.ErrExists) {
			if _, err = x.l.s.GetJSON(ctx, path, &in); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		x.l.w.instanceWritten(p.Allocator, p.ID, &in)
	}
	return nil
}

func (x *executor) runDelete(ctx context.Context) error {
	if err := x.validate(ctx); err != nil {
		return err
	}
	if err := x.step(ctx, StepRemoveRt, "", stepLong, func(ctx context.Context) (string, error) {
		_, ver, ok := x.l.routes.get(x.depID)
		if !ok {
			return "no route", nil
		}
		err := x.l.s.Multi(ctx, x.l.fenced(engine.OpDelete(engine.RoutePath(x.depID), ver))...)
		if i, ok := engine.FailedOp(err); ok && i == 0 {
			return "", fmt.Errorf("%w: %v", errLost, err)
		}
		if err == nil || errors.Is(err, engine.ErrNotFound) {
			x.l.routes.drop(x.depID)
			return "route removed", nil
		}
		if errors.Is(err, engine.ErrConflict) {
			_ = x.l.routes.refresh(ctx, x.l.s, x.depID)
		}
		return "", err
	}); err != nil {
		return err
	}
	// Every instance znode of the deployment, including strays of
	// interrupted plans.
	all := append([]engine.PlacedInstance{}, x.dep.Instances...)
	for key, in := range x.l.w.strays(x.depID) {
		alloc := strings.SplitN(key, "/", 2)[0]
		all = append(all, engine.PlacedInstance{ID: in.ID, Allocator: alloc, Kind: in.Kind, Zone: in.Zone})
	}
	return x.step(ctx, StepRemoveOld, "", stepLong, func(ctx context.Context) (string, error) {
		return fmt.Sprintf("%d instance(s) removed", len(x.dep.Instances)), x.removeInstances(ctx, all)
	})
}

func (x *executor) runRestart(ctx context.Context) error {
	if err := x.validate(ctx); err != nil {
		return err
	}
	// One instance at a time: the others keep serving. The primary's
	// node goes last, so the primary is handed over once.
	order := slices.Clone(x.change.Restart)
	if r, _, ok := x.l.w.replication(x.depID); ok {
		if i := slices.IndexFunc(order, func(in engine.PlacedInstance) bool { return in.ID == r.Primary }); i >= 0 {
			primary := order[i]
			order = append(slices.Delete(order, i, i+1), primary)
		}
	}
	for _, in := range order {
		if err := x.step(ctx, StepRestart, "restart:"+in.ID, stepLong, func(ctx context.Context) (string, error) {
			g, asked := x.plan.Progress.Generation[in.ID]
			var handedOver string
			if !asked {
				var err error
				if handedOver, err = x.handOverBeforeRestart(ctx, in); err != nil {
					return "", err
				}
				var cur engine.Instance
				p := engine.InstancePath(in.Allocator, in.ID)
				v, err := x.l.s.GetJSON(ctx, p, &cur)
				if err != nil {
					return "", err
				}
				cur.Generation++
				if err := x.l.s.Multi(ctx, x.l.fenced(engine.OpSet(p, cur, v))...); err != nil {
					if i, ok := engine.FailedOp(err); ok && i == 0 {
						return "", fmt.Errorf("%w: %v", errLost, err)
					}
					return "", err
				}
				g = cur.Generation
				x.l.w.instanceWritten(in.Allocator, in.ID, &cur)
				x.plan.Progress.SetGeneration(in.ID, g)
				x.dirty = true
			}
			msg, err := x.waitHealthy(ctx, []engine.PlacedInstance{in}, map[string]int{in.ID: g})
			if handedOver != "" {
				msg = handedOver + "; " + msg
			}
			if err == nil {
				var back string
				if back, err = x.waitBackInSync(ctx, in); back != "" {
					msg += "; " + back
				}
			}
			return fmt.Sprintf("%s on %s restarted (generation %d); %s", in.ID[:min(8, len(in.ID))], in.Allocator, g, msg), err
		}); err != nil {
			return err
		}
	}
	return nil
}

// fail rolls back (or, for the delete and restart actions, just records)
// and finishes the plan with an error or cancelled status.
func (x *executor) fail(ctx context.Context, cause error) (bool, error) {
	if errors.Is(cause, errLost) || errors.Is(cause, errRestart) || ctx.Err() != nil {
		return false, cause
	}
	status := engine.PlanError
	if errors.Is(cause, errCancelled) {
		status = engine.PlanCancelled
	}
	x.log.Warn("plan failed: rolling back", "err", cause)
	// Placements not written yet are not rolled back: they never were.
	x.effects, x.route = nil, nil
	x.dropUnwritten()
	instances := x.dep.Instances
	switch x.plan.Action {
	case engine.ActionDelete, engine.ActionRestart:
	default:
		if x.plan.Progress.Rolling {
			instances = x.rollingInstances()
			var err error
			if instances, err = x.rollbackRolling(ctx, instances); err != nil && (errors.Is(err, errLost) || ctx.Err() != nil) {
				return false, err
			}
			break
		}
		if err := x.step(ctx, StepRollback, "", stepLong, func(ctx context.Context) (string, error) {
			return x.rollback(ctx)
		}); err != nil && (errors.Is(err, errLost) || ctx.Err() != nil) {
			return false, err
		}
	}
	if err := x.finish(ctx, status, instances, cause.Error()); err != nil {
		return false, err
	}
	return true, cause
}

// rollback returns to the last good topology: the old route, the old
// instances; the new instances go.
func (x *executor) rollback(ctx context.Context) (string, error) {
	var did []string
	old := x.dep.Instances
	if x.plan.Progress.Switched || x.plan.Progress.Paused || x.plan.Progress.ByRecovery {
		if peers := x.replicate(ctx, old, nil); peers != "" {
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

// finishing is the end of a plan: its status and the deployment's
// topology after it.
type finishing struct {
	x         *executor
	status    string
	instances []engine.PlacedInstance
}

// deployment is the deployment record after the plan.
func (f *finishing) deployment(d engine.Deployment) engine.Deployment {
	x := f.x
	now := *x.plan.EndedAt
	d.Instances = f.instances
	d.LastPlanID, d.LastPlanStatus, d.UpdatedAt = x.plan.ID, f.status, now
	switch {
	case f.status == engine.PlanSuccess && x.plan.Action == engine.ActionDelete:
		d.Status = engine.DeploymentDeleted
	case f.status == engine.PlanSuccess:
		if x.plan.Action == engine.ActionCreate || x.plan.Action == engine.ActionUpdate {
			d.Spec = x.plan.Spec
		}
		d.Status = engine.DeploymentRunning
	case x.plan.Action == engine.ActionDelete:
		d.Status = engine.DeploymentFailed
	case len(f.instances) > 0:
		d.Status = engine.DeploymentRunning
	default:
		d.Status = engine.DeploymentFailed
	}
	return d
}

// finish writes, in one Multi with the effects still queued (a new
// deployment's route), the plan to the history, deletes the pending
// plan and updates the deployment.
func (x *executor) finish(ctx context.Context, status string, instances []engine.PlacedInstance, reason string) error {
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
	if instances == nil {
		instances = []engine.PlacedInstance{}
	}
	x.depMark = false
	if err := x.write(ctx, &finishing{x: x, status: status, instances: instances}); err != nil {
		return fmt.Errorf("finish plan %s: %w", x.plan.ID, err)
	}
	x.l.m.plans.WithLabelValues(x.plan.Action, status).Inc()
	x.log.Info("plan finished", "status", status, "instances", len(instances))
	return nil
}
