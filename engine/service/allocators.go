package service

import (
	"context"
	"errors"
	"sort"

	"paddock/engine"
)

// InstanceView is one instance on an allocator: desired and observed.
type InstanceView struct {
	ID           string `json:"id"`
	DeploymentID string `json:"deployment_id"`
	Kind         string `json:"kind"`
	SizeMB       int    `json:"size_mb"`
	Version      string `json:"version"`
	State        string `json:"state"`
	Healthy      bool   `json:"healthy"`
	Address      string `json:"address,omitempty"`
	Restarts     int    `json:"restarts"`
}

// AllocatorView is an allocator as operators see it.
type AllocatorView struct {
	ID         string            `json:"id"`
	Zone       string            `json:"zone"`
	Host       string            `json:"host"`
	Runtime    string            `json:"runtime,omitempty"`
	Version    string            `json:"version,omitempty"`
	CapacityMB int               `json:"capacity_mb"`
	UsedMB     int               `json:"used_mb"`
	FreeMB     int               `json:"free_mb"`
	Tags       map[string]string `json:"tags,omitempty"`
	// Connected is true while the allocator holds its ZooKeeper session
	// (its alive node exists).
	Connected   bool                     `json:"connected"`
	Maintenance bool                     `json:"maintenance"`
	Settings    engine.AllocatorSettings `json:"settings"`
	Alive       *engine.AllocatorAlive   `json:"alive,omitempty"`
	Instances   []InstanceView           `json:"instances"`
}

func allocatorView(ia engine.InventoryAllocator) AllocatorView {
	v := AllocatorView{ID: ia.ID(), Zone: ia.Allocator.Zone, Host: ia.Allocator.Host, Runtime: ia.Allocator.Runtime,
		Version: ia.Allocator.Version, CapacityMB: ia.CapacityMB(), UsedMB: ia.AssignedMB(), Tags: ia.Tags(),
		Connected: ia.Alive != nil, Maintenance: ia.Maintenance, Settings: ia.Settings, Alive: ia.Alive,
		Instances: []InstanceView{}}
	v.FreeMB = max(v.CapacityMB-v.UsedMB, 0)
	for _, in := range ia.Instances {
		iv := InstanceView{ID: in.ID, DeploymentID: in.DeploymentID, Kind: in.Kind, SizeMB: in.SizeMB, Version: in.Version, State: "pending"}
		if st, ok := ia.Statuses[in.ID]; ok {
			iv.State, iv.Healthy, iv.Address, iv.Restarts = st.State, st.Healthy, st.Address, st.Restarts
		}
		v.Instances = append(v.Instances, iv)
	}
	return v
}

