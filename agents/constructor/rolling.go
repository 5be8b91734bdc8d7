package constructor

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"paddock/engine"
	"paddock/engine/placement"
)

// runRolling replaces instances in place, one zone at a time: the other
// zones keep serving while one node is swapped, and no extra capacity is
// needed. Per old instance: snapshot it, take it out of the route (pause
// when it is the only node), remove it, place its successor in the same
// zone (on the same allocator when it fits), wait until healthy, restore
// the snapshot, put it in the route. A failure stops the plan where it
// is: zones already replaced stay replaced (the deployment records the
// topology as it is), nothing else is touched.
func (x *executor) runRolling(ctx context.Context) error {
	if err := x.validate(ctx); err != nil {
		return err
	}
	x.plan.Progress.Rolling = true
	for _, r := range x.change.Requests {
		if !r.Replaces {
			continue
		}
		olds := byKind(x.change.Retire, r.Kind)
		for i, o := range olds {
			if i >= r.Zones {
				break // scale-in remainder: removed below
			}
			if err := x.rollOne(ctx, r, o); err != nil {
				return err
			}
		}
		if r.Zones > len(olds) {
			extra := r
			extra.Zones, extra.Replaces, extra.PreferZones = r.Zones-len(olds), false, nil
			extra.ExcludeZones = zonesOf(byKind(x.rollingInstances(), r.Kind))
			if err := x.rollStep(ctx, StepPlace, "extra:"+r.Kind, stepInstant, func(ctx context.Context) (string, error) {
				placed, err := x.place([]placement.Request{extra})
				return describePlaced(placed), err
			}); err != nil {
				return err
			}
		}
	}
	if err := x.step(ctx, StepWait, "", stepLong, func(ctx context.Context) (string, error) {
		return x.waitHealthy(ctx, x.plan.NewInstances, nil)
	}); err != nil {
		return err
	}
	// Surplus old instances (a scale-in together with the change) and
	// removed kinds go last.
	var rest []engine.PlacedInstance
	for _, o := range x.change.Retire {
		if !x.plan.Progress.WasRemoved(o.ID) {
			rest = append(rest, o)
		}
	}
	final := x.rollingInstances()
	if err := x.step(ctx, StepSwitch, "final", stepLong, func(ctx context.Context) (string, error) {
		peers := x.replicate(ctx, final, nil)
		return "route to the new nodes" + peers, x.l.writeRoute(ctx, x.depID, x.l.backends(final), engine.RouteLive)
	}); err != nil {
		return err
	}
	if len(rest) > 0 {
		if err := x.step(ctx, StepRemoveOld, "rest", stepLong, func(ctx context.Context) (string, error) {
			return describePlaced(rest), x.removeInstances(ctx, rest)
		}); err != nil {
			return err
		}
	}
	return nil
}

// rollStep is a step whose activity message names the zone it works on.
func (x *executor) rollStep(ctx context.Context, name, key string, kind stepKind, fn func(ctx context.Context) (string, error)) error {
	return x.step(ctx, name, name+"@"+key, kind, fn)
}

