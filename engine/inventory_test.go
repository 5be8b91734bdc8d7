package engine_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"paddock/engine"
)

// TestInventory reads an allocator written by its real roles (record and
// status by the allocator, maintenance and settings by an admin, an
// instance by the constructor) from ZooKeeper and from a tree cache.
func TestInventory(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	own := engine.Credential{User: engine.OwnAllocatorUser("a1"), Password: "pw"}
	as := p.ConnectAllocator(t, "a1", own)
	rec := engine.Allocator{ID: "a1", Zone: "zone-1", CapacityMB: 1000, Tags: map[string]string{"disk": "ssd"}, Identity: own.DigestID(), Runtime: "sim"}
	for _, step := range []struct {
		s *engine.Store
		p string
		v any
	}{
		{as, engine.AllocatorPath("a1"), rec},
		{as, engine.InstancesPath("a1"), nil},
		{as, engine.StatusesPath("a1"), nil},
		{p.Admin, engine.AllocatorMaintenancePath("a1"), engine.Maintenance{On: true}},
		{p.Admin, engine.AllocatorSettingsPath("a1"), engine.AllocatorSettings{CapacityMB: 3000, Tags: map[string]string{"type": "hot"}}},
		{p.Connect(t, engine.RoleConstructor), engine.InstancePath("a1", "i1"), engine.Instance{ID: "i1", DeploymentID: "d", Kind: engine.KindElasticsearch, SizeMB: 512}},
		{as, engine.StatusPath("a1", "i1"), engine.InstanceStatus{ID: "i1", State: engine.StateRunning, Healthy: true, Address: "127.0.0.1:1"}},
	} {
		if err := step.s.Create(ctx, step.p, step.v); err != nil {
			t.Fatalf("create %s: %v", step.p, err)
		}
	}
	if err := as.CreateEphemeral(ctx, engine.AllocatorAlivePath("a1"), engine.AllocatorAlive{CapacityMB: 2000}); err != nil {
		t.Fatal(err)
	}
	// A record still being registered (no data) is skipped.
	if err := p.ConnectAllocator(t, "a2", engine.Credential{User: engine.OwnAllocatorUser("a2"), Password: "x"}).Create(ctx, engine.AllocatorPath("a2"), nil); err != nil {
		t.Fatal(err)
	}

	inv, err := p.Connect(t, engine.RoleConstructor).Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv) != 1 {
		t.Fatalf("%d allocators, want 1: %+v", len(inv), inv)
	}
	a := inv[0]
	if a.ID() != "a1" || a.Alive == nil || !a.Maintenance || a.CapacityMB() != 3000 || a.AssignedMB() != 512 ||
		!reflect.DeepEqual(a.Tags(), map[string]string{"disk": "ssd", "type": "hot"}) ||
		len(a.Instances) != 1 || a.Statuses["i1"].Address != "127.0.0.1:1" || a.AliveOwner == 0 {
		t.Fatalf("inventory %+v", a)
	}

	c := engine.NewTreeCache(p.Admin, engine.PathAllocators)
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	go c.Run(cctx)
	<-c.Ready()
	cached := engine.InventoryFromCache(c, true)
	if len(cached) != 1 || !reflect.DeepEqual(cached[0].Instances, a.Instances) || !reflect.DeepEqual(cached[0].Statuses, a.Statuses) ||
		cached[0].Maintenance != a.Maintenance || cached[0].CapacityMB() != a.CapacityMB() {
		t.Fatalf("cache inventory %+v, store inventory %+v", cached, inv)
	}
	if light := engine.InventoryFromCache(c, false); len(light[0].Statuses) != 0 || len(light[0].Instances) != 1 {
		t.Fatalf("inventory without statuses %+v", light[0])
	}

	// When the allocator's session ends its alive node goes.
	as.Close()
	inv, err = p.Admin.Inventory(ctx)
	if err != nil || inv[0].Alive != nil {
		t.Fatalf("after the allocator left: %+v %v", inv, err)
	}
}
