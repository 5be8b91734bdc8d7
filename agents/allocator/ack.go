package allocator

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"github.com/cenkalti/backoff/v5"

	"paddock/engine"
)

// Acknowledgement: what the allocator writes back to ZooKeeper. Its own
// status znodes and alive node are not in its cache (it wrote them: a
// watch on them would cost a read after each write); the statuses known
// to exist are remembered, so each is created or set without a read,
// and a pass's writes go out as one Multi (the alive node with them).

// ackDelay: the first status of an instance whose action is running is
// written once the action ends or after this long, so a node created
// at once is acknowledged by one write (running), not two.
const ackDelay = time.Second

// maxAckOps bounds the operations of one acknowledgement Multi (a
// ZooKeeper request stays far below jute.maxbuffer).
const maxAckOps = 200

// ownZnode names the znodes the allocator writes itself.
func (a *agent) ownZnode(p string) bool {
	return p == engine.StatusesPath(a.cfg.ID) || p == engine.AllocatorAlivePath(a.cfg.ID)
}

// leafZnode names the znodes that have no children by the layout.
func (a *agent) leafZnode(p string) bool {
	return p == engine.AllocatorMaintenancePath(a.cfg.ID) || p == engine.AllocatorSettingsPath(a.cfg.ID) ||
		(len(p) > len(engine.InstancesPath(a.cfg.ID)) && p[:len(engine.InstancesPath(a.cfg.ID))+1] == engine.InstancesPath(a.cfg.ID)+"/")
}

// loadPriorStatuses adopts what an earlier run of this allocator
// reported (restart counts), so a restart of the agent loses nothing,
// and learns which status znodes exist. Reads are pipelined; a failed
// read is retried with backoff until ctx ends.
func (a *agent) loadPriorStatuses(ctx context.Context) error {
	read := func() (map[string][]byte, error) { return a.s.ReadChildren(ctx, engine.StatusesPath(a.cfg.ID)) }
	priors, err := backoff.Retry(ctx, read, backoff.WithBackOff(backoff.NewExponentialBackOff()), backoff.WithMaxElapsedTime(0),
		backoff.WithNotify(func(err error, next time.Duration) {
			a.log.Warn("cannot read this allocator's earlier statuses; retrying", "err", err, "in", next)
		}))
	if err != nil {
		return err
	}
	for id, b := range priors {
		// A malformed status exists all the same (overwritten by the next pass).
		st := engine.InstanceStatus{ID: id}
		_ = json.Unmarshal(b, &st)
		a.statusZ[id] = true
		a.tracked[id] = &tracked{id: id, restarts: st.Restarts, state: st.State, written: &st, everHealthy: false}
	}
	return nil
}

// sameStatus compares two statuses, ignoring when they were written.
func sameStatus(a, b engine.InstanceStatus) bool {
	sa, sb := a.StartedAt, b.StartedAt
	a.UpdatedAt, b.UpdatedAt, a.StartedAt, b.StartedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b && sa.Equal(sb)
}

// ackOp is one status write (or deletion) of a pass.
type ackOp struct {
	id  string
	t   *tracked // nil for a deletion
	st  engine.InstanceStatus
	op  engine.Op
	del bool
}

