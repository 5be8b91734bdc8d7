package service_test

import (
	"testing"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/service/servicetest"
)

func TestRetryPlan(t *testing.T) {
	svc, p, ctx := newSvc(t, "zone-1")
	servicetest.AddAllocator(t, p, "a1", "zone-1", 8192)
	res, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "d", Spec: spec(1024, 1)})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Deployment.ID
	_, err = svc.RetryPlan(ctx, id, "test")
	wantKind(t, err, service.ErrConflict, "plan.pending")
	inst := []engine.PlacedInstance{{ID: "i1", Kind: engine.KindElasticsearch, Allocator: "a1", Zone: "zone-1", SizeMB: 1024, Version: "8.18.0"}}
	servicetest.FinishPlan(t, p, id, engine.PlanSuccess, inst)
	_, err = svc.RetryPlan(ctx, id, "test")
	wantKind(t, err, service.ErrConflict, "plan.not_failed")

	// A resize that rolled back is asked for again, same spec.
	if _, err := svc.Resize(ctx, id, 2048, "test"); err != nil {
		t.Fatal(err)
	}
	servicetest.FinishPlan(t, p, id, engine.PlanRolledBack, inst)
	r, err := svc.RetryPlan(ctx, id, "test")
	if err != nil || r.PlanID == "" {
		t.Fatalf("retry: %+v %v", r, err)
	}
	v, err := svc.GetDeployment(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if v.PendingPlan == nil || v.PendingPlan.ID != r.PlanID || v.PendingPlan.Action != engine.ActionUpdate || v.PendingPlan.Spec.Elasticsearch.SizeMB != 2048 {
		t.Fatalf("retried plan: %+v", v.PendingPlan)
	}
	// A failed restart is retried as a restart.
	servicetest.FinishPlan(t, p, id, engine.PlanSuccess, inst)
	if _, err := svc.RestartDeployment(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	servicetest.FinishPlan(t, p, id, engine.PlanError, inst)
	if _, err := svc.RetryPlan(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	if v, _ := svc.GetDeployment(ctx, id); v.PendingPlan == nil || v.PendingPlan.Action != engine.ActionRestart {
		t.Fatalf("retried restart: %+v", v.PendingPlan)
	}
	_, err = svc.RetryPlan(ctx, "00000000000000000000000000000000", "test")
	wantKind(t, err, service.ErrNotFound, "")
}