func (x *executor) rollOne(ctx context.Context, r placement.Request, o engine.PlacedInstance) error {
	zone := o.Zone
	snap := x.snapName("roll-" + o.ID[:min(8, len(o.ID))])
	if o.Kind == engine.KindElasticsearch {
		if err := x.rollStep(ctx, StepSnapshot, o.ID, stepLong, func(ctx context.Context) (string, error) {
			addr := x.nodeAddr(o)
			if addr == "" {
				x.plan.Progress.MarkNoSnapshot(o.ID)
				return zone + ": the old node is not healthy: its successor restores nothing and relies on its peers", nil
			}
			return zone + ": snapshot " + snap, x.takeSnapshot(ctx, addr, snap)
		}); err != nil {
			return err
		}
	}
	if err := x.rollStep(ctx, StepSwitch, "out:"+o.ID, stepLong, func(ctx context.Context) (string, error) {
		cur := x.rollingInstances()
		var others []engine.PlacedInstance
		for _, in := range cur {
			if in.ID != o.ID {
				others = append(others, in)
			}
		}
		b := x.l.backends(others)
		if len(b) == 0 {
			x.plan.Progress.Paused = true
			return zone + ": the only node: route paused while it is replaced", x.l.setRouteState(ctx, x.depID, engine.RoutePaused)
		}
		// A primary leaving hands over to an in-sync copy first.
		peers := x.replicate(ctx, others, nil)
		return fmt.Sprintf("%s: route to the %d other node(s)%s", zone, len(b), peers), x.l.writeRoute(ctx, x.depID, b, engine.RouteLive)
	}); err != nil {
		return err
	}
	if err := x.rollStep(ctx, StepRemoveOld, o.ID, stepLong, func(ctx context.Context) (string, error) {
		if err := x.removeInstances(ctx, []engine.PlacedInstance{o}); err != nil {
			return "", err
		}
		x.plan.Progress.MarkRemoved(o.ID)
		// Wait for the allocator to free the memory (status gone).
		if err := x.waitGone(ctx, o); err != nil {
			return "", err
		}
		return zone + ": " + describePlaced([]engine.PlacedInstance{o}), nil
	}); err != nil {
		return err
	}
	var placed []engine.PlacedInstance
	if err := x.rollStep(ctx, StepPlace, o.ID, stepInstant, func(ctx context.Context) (string, error) {
		if id := x.plan.Progress.Successor[o.ID]; id != "" {
			for _, in := range x.plan.NewInstances {
				if in.ID == id {
					placed = []engine.PlacedInstance{in}
				}
			}
			return zone + ": placed before the leader change", x.ensureInstances(ctx, placed)
		}
		req := r
		req.Zones, req.PreferZones, req.Replaces = 1, []string{zone}, false
		var others []string
		for _, in := range byKind(x.rollingInstances(), r.Kind) {
			if in.ID != o.ID && in.Zone != zone && !slices.Contains(others, in.Zone) {
				others = append(others, in.Zone)
			}
		}
		req.ExcludeZones = others
		same := req
		same.Targets = []string{o.Allocator}
		var err error
		if placed, err = x.place([]placement.Request{same}); err != nil {
			var ue *placement.UnplaceableError
			if !errors.As(err, &ue) {
				return "", err
			}
			if placed, err = x.place([]placement.Request{req}); err != nil {
				return "", err
			}
		}
		x.plan.Progress.SetSuccessor(o.ID, placed[0].ID)
		return zone + ": " + describePlaced(placed), nil
	}); err != nil {
		return err
	}
	if placed == nil {
		for _, in := range x.plan.NewInstances {
			if in.ID == x.plan.Progress.Successor[o.ID] {
				placed = []engine.PlacedInstance{in}
			}
		}
	}
	if err := x.rollStep(ctx, StepWait, o.ID, stepLong, func(ctx context.Context) (string, error) {
		msg, err := x.waitHealthy(ctx, placed, nil)
		return zone + ": " + msg, err
	}); err != nil {
		return err
	}
	if o.Kind == engine.KindElasticsearch && !x.plan.Progress.HasNoSnapshot(o.ID) {
		if err := x.rollStep(ctx, StepMigrate, o.ID, stepLong, func(ctx context.Context) (string, error) {
			return zone + ": restored " + snap, x.restoreAll(ctx, snap, placed)
		}); err != nil {
			return err
		}
	}
	return x.rollStep(ctx, StepSwitch, "in:"+o.ID, stepLong, func(ctx context.Context) (string, error) {
		cur := x.rollingInstances()
		var migrated []engine.PlacedInstance
		if o.Kind == engine.KindElasticsearch && !x.plan.Progress.HasNoSnapshot(o.ID) {
			migrated = placed
		}
		peers := x.replicate(ctx, cur, migrated)
		b := x.l.backends(cur)
		return fmt.Sprintf("%s: route to %d node(s)%s", zone, len(b), peers), x.l.writeRoute(ctx, x.depID, b, engine.RouteLive)
	})
}

// waitGone waits until an instance's status is gone (its allocator
// freed the memory) or its allocator is lost, woken by the deployment's
// changes, at most HealthyTimeout.
func (x *executor) waitGone(ctx context.Context, o engine.PlacedInstance) error {
	changed, stop := x.l.w.watch(x.depID)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, x.l.cfg.HealthyTimeout)
	defer cancel()
	for {
		if _, ok := x.l.status(o.Allocator, o.ID); !ok || !x.l.alive(o.Allocator) {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil // go on: the placement says whether it fits
			}
			return ctx.Err()
		case <-changed:
		}
	}
}

// rollingInstances is the topology as it stands in a rolling plan: the
// old instances not yet removed plus the new ones.
func (x *executor) rollingInstances() []engine.PlacedInstance {
	var out []engine.PlacedInstance
	for _, in := range x.dep.Instances {
		if !x.plan.Progress.WasRemoved(in.ID) {
			out = append(out, in)
		}
	}
	return append(out, x.plan.NewInstances...)
}

// rollbackRolling stops a failed rolling plan: zones already replaced
// stay replaced; a successor that is not healthy, or whose data was not
// restored, must not serve: it goes; the route serves what runs, live
// again if it was paused. It returns the topology as it stands.
func (x *executor) rollbackRolling(ctx context.Context, instances []engine.PlacedInstance) ([]engine.PlacedInstance, error) {
	err := x.step(ctx, StepRollback, "", stepLong, func(ctx context.Context) (string, error) {
		unrestored := map[string]bool{}
		for _, o := range x.change.Retire {
			if s := x.plan.Progress.Successor[o.ID]; s != "" && o.Kind == engine.KindElasticsearch &&
				!x.plan.Progress.HasNoSnapshot(o.ID) && !x.plan.Progress.IsDone(StepMigrate+"@"+o.ID) {
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
	})
	return instances, err
}