// acknowledge writes the changed statuses, deletes those of instances
// that are gone, and updates the alive node, in Multis of up to
// maxAckOps operations. only (nil: every instance) are the instances a
// quick pass looked at: the others' statuses did not change.
func (a *agent) acknowledge(ctx context.Context, only map[string]struct{}) {
	counts := map[string]int{}
	healthy := 0
	now := time.Now()
	var ops []ackOp
	for _, t := range a.tracked {
		state := t.state // statusOf's State and Healthy
		if state == "" {
			state = engine.StateCreating
		}
		counts[state]++
		if t.healthy {
			healthy++
		}
	}
	ack := func(t *tracked) {
		st := a.statusOf(t)
		t.acked = t.written != nil && sameStatus(*t.written, st)
		if t.acked {
			return
		}
		if t.written == nil && t.busy && now.Sub(t.dispatchedAt) < ackDelay {
			return // its action's result comes soon: one write instead of two
		}
		st.UpdatedAt = now.UTC()
		p := engine.StatusPath(a.cfg.ID, t.id)
		op := engine.OpCreate(p, st)
		if a.statusZ[t.id] {
			op = engine.OpSet(p, st, engine.AnyVersion)
		}
		ops = append(ops, ackOp{id: t.id, t: t, st: st, op: op})
	}
	gone := func(id string) {
		if _, ok := a.tracked[id]; !ok && a.statusZ[id] {
			ops = append(ops, ackOp{id: id, op: engine.OpDelete(engine.StatusPath(a.cfg.ID, id), engine.AnyVersion), del: true})
		}
	}
	if only == nil {
		for _, t := range a.tracked {
			ack(t)
		}
		for id := range a.statusZ {
			gone(id)
		}
	} else {
		for id := range only {
			if t := a.tracked[id]; t != nil {
				ack(t)
			} else {
				gone(id)
			}
		}
	}
	a.healthyN = healthy
	a.updateRoutes()
	for _, s := range []string{engine.StateCreating, engine.StateStarting, engine.StateRunning, engine.StateUnhealthy,
		engine.StateRestarting, engine.StateStopping, engine.StateStopped, engine.StateFailed} {
		a.m.instances.WithLabelValues(s).Set(float64(counts[s]))
	}
	if !a.s.Connected() {
		a.m.zkConnected.Set(0)
		a.status.Set("zookeeper", "no ZooKeeper session: statuses are kept and written when it returns")
		return
	}
	a.m.zkConnected.Set(1)
	a.status.Set("zookeeper", "")
	sort.Slice(ops, func(i, j int) bool { return ops[i].id < ops[j].id })
	alive := a.aliveData()
	aliveChanged := alive != a.aliveWritten
	var firstErr error
	for len(ops) > 0 || aliveChanged {
		n := min(len(ops), maxAckOps)
		batch := ops[:n]
		ops = ops[n:]
		zops := make([]engine.Op, 0, n+1)
		for _, o := range batch {
			zops = append(zops, o.op)
		}
		withAlive := aliveChanged && len(ops) == 0
		if withAlive {
			alive.UpdatedAt = now.UTC()
			zops = append(zops, a.alive.OpUpdate(alive))
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := a.s.Multi(wctx, zops...)
		cancel()
		if err == nil {
			for _, o := range batch {
				a.acked(o)
			}
			if withAlive {
				alive.UpdatedAt = time.Time{}
				a.aliveWritten = alive
			}
		} else if err := a.ackOneByOne(ctx, batch, withAlive, alive); err != nil && firstErr == nil {
			firstErr = err
		}
		if withAlive {
			aliveChanged = false
		}
	}
	if firstErr != nil && ctx.Err() == nil && time.Since(a.lastZKWarn) > 10*time.Second {
		a.lastZKWarn = time.Now()
		a.log.Warn("cannot write instance status; retrying on the next pass", "err", firstErr)
	}
}

// acked records a successful write.
func (a *agent) acked(o ackOp) {
	if o.del {
		delete(a.statusZ, o.id)
		return
	}
	a.statusZ[o.id] = true
	a.m.statusWrites.Inc()
	st := o.st
	o.t.written, o.t.acked = &st, true
}

// ackOneByOne writes a batch whose Multi failed (a status znode created
// or deleted behind the allocator's back, the alive node missing after
// a session expiry) one znode at a time, creating or setting as found.
func (a *agent) ackOneByOne(ctx context.Context, batch []ackOp, withAlive bool, alive engine.AllocatorAlive) error {
	var firstErr error
	for _, o := range batch {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		p := engine.StatusPath(a.cfg.ID, o.id)
		var err error
		if o.del {
			err = a.s.Delete(wctx, p, engine.AnyVersion)
			if errors.Is(err, engine.ErrNotFound) {
				err = nil
			}
		} else {
			err = a.s.Put(wctx, p, o.st)
		}
		cancel()
		if err != nil {
			a.m.statusErrors.Inc()
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		a.acked(o)
	}
	if withAlive {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		alive.UpdatedAt = time.Now().UTC()
		err := a.alive.Update(wctx, alive)
		cancel()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
		} else {
			alive.UpdatedAt = time.Time{}
			a.aliveWritten = alive
		}
	}
	return firstErr
}

// publish updates the record when it changed, and the capacity metrics.
func (a *agent) publish(ctx context.Context) {
	capMB := a.capacity()
	a.m.capacity.Set(float64(capMB))
	a.m.used.Set(float64(a.usedMB))
	if !a.s.Connected() {
		return
	}
	rec := a.record()
	old := a.recordWritten
	if rec.CapacityMB != old.CapacityMB || !sameTags(rec.Tags, old.Tags) || rec.MetricsAddr != old.MetricsAddr || rec.Host != old.Host {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := a.s.Set(pctx, engine.AllocatorPath(a.cfg.ID), rec, engine.AnyVersion); err != nil {
			if ctx.Err() == nil {
				a.log.Warn("cannot update the allocator record", "err", err)
			}
		} else {
			a.recordWritten = rec
			a.log.Info("allocator record updated", "capacity_mb", rec.CapacityMB)
		}
	}
}
