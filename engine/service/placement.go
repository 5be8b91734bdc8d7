package service

import (
	"context"
	"errors"

	"paddock/engine"
	"paddock/engine/placement"
)

// PlaceCheck asks whether a deployment's spec fits the platform now.
type PlaceCheck struct {
	DeploymentID string
	// PlanID names the plan the check is for. The placement is seeded
	// with placement.PlatformSeed, as the constructor's: the preview is
	// what the plan will do while the inventory stays as it is.
	PlanID string
	Spec   engine.DeploymentSpec
	// Current is the deployment's current topology (updates): only what
	// the plan adds must find room.
	Current []engine.PlacedInstance
	// Version of the current topology (a version change replaces every
	// instance).
	CurrentVersion string
	// Exclude and Targets restrict allocators (vacate).
	Exclude, Targets []string
}

// PlannedInstance is one instance the check placed.
type PlannedInstance struct {
	Kind      string `json:"kind"`
	Allocator string `json:"allocator"`
	Zone      string `json:"zone"`
	SizeMB    int    `json:"size_mb"`
}

// PlacementReport is the placement check's answer: where instances would
// go and every allocator's verdict. The constructor decides for real when
// it runs the plan, with the same function, requests and seed: the
// preview names its allocators unless capacity changes in between.
type PlacementReport struct {
	Placements []PlannedInstance `json:"placements"`
	Explain    []Verdict         `json:"explain"`
}

// CheckPlacement runs the constructor's placement core (engine/placement)
// over the current inventory. An impossible placement is an Unplaceable
// error carrying the explanation.
func (s *Service) CheckPlacement(ctx context.Context, pc PlaceCheck) (PlacementReport, error) {
	rep := PlacementReport{Placements: []PlannedInstance{}, Explain: []Verdict{}}
	inv, err := s.placementInventory(ctx)
	if err != nil {
		return rep, storeErr(err, "allocator", "inventory")
	}
	cfg, err := s.platformConfig(ctx)
	if err != nil {
		return rep, storeErr(err, "platform", "config")
	}
	reqs := placementRequests(pc)
	if len(reqs) == 0 {
		return rep, nil
	}
	res, err := placement.Place(placement.FromInventory(inv), reqs, placement.Options{Strategy: cfg.PlacementStrategy, Seed: placement.PlatformSeed})
	var ue *placement.UnplaceableError
	if errors.As(err, &ue) {
		return rep, &Error{Kind: KindUnplaceable, Code: "placement.unplaceable", Message: ue.Error(),
			Explain: verdicts(reqs, ue.Explain), Err: err}
	}
	if err != nil {
		return rep, &Error{Kind: KindInvalid, Code: "placement.invalid", Message: err.Error(), Err: err}
	}
	for _, p := range res.Placements {
		rep.Placements = append(rep.Placements, PlannedInstance{Kind: p.Kind, Allocator: p.Allocator, Zone: p.Zone, SizeMB: p.SizeMB})
	}
	rep.Explain = verdicts(reqs, res.Explain)
	return rep, nil
}

func verdicts(reqs []placement.Request, vs []placement.Verdict) []Verdict {
	out := make([]Verdict, 0, len(vs))
	for _, v := range vs {
		kind := ""
		if v.Request >= 0 && v.Request < len(reqs) {
			kind = reqs[v.Request].Kind
		}
		out = append(out, Verdict{Kind: kind, Allocator: v.Allocator, Zone: v.Zone, Feasible: v.Feasible,
			Reason: v.Reason, Score: v.Score, Chosen: v.Chosen})
	}
	return out
}

// placementRequests turns the difference between the current topology
// and the spec into what must find room: new deployments need every
// instance; a size or version change replaces the kind's instances
// (grow-and-shrink: old and new coexist); a scale-out needs only the new
// zones; a scale-in needs nothing.
func placementRequests(pc PlaceCheck) []placement.Request {
	var reqs []placement.Request
	for _, k := range []struct {
		kind string
		topo engine.Topology
	}{{engine.KindElasticsearch, pc.Spec.Elasticsearch}, {engine.KindKibana, pc.Spec.Kibana}} {
		if k.topo.SizeMB == 0 || k.topo.Zones == 0 {
			continue
		}
		r := placement.Request{DeploymentID: pc.DeploymentID, Kind: k.kind, SizeMB: k.topo.SizeMB, Zones: k.topo.Zones,
			Filter: k.topo.Filter, Exclude: pc.Exclude, Targets: pc.Targets}
		var cur []engine.PlacedInstance
		for _, in := range pc.Current {
			if in.Kind == k.kind {
				cur = append(cur, in)
			}
		}
		if len(cur) > 0 {
			sameSize, sameVersion := true, true
			var zones []string
			for _, in := range cur {
				sameSize = sameSize && in.SizeMB == k.topo.SizeMB
				sameVersion = sameVersion && (in.Version == "" || in.Version == pc.Spec.Version)
				zones = append(zones, in.Zone)
			}
			if sameSize && sameVersion && len(pc.Exclude) == 0 {
				if k.topo.Zones <= len(cur) {
					continue
				}
				r.Zones = k.topo.Zones - len(cur)
				r.ExcludeZones = zones
			} else {
				// Grow-and-shrink replaces the kind, preferring its zones
				// (as the constructor asks).
				r.Replaces, r.PreferZones = true, zones
			}
		}
		reqs = append(reqs, r)
	}
	return reqs
}
