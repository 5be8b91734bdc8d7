package constructor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

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
	x.setProgress("rolling", "1")
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
			if err := x.rollStep(ctx, StepPlace, "extra:"+r.Kind, func(ctx context.Context) (string, error) {
				placed, err := x.place(ctx, []placement.Request{extra})
				return describePlaced(placed), err
			}); err != nil {
				return err
			}
		}
	}
	if err := x.step(ctx, StepWait, "", func(ctx context.Context) (string, error) {
		return x.waitHealthy(ctx, x.plan.NewInstances, nil)
	}); err != nil {
		return err
	}
	// Surplus old instances (a scale-in together with the change) and
	// removed kinds go last.
	var rest []engine.PlacedInstance
	for _, o := range x.change.Retire {
		if x.progress("removed:"+o.ID) == "" {
			rest = append(rest, o)
		}
	}
	final := x.rollingInstances()
	if err := x.step(ctx, StepSwitch, "final", func(ctx context.Context) (string, error) {
		peers := x.setPeers(ctx, final)
		return "route to the new nodes" + peers, x.l.writeRoute(ctx, x.depID, x.l.backends(final), engine.RouteLive)
	}); err != nil {
		return err
	}
	if len(rest) > 0 {
		if err := x.step(ctx, StepRemoveOld, "rest", func(ctx context.Context) (string, error) {
			return describePlaced(rest), x.removeInstances(ctx, rest)
		}); err != nil {
			return err
		}
	}
	return nil
}

// rollStep is a step whose activity message names the zone it works on.
func (x *executor) rollStep(ctx context.Context, name, key string, fn func(ctx context.Context) (string, error)) error {
	return x.step(ctx, name, name+"@"+key, fn)
}

func (x *executor) rollOne(ctx context.Context, r placement.Request, o engine.PlacedInstance) error {
	zone := o.Zone
	snap := x.snapName("roll-" + o.ID[:min(8, len(o.ID))])
	if o.Kind == engine.KindElasticsearch {
		if err := x.rollStep(ctx, StepSnapshot, o.ID, func(ctx context.Context) (string, error) {
			addr := x.nodeAddr(o)
			if addr == "" {
				x.setProgress("nosnap:"+o.ID, "1")
				return zone + ": the old node is not healthy: its successor restores nothing and relies on its peers", nil
			}
			return zone + ": snapshot " + snap, x.takeSnapshot(ctx, addr, snap)
		}); err != nil {
			return err
		}
	}
	if err := x.rollStep(ctx, StepSwitch, "out:"+o.ID, func(ctx context.Context) (string, error) {
		cur := x.rollingInstances()
		var others []engine.PlacedInstance
		for _, in := range cur {
			if in.ID != o.ID {
				others = append(others, in)
			}
		}
		b := x.l.backends(others)
		if len(b) == 0 {
			x.setProgress("paused", "1")
			return zone + ": the only node: route paused while it is replaced", x.l.setRouteState(ctx, x.depID, engine.RoutePaused)
		}
		return fmt.Sprintf("%s: route to the %d other node(s)", zone, len(b)), x.l.writeRoute(ctx, x.depID, b, engine.RouteLive)
	}); err != nil {
		return err
	}
	if err := x.rollStep(ctx, StepRemoveOld, o.ID, func(ctx context.Context) (string, error) {
		if err := x.removeInstances(ctx, []engine.PlacedInstance{o}); err != nil {
			return "", err
		}
		x.setProgress("removed:"+o.ID, "1")
		// Wait for the allocator to free the memory (status gone).
		deadline := time.Now().Add(x.l.cfg.HealthyTimeout)
		for time.Now().Before(deadline) {
			if _, ok := x.l.status(o.Allocator, o.ID); !ok || !x.l.alive(o.Allocator) {
				break
			}
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		return zone + ": " + describePlaced([]engine.PlacedInstance{o}), nil
	}); err != nil {
		return err
	}
	var placed []engine.PlacedInstance
	if err := x.rollStep(ctx, StepPlace, o.ID, func(ctx context.Context) (string, error) {
		if id := x.progress("successor:" + o.ID); id != "" {
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
		if placed, err = x.place(ctx, []placement.Request{same}); err != nil {
			var ue *placement.UnplaceableError
			if !errors.As(err, &ue) {
				return "", err
			}
			if placed, err = x.place(ctx, []placement.Request{req}); err != nil {
				return "", err
			}
		}
		x.setProgress("successor:"+o.ID, placed[0].ID)
		return zone + ": " + describePlaced(placed), nil
	}); err != nil {
		return err
	}
	if placed == nil {
		for _, in := range x.plan.NewInstances {
			if in.ID == x.progress("successor:"+o.ID) {
				placed = []engine.PlacedInstance{in}
			}
		}
	}
	if err := x.rollStep(ctx, StepWait, o.ID, func(ctx context.Context) (string, error) {
		msg, err := x.waitHealthy(ctx, placed, nil)
		return zone + ": " + msg, err
	}); err != nil {
		return err
	}
	if o.Kind == engine.KindElasticsearch && x.progress("nosnap:"+o.ID) == "" {
		if err := x.rollStep(ctx, StepMigrate, o.ID, func(ctx context.Context) (string, error) {
			return zone + ": restored " + snap, x.restoreAll(ctx, snap, placed)
		}); err != nil {
			return err
		}
	}
	return x.rollStep(ctx, StepSwitch, "in:"+o.ID, func(ctx context.Context) (string, error) {
		cur := x.rollingInstances()
		peers := x.setPeers(ctx, cur)
		b := x.l.backends(cur)
		return fmt.Sprintf("%s: route to %d node(s)%s", zone, len(b), peers), x.l.writeRoute(ctx, x.depID, b, engine.RouteLive)
	})
}

// rollingInstances is the topology as it stands in a rolling plan: the
// old instances not yet removed plus the new ones.
func (x *executor) rollingInstances() []engine.PlacedInstance {
	var out []engine.PlacedInstance
	for _, in := range x.dep.Instances {
		if x.progress("removed:"+in.ID) == "" {
			out = append(out, in)
		}
	}
	return append(out, x.plan.NewInstances...)
}
