package service

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"paddock/engine"
	"paddock/engine/headroom"
	"paddock/engine/placement"
)

// HeadroomMaxAge bounds how old a cached headroom report may be: a
// capacity or deployment change shows within this delay.
const HeadroomMaxAge = time.Second

// headroomCache keeps the last report; one recomputation at a time.
type headroomCache struct {
	mu  sync.Mutex
	rep headroom.Report
	at  time.Time
	ok  bool
}

// Headroom answers "can the platform survive losing each zone, and what
// would vacating each allocator need?" by a dry-run of the constructor's
// placement over the current inventory and deployments
// (engine/headroom). The report is recomputed when the cached one is
// older than HeadroomMaxAge, so every capacity or deployment change
// shows within a second; callers polling faster share one computation.
func (s *Service) Headroom(ctx context.Context) (headroom.Report, error) {
	c := &s.headroom
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok && s.now().Sub(c.at) < HeadroomMaxAge {
		return c.rep, nil
	}
	in, err := s.headroomInput(ctx)
	if err != nil {
		return headroom.Report{}, err
	}
	rep := headroom.Compute(in)
	rep.ComputedAt = s.now()
	c.rep, c.at, c.ok = rep, rep.ComputedAt, true
	return rep, nil
}

func (s *Service) headroomInput(ctx context.Context) (headroom.Input, error) {
	inv, err := s.placementInventory(ctx)
	if err != nil {
		return headroom.Input{}, storeErr(err, "allocator", "inventory")
	}
	cfg, err := s.platformConfig(ctx)
	if err != nil {
		return headroom.Input{}, storeErr(err, "platform", "config")
	}
	raw, err := s.deploymentRecords(ctx)
	if err != nil {
		return headroom.Input{}, storeErr(err, "deployment", "list")
	}
	deps := make([]engine.Deployment, 0, len(raw))
	for id, b := range raw {
		var d engine.Deployment
		if err := json.Unmarshal(b, &d); err != nil {
			s.log.Warn("headroom: unreadable deployment record left out", "deployment", id, "err", err)
			continue
		}
		if d.ID == "" {
			d.ID = id
		}
		deps = append(deps, d)
	}
	return headroom.Input{Allocators: placement.FromInventory(inv), Deployments: deps, Strategy: cfg.PlacementStrategy}, nil
}

// deploymentRecords reads every deployment record (id → JSON), from the
// watch cache when it is usable.
func (s *Service) deploymentRecords(ctx context.Context) (map[string][]byte, error) {
	if s.cache != nil && usable(s.cache, s.cache.deps) {
		ids := s.cache.deps.Children(engine.PathDeployments)
		out := make(map[string][]byte, len(ids))
		for _, id := range ids {
			if n, ok := s.cache.deps.Get(engine.DeploymentPath(id)); ok {
				out[id] = n.Data
			}
		}
		return out, nil
	}
	return s.store.ReadChildren(ctx, engine.PathDeployments)
}
