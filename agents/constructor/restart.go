package constructor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"paddock/engine"
)

// A restart plan restarts one instance at a time. For a replicated
// deployment it does so as an operator would by hand: the primary's
// node goes last, and before it stops the primary is handed over to a
// running in-sync copy (term+1), so writes do not stop for the failover
// grace; and each restarted copy is back in sync (recovered from the
// primary) before the next one restarts, so a deployment is never left
// without an in-sync copy to hand over to.
//
// The routing changes only by the handover: a copy that restarts stays
// in copies and in in_sync, and leaves in_sync as a crashed one does,
// when the primary fails to replicate to it (event failed), then
// recovers and rejoins (event in_sync). Taking it out of the group
// from the constructor instead would leave the primary's event log
// saying it is in sync: a replayed log (a new poll reads it from the
// start) put a copy that had missed writes back in in_sync, and the
// next handover lost them (67 of 7,692 acknowledged writes in a live
// test before this was changed).

// handOverBeforeRestart makes another running in-sync copy primary
// (term+1) when instance in holds the primary; the old primary stays a
// copy in sync (it has every acknowledged write) until the new primary
// fails to reach it. Nothing changes when in is not the primary, or
// when no other in-sync copy runs (the restart then goes through
// failover, as a crash would). Idempotent: a leader that takes the plan
// over runs it again.
func (x *executor) handOverBeforeRestart(ctx context.Context, in engine.PlacedInstance) (string, error) {
	rp := x.l.repl
	var what string
	next, ver, changed, err := rp.update(ctx, x.depID, "restart", func(cur *engine.Replication) (engine.Replication, bool) {
		if cur == nil || cur.Primary != in.ID {
			return engine.Replication{}, false
		}
		for _, c := range cur.InSync {
			if c == in.ID || !rp.live(x.depID, c) {
				continue
			}
			next := *cur
			next.Term, next.Primary = cur.Term+1, c
			what = fmt.Sprintf("primary handed over to %s (term %d)", engine.Short(c), next.Term)
			next.Reason = fmt.Sprintf("restart of %s: %s", engine.Short(in.ID), what)
			return next, true
		}
		return engine.Replication{}, false
	})
	if err != nil || !changed {
		return "", err
	}
	if failed := rp.push(ctx, x.depID, next, ver, ""); len(failed) > 0 {
		// The replication check pushes again; the old primary cannot
		// acknowledge a write meanwhile: the new one holds a newer term.
		x.log.Warn("restart: routing not pushed to every copy", "failed", strings.Join(failed, "; "))
	}
	x.log.Info("restart: primary handed over before its node restarts", "instance", in.ID, "term", next.Term, "primary", next.Primary)
	return what, nil
}

// waitBackInSync waits until a restarted copy of the routing is in sync
// again (recovered from the primary), woken by the deployment's changes,
// for at most the step timeout. Instances that are not copies (Kibana,
// or a deployment without routing) have nothing to wait for.
func (x *executor) waitBackInSync(ctx context.Context, in engine.PlacedInstance) (string, error) {
	changed, stop := x.l.w.watch(x.depID)
	defer stop()
	deadline := time.NewTimer(x.l.cfg.StepTimeout)
	defer deadline.Stop()
	start := time.Now()
	for {
		r, ver, ok := x.l.w.replication(x.depID)
		if !ok || !slices.Contains(r.Copies, in.ID) || len(r.Copies) < 2 {
			return "", nil
		}
		// The replication check leaves a deployment to its running plan:
		// the restarted node's new address (its container re-created)
		// reaches the primary, which recovers it, from here.
		x.l.repl.pushIfMoved(ctx, x.depID, r, ver)
		if r.IsInSync(in.ID) {
			return fmt.Sprintf("in sync with primary %s after %s", engine.Short(r.Primary), time.Since(start).Round(100*time.Millisecond)), nil
		}
		late, err := x.waitTurn(ctx, fmt.Sprintf("%s restarted; recovering from primary %s for %s",
			engine.Short(in.ID), engine.Short(r.Primary), time.Since(start).Round(time.Second)), changed, deadline.C)
		if err != nil {
			return "", err
		}
		if late {
			return "", fmt.Errorf("%s restarted but not back in sync after %s (primary %s): see its node's log and GET /_cat/shards; the plan stops here so no other copy restarts",
				engine.Short(in.ID), x.l.cfg.StepTimeout, engine.Short(r.Primary))
		}
	}
}