// ListAllocators returns every allocator, sorted by zone then id.
func (s *Service) ListAllocators(ctx context.Context) ([]AllocatorView, error) {
	inv, err := s.store.Inventory(ctx)
	if err != nil {
		return nil, storeErr(err, "allocator", "list")
	}
	out := make([]AllocatorView, 0, len(inv))
	for _, ia := range inv {
		out = append(out, allocatorView(ia))
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Zone != out[j].Zone {
			return out[i].Zone < out[j].Zone
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// GetAllocator returns one allocator.
func (s *Service) GetAllocator(ctx context.Context, id string) (AllocatorView, error) {
	inv, err := s.store.Inventory(ctx)
	if err != nil {
		return AllocatorView{}, storeErr(err, "allocator", id)
	}
	for _, ia := range inv {
		if ia.ID() == id {
			return allocatorView(ia), nil
		}
	}
	return AllocatorView{}, notFound("allocator", id)
}

func (s *Service) allocatorExists(ctx context.Context, id string) error {
	if id == "" || len(id) > 128 {
		return notFound("allocator", id)
	}
	ok, _, err := s.store.Exists(ctx, engine.AllocatorPath(id))
	if err != nil {
		return storeErr(err, "allocator", id)
	}
	if !ok {
		return notFound("allocator", id)
	}
	return nil
}

// SetMaintenance turns an allocator's maintenance mode on or off. In
// maintenance an allocator keeps its instances but receives no new ones.
func (s *Service) SetMaintenance(ctx context.Context, id string, on bool, reason string, actor Actor) (AllocatorView, error) {
	if err := s.allocatorExists(ctx, id); err != nil {
		return AllocatorView{}, err
	}
	m := engine.Maintenance{On: on, Since: s.now(), By: string(actor), Reason: reason}
	if err := s.store.Put(ctx, engine.AllocatorMaintenancePath(id), m); err != nil {
		return AllocatorView{}, storeErr(err, "allocator", id)
	}
	s.log.Info("allocator maintenance", "allocator", id, "on", on, "by", string(actor))
	return s.GetAllocator(ctx, id)
}

// MaxCapacityMB bounds an allocator's capacity setting (1 TiB).
const MaxCapacityMB = 1024 * 1024

// SetAllocatorSettings replaces an allocator's operator settings
// (capacity override, tags); the allocator applies them live.
func (s *Service) SetAllocatorSettings(ctx context.Context, id string, set engine.AllocatorSettings, actor Actor) (AllocatorView, error) {
	var fe []FieldError
	if set.CapacityMB < 0 || set.CapacityMB > MaxCapacityMB {
		fe = append(fe, field("capacity_mb", "must be between 0 (use what the allocator advertises) and %d, got %d", MaxCapacityMB, set.CapacityMB))
	}
	fe = append(fe, engine.CheckFilter("tags", set.Tags)...)
	if len(fe) > 0 {
		return AllocatorView{}, invalid(fe...)
	}
	if err := s.allocatorExists(ctx, id); err != nil {
		return AllocatorView{}, err
	}
	if err := s.store.Put(ctx, engine.AllocatorSettingsPath(id), set); err != nil {
		return AllocatorView{}, storeErr(err, "allocator", id)
	}
	s.log.Info("allocator settings", "allocator", id, "capacity_mb", set.CapacityMB, "by", string(actor))
	return s.GetAllocator(ctx, id)
}

// MoveResult is one deployment moved off an allocator.
type MoveResult struct {
	DeploymentID string `json:"id"`
	PlanID       string `json:"plan_id,omitempty"`
	Error        *Error `json:"-"`
	// ErrorMessage is Error's message for JSON.
	ErrorMessage string `json:"error,omitempty"`
	ErrorCode    string `json:"error_code,omitempty"`
}

// VacateResult lists the move plans written.
type VacateResult struct {
	Allocator string       `json:"allocator"`
	Moves     []MoveResult `json:"moves"`
}

// Vacate moves every deployment's instances off an allocator: one move
// plan per deployment (optionally restricted to target allocators).
// Deployments already running a plan are reported and left alone. When
// no deployment could be moved, the first failure is returned as the
// error.
func (s *Service) Vacate(ctx context.Context, id string, targets []string, actor Actor) (VacateResult, error) {
	res := VacateResult{Allocator: id, Moves: []MoveResult{}}
	inv, err := s.store.Inventory(ctx)
	if err != nil {
		return res, storeErr(err, "allocator", id)
	}
	var src *engine.InventoryAllocator
	known := map[string]bool{}
	for i := range inv {
		known[inv[i].ID()] = true
		if inv[i].ID() == id {
			src = &inv[i]
		}
	}
	if src == nil {
		return res, notFound("allocator", id)
	}
	var fe []FieldError
	for _, t := range targets {
		if t == id {
			fe = append(fe, field("targets", "target %s is the allocator being vacated", t))
		} else if !known[t] {
			fe = append(fe, field("targets", "target allocator %s does not exist", t))
		}
	}
	if len(fe) > 0 {
		return res, invalid(fe...)
	}
	deps := map[string]bool{}
	for _, in := range src.Instances {
		deps[in.DeploymentID] = true
	}
	ids := make([]string, 0, len(deps))
	for d := range deps {
		ids = append(ids, d)
	}
	sort.Strings(ids)
	var firstErr error
	for _, d := range ids {
		planID, err := s.move(ctx, d, id, targets, actor)
		mr := MoveResult{DeploymentID: d, PlanID: planID}
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				se = &Error{Kind: KindInternal, Code: "internal", Message: err.Error()}
			}
			if se.Kind == KindUnavailable {
				return res, err
			}
			mr.Error, mr.ErrorMessage, mr.ErrorCode = se, se.Error(), se.Code
			if firstErr == nil {
				firstErr = se
			}
		}
		res.Moves = append(res.Moves, mr)
	}
	if firstErr != nil {
		ok := false
		for _, m := range res.Moves {
			ok = ok || m.Error == nil
		}
		if !ok {
			return res, firstErr
		}
	}
	s.log.Info("allocator vacate", "allocator", id, "deployments", len(ids), "by", string(actor))
	return res, nil
}

// move writes one deployment's move plan off allocator from.
func (s *Service) move(ctx context.Context, depID, from string, targets []string, actor Actor) (string, error) {
	cur, err := s.planReady(ctx, depID)
	if err != nil {
		return "", err
	}
	// Only the instances on the vacated allocator need room elsewhere.
	var moving []engine.PlacedInstance
	spec := engine.DeploymentSpec{Version: cur.Spec.Version}
	for _, in := range cur.Instances {
		if in.Allocator != from {
			continue
		}
		moving = append(moving, in)
		t := engine.Topology{SizeMB: in.SizeMB, Filter: cur.Spec.Elasticsearch.Filter}
		if in.Kind == engine.KindKibana {
			t.Filter = cur.Spec.Kibana.Filter
			spec.Kibana = t
			spec.Kibana.Zones++
		} else {
			spec.Elasticsearch = t
			spec.Elasticsearch.Zones++
		}
	}
	if len(moving) > 0 {
		if _, err := s.CheckPlacement(ctx, PlaceCheck{DeploymentID: depID, Spec: spec, Exclude: []string{from}, Targets: targets}); err != nil {
			return "", err
		}
	}
	plan := s.newPlan(depID, engine.ActionMove, cur.Spec, actor)
	plan.MoveFrom = []string{from}
	plan.Targets = targets
	if err := s.writePlan(ctx, depID, []engine.Op{
		engine.OpCheck(engine.DeploymentPath(depID), cur.ResourceVersion),
		engine.OpCreate(engine.PendingPlanPath(depID), plan),
	}); err != nil {
		return "", err
	}
	return plan.ID, nil
}
