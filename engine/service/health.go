package service

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"paddock/engine"
)

// HealthView is a deployment's replication health, from one source for
// the CLI, the API and the console: the constructor's routing znode
// (/paddock/deployments/<id>/replication) and whether each copy runs.
type HealthView struct {
	// Health is green (every copy in sync and running), yellow (a copy
	// recovering or not running) or red (the primary does not run).
	Health string `json:"health"`
	// Reason says what is missing ("" when green).
	Reason  string `json:"reason,omitempty"`
	Term    int64  `json:"term"`
	Primary string `json:"primary"`
	// Copies are the Elasticsearch instances of the group.
	Copies []CopyView `json:"copies"`
	// LastChange is why the routing last changed, and when.
	LastChange string    `json:"last_change,omitempty"`
	Updated    time.Time `json:"updated"`
}

// CopyView is one copy of a deployment's replication group.
type CopyView struct {
	ID        string `json:"id"`
	Zone      string `json:"zone,omitempty"`
	Allocator string `json:"allocator,omitempty"`
	Primary   bool   `json:"primary"`
	InSync    bool   `json:"in_sync"`
	Running   bool   `json:"running"`
}

// healthOf is the view of routing r, with running telling which copies
// run.
func healthOf(d engine.Deployment, r engine.Replication, running func(engine.PlacedInstance) bool) *HealthView {
	byID := map[string]engine.PlacedInstance{}
	for _, in := range d.Instances {
		byID[in.ID] = in
	}
	live := func(iid string) bool {
		in, ok := byID[iid]
		return ok && running(in)
	}
	h, why := engine.ReplicationHealth(r, live)
	v := &HealthView{Health: h, Reason: why, Term: r.Term, Primary: r.Primary, LastChange: r.Reason, Updated: r.Updated,
		Copies: make([]CopyView, 0, len(r.Copies))}
	for _, c := range r.Copies {
		in := byID[c]
		v.Copies = append(v.Copies, CopyView{ID: c, Zone: in.Zone, Allocator: in.Allocator, Primary: c == r.Primary,
			InSync: r.IsInSync(c), Running: live(c)})
	}
	return v
}

// health reads a deployment's routing and its copies' statuses (all
// reads at once); nil when the deployment has no routing yet.
func (s *Service) health(ctx context.Context, d engine.Deployment) (*HealthView, error) {
	r, _, err := s.store.Replication(ctx, d.ID)
	return s.healthOf(ctx, d, r, err)
}

// healthOf is health with the routing (or the error reading it) already
// read; the copies' statuses are read at once.
func (s *Service) healthOf(ctx context.Context, d engine.Deployment, r engine.Replication, err error) (*HealthView, error) {
	if errors.Is(err, engine.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeErr(err, "deployment", d.ID)
	}
	got := make(map[string]bool, len(r.Copies))
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, in := range d.Instances {
		if !contains(r.Copies, in.ID) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := s.instanceRunning(ctx, in)
			mu.Lock()
			got[in.ID] = ok
			mu.Unlock()
		}()
	}
	wg.Wait()
	return healthOf(d, r, func(in engine.PlacedInstance) bool { return got[in.ID] }), nil
}

// instanceRunning reads whether an instance runs healthy on a live
// allocator.
func (s *Service) instanceRunning(ctx context.Context, in engine.PlacedInstance) bool {
	// Both reads at once: one round trip, not two in a row.
	var (
		alive bool
		aerr  error
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		alive, _, aerr = s.store.Exists(ctx, engine.AllocatorAlivePath(in.Allocator))
	}()
	var st engine.InstanceStatus
	_, err := s.store.GetJSON(ctx, engine.StatusPath(in.Allocator, in.ID), &st)
	<-done
	return err == nil && st.State == engine.StateRunning && st.Healthy && aerr == nil && alive
}

// health is a deployment's health from the cache: the routing from the
// deployments cache, each copy's status and its allocator's liveness
// from the allocators cache; ok is false when the routing does not
// decode.
func (c *Cache) health(d engine.Deployment) (*HealthView, bool) {
	n, ok := c.deps.Get(engine.ReplicationPath(d.ID))
	if !ok {
		return nil, true
	}
	var r engine.Replication
	if json.Unmarshal(n.Data, &r) != nil {
		return nil, false
	}
	// Each copy's status decoded once (healthOf asks several times),
	// and only the two fields it needs: a list of every deployment
	// spent most of its CPU here.
	running := make(map[string]bool, len(r.Copies))
	return healthOf(d, r, func(in engine.PlacedInstance) bool {
		if v, ok := running[in.ID]; ok {
			return v
		}
		v := c.running(in)
		running[in.ID] = v
		return v
	}), true
}

// running reports whether the cache shows in running healthy on a live
// allocator.
func (c *Cache) running(in engine.PlacedInstance) bool {
	if _, alive := c.allocs.Get(engine.AllocatorAlivePath(in.Allocator)); !alive {
		return false
	}
	sn, ok := c.allocs.Get(engine.StatusPath(in.Allocator, in.ID))
	var st struct {
		State   string `json:"state"`
		Healthy bool   `json:"healthy"`
	}
	return ok && json.Unmarshal(sn.Data, &st) == nil && st.State == engine.StateRunning && st.Healthy
}
