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
// deployment it does so as an operator would by hand: the copy leaves
// the group first (Replication.Restarting; when it is the primary, a
// running in-sync copy takes over, term+1), so writes neither wait for
// it to fail nor stop for the failover grace while it is down; once its
// node runs again it rejoins as a copy out of sync, recovers from the
// primary (operation-based: it kept its data) and is in sync again
// before the next one restarts, so a deployment is never left without
// an in-sync copy to hand over to. Leaving the group, not just in_sync,
// keeps the primary from recovering the copy while it still runs, only
// to lose it to the restart.

// leaveBeforeRestart takes instance in out of the group for its
// restart, handing the primary over when it holds it. Nothing changes
// when in is not a copy, or when no other in-sync copy runs (the
// restart then goes through failover, as a crash would). It is
// idempotent: a leader that takes the plan over runs it again.
func (x *executor) leaveBeforeRestart(ctx context.Context, in engine.PlacedInstance) (string, error) {
	rp := x.l.repl
	var what string
	next, ver, changed, err := rp.update(ctx, x.depID, "restart", func(cur *engine.Replication) (engine.Replication, bool) {
		if cur == nil || !slices.Contains(cur.Copies, in.ID) {
			return engine.Replication{}, false
		}
		others := slices.DeleteFunc(slices.Clone(cur.InSync), func(c string) bool { return c == in.ID || !rp.live(x.depID, c) })
		if len(others) == 0 {
			return engine.Replication{}, false
		}
		not := func(c string) bool { return c == in.ID }
		next := *cur
		next.Copies = slices.DeleteFunc(slices.Clone(cur.Copies), not)
		next.InSync = slices.DeleteFunc(slices.Clone(cur.InSync), not)
		next.Restarting = sortedSet(append(slices.Clone(cur.Restarting), in.ID))
		what = "left the group for its restart"
		if cur.Primary == in.ID {
			next.Term, next.Primary = cur.Term+1, others[0]
			what = fmt.Sprintf("primary handed over to %s (term %d); %s", engine.Short(next.Primary), next.Term, what)
		}
		next.Reason = fmt.Sprintf("restart of %s: %s", engine.Short(in.ID), what)
		return next, true
	})
	if err != nil || !changed {
		return "", err
	}
	x.pushRestart(ctx, next, ver)
	x.log.Info("restart: copy out of the group for its restart", "instance", in.ID, "what", what, "term", next.Term, "primary", next.Primary)
	return what, nil
}

// rejoinAfterRestart adds a restarted copy back to the group, out of
// sync: the primary recovers it. Run whether or not the node came back
// (a copy that does not run is recovered when it does); idempotent.
func (x *executor) rejoinAfterRestart(ctx context.Context, in engine.PlacedInstance) error {
	next, ver, changed, err := x.l.repl.update(ctx, x.depID, "restart", func(cur *engine.Replication) (engine.Replication, bool) {
		if cur == nil || !slices.Contains(cur.Restarting, in.ID) {
			return engine.Replication{}, false
		}
		next := *cur
		next.Restarting = slices.DeleteFunc(slices.Clone(cur.Restarting), func(c string) bool { return c == in.ID })
		if len(next.Restarting) == 0 {
			next.Restarting = nil
		}
		next.Copies = sortedSet(append(slices.Clone(cur.Copies), in.ID))
		next.Reason = fmt.Sprintf("restart of %s: back, recovering from primary %s", engine.Short(in.ID), engine.Short(cur.Primary))
		return next, true
	})
	if err != nil || !changed {
		return err
	}
	x.pushRestart(ctx, next, ver)
	return nil
}

func (x *executor) pushRestart(ctx context.Context, r engine.Replication, ver engine.Version) {
	if failed := x.l.repl.push(ctx, x.depID, r, ver, ""); len(failed) > 0 {
		// The replication check pushes again; a deposed primary cannot
		// acknowledge a write meanwhile: the copies hold the new term.
		x.log.Warn("restart: routing not pushed to every copy", "failed", strings.Join(failed, "; "))
	}
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
		r, _, ok := x.l.w.replication(x.depID)
		if !ok || !slices.Contains(r.Copies, in.ID) || len(r.Copies) < 2 {
			return "", nil
		}
		if r.IsInSync(in.ID) {
			return fmt.Sprintf("recovered and in sync (primary %s) after %s", engine.Short(r.Primary), time.Since(start).Round(100*time.Millisecond)), nil
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

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
