// Package servicetest registers stand-in allocators in a test platform
// (real ZooKeeper, through engine/zktest) the way the allocator agent
// does: record, instances and status parents, ephemeral alive node, each
// with the allocator's own identity. Tests of the service layer and the
// API use it to have capacity to place on without running allocators.
//
// It must not be imported by non-test code.
package servicetest

import (
	"context"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/zktest"
)

// Allocator is a registered stand-in allocator.
type Allocator struct {
	ID, Zone   string
	CapacityMB int
	Store      *engine.Store
}

// AddAllocator registers allocator id in zone with capacity (MB) and
// keeps it alive until the test ends or Kill is called.
func AddAllocator(t testing.TB, p *zktest.Platform, id, zone string, capacityMB int) *Allocator {
	t.Helper()
	own := engine.Credential{User: engine.OwnAllocatorUser(id), Password: engine.RandomToken(12)}
	st := p.ConnectAllocator(t, id, own)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	now := time.Now().UTC()
	rec := engine.Allocator{ID: id, Zone: zone, Host: "127.0.0.1", CapacityMB: capacityMB, Identity: own.DigestID(),
		Runtime: "test", Version: "test", RegisteredAt: now}
	for _, step := range []struct {
		p string
		v any
	}{{engine.AllocatorPath(id), rec}, {engine.InstancesPath(id), nil}, {engine.StatusesPath(id), nil}} {
		if err := st.Create(ctx, step.p, step.v); err != nil {
			t.Fatalf("register allocator %s: create %s: %v", id, step.p, err)
		}
	}
	if err := st.CreateEphemeral(ctx, engine.AllocatorAlivePath(id), engine.AllocatorAlive{CapacityMB: capacityMB, FreeMB: capacityMB,
		StartedAt: now, UpdatedAt: now, DockerOK: true}); err != nil {
		t.Fatalf("register allocator %s: alive: %v", id, err)
	}
	return &Allocator{ID: id, Zone: zone, CapacityMB: capacityMB, Store: st}
}

// Kill ends the allocator's session: its alive node goes.
func (a *Allocator) Kill() { a.Store.Close() }

// Assign writes a desired instance on an allocator as the constructor
// does (constructor role), so capacity is taken.
func Assign(t testing.TB, p *zktest.Platform, alloc string, in engine.Instance) {
	t.Helper()
	cons := p.Connect(t, engine.RoleConstructor)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cons.Create(ctx, engine.InstancePath(alloc, in.ID), in); err != nil {
		t.Fatalf("assign %s to %s: %v", in.ID, alloc, err)
	}
	cons.Close()
}

// FinishPlan does what the constructor does at the end of a plan, as the
// constructor role: history entry, pending plan deleted, deployment
// updated (spec, instances, status) in one Multi. status is the plan's
// final status; instances are the new topology on success.
func FinishPlan(t testing.TB, p *zktest.Platform, depID, status string, instances []engine.PlacedInstance) engine.Plan {
	t.Helper()
	cons := p.Connect(t, engine.RoleConstructor)
	defer cons.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var plan engine.Plan
	pv, err := cons.GetJSON(ctx, engine.PendingPlanPath(depID), &plan)
	if err != nil {
		t.Fatalf("finish plan of %s: %v", depID, err)
	}
	var dep engine.Deployment
	dv, err := cons.GetJSON(ctx, engine.DeploymentPath(depID), &dep)
	if err != nil {
		t.Fatalf("finish plan of %s: %v", depID, err)
	}
	now := time.Now().UTC()
	plan.Status, plan.EndedAt = status, &now
	plan.Steps = append(plan.Steps, engine.PlanStep{Name: "done", Status: status, Started: now, Ended: &now})
	dep.LastPlanID, dep.LastPlanStatus, dep.UpdatedAt = plan.ID, status, now
	if status == engine.PlanSuccess {
		switch plan.Action {
		case engine.ActionDelete:
			dep.Status, dep.Instances = engine.DeploymentDeleted, nil
		default:
			dep.Status, dep.Spec, dep.Instances = engine.DeploymentRunning, plan.Spec, instances
		}
	}
	if err := cons.Multi(ctx,
		engine.OpCreateSequential(engine.PlanHistoryPath(depID)+"/plan-", plan),
		engine.OpDelete(engine.PendingPlanPath(depID), pv),
		engine.OpSet(engine.DeploymentPath(depID), dep, dv),
	); err != nil {
		t.Fatalf("finish plan of %s: %v", depID, err)
	}
	return plan
}
