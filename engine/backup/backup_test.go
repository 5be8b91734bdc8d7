package backup_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/backup"
	"paddock/engine/service"
	"paddock/engine/service/servicetest"
	"paddock/engine/testenv"
)

// TestBackupRestore: a platform's state (deployments with their plan
// history, allocators, the CA) is copied without ephemerals, survives the
// loss of ZooKeeper's data through the file, and comes back with the
// same data and ACLs: the allocator's own credential still writes its
// statuses, the service still lists and plans, and the next plan's
// sequential history entry does not collide.
func TestBackupRestore(t *testing.T) {
	p := env.Fresh(t, "zone-1", "zone-2")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svc := service.New(p.Admin, service.WithLogger(slog.New(slog.DiscardHandler)))
	a1 := servicetest.AddAllocator(t, p, "a1", "zone-1", 4096)
	res, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "logs", Spec: engine.DeploymentSpec{Elasticsearch: engine.Topology{SizeMB: 1024, Zones: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Deployment.ID
	in := engine.Instance{ID: engine.NewID(), DeploymentID: id, Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 1024, Zone: "zone-1"}
	servicetest.Assign(t, p, "a1", in)
	servicetest.FinishPlan(t, p, id, engine.PlanSuccess, []engine.PlacedInstance{{ID: in.ID, Kind: in.Kind, Allocator: "a1", Zone: "zone-1", SizeMB: 1024}})
	if err := a1.Store.Create(ctx, engine.StatusPath("a1", in.ID), engine.InstanceStatus{ID: in.ID, State: engine.StateRunning}); err != nil {
		t.Fatal(err)
	}
	dir := p.Connect(t, engine.RoleDirector)
	if err := dir.Put(ctx, engine.PathCA, []byte("-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n")); err != nil {
		t.Fatal(err)
	}
	su := env.Super(t)

	f, err := backup.Take(ctx, su, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	paths := map[string]bool{}
	for _, z := range f.Znodes {
		paths[z.Path] = true
	}
	for _, want := range []string{engine.PathCA, engine.DeploymentPath(id), engine.InstancePath("a1", in.ID), engine.StatusPath("a1", in.ID), engine.PlanHistoryPath(id) + "/plan-0000000000"} {
		if !paths[want] {
			t.Errorf("backup lacks %s", want)
		}
	}
	if paths[engine.AllocatorAlivePath("a1")] {
		t.Error("backup holds the ephemeral alive node")
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}

	// ZooKeeper's data is lost (the allocator's session, with its own
	// credential, stays: the restored ACLs must name that identity).
	if err := su.DeleteTree(ctx, engine.Root); err != nil {
		t.Fatal(err)
	}
	back, err := backup.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := backup.Restore(ctx, su, back, backup.RestoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := backup.Restore(ctx, su, back, backup.RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("restore over an existing tree: %v", err)
	}
	again, err := backup.Take(ctx, su, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Znodes, f.Znodes) {
		t.Fatalf("restored tree differs: %d znodes, backed up %d", len(again.Znodes), len(f.Znodes))
	}

	// The agents' credentials work as before.
	if _, err := a1.Store.Set(ctx, engine.StatusPath("a1", in.ID), engine.InstanceStatus{ID: in.ID, State: engine.StateRunning, Healthy: true}, engine.AnyVersion); err != nil {
		t.Fatalf("the allocator's own credential writes its status after the restore: %v", err)
	}
	if v, err := svc.GetDeployment(ctx, id); err != nil || len(v.Instances) != 1 {
		t.Fatalf("deployment after the restore: %+v %v", v, err)
	}
	if _, err := svc.RestartDeployment(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	servicetest.FinishPlan(t, p, id, engine.PlanSuccess, nil)
	act, err := svc.Activity(ctx, id)
	if err != nil || len(act.History) != 2 {
		t.Fatalf("history after a plan following the restore: %d plans, %v", len(act.History), err)
	}
}

func TestSealOpen(t *testing.T) {
	secrets := map[string][]byte{"ca.key": []byte("secret key"), "ca.crt": []byte("cert")}
	s, err := backup.Seal(secrets, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s.Ciphertext, []byte("secret key")) {
		t.Fatal("the key is in clear")
	}
	got, err := s.Open("correct horse")
	if err != nil || !reflect.DeepEqual(got, secrets) {
		t.Fatalf("open: %v %v", got, err)
	}
	if _, err := s.Open("wrong"); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := backup.Seal(secrets, ""); err == nil {
		t.Fatal("sealed without a passphrase")
	}
}

// TestBackupConsistentCut: two znodes always written together (one
// Multi) are never copied apart while a writer keeps changing them.
func TestBackupConsistentCut(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	su := env.Super(t)
	a, b := engine.RequestPath("pair-a"), engine.RequestPath("pair-b")
	for _, x := range []string{a, b} {
		if err := p.Admin.Create(ctx, x, "0"); err != nil {
			t.Fatal(err)
		}
	}
	busy, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A busy platform, not a saturated one: a write every 20 ms.
		for i := 1; testenv.Pause(busy, 20*time.Millisecond); i++ {
			v := fmt.Sprint(i)
			_ = p.Admin.Multi(ctx, engine.OpSet(a, v, engine.AnyVersion), engine.OpSet(b, v, engine.AnyVersion))
		}
	}()
	defer func() { stop(); wg.Wait() }()
	taken := 0
	for range 10 {
		f, err := backup.Take(ctx, su, backup.Options{MaxWalks: 50})
		if err != nil {
			continue
		}
		taken++
		var va, vb string
		for _, z := range f.Znodes {
			switch z.Path {
			case a:
				va = string(z.Data)
			case b:
				vb = string(z.Data)
			}
		}
		if va == "" || va != vb {
			t.Fatalf("inconsistent copy: %s=%q %s=%q", a, va, b, vb)
		}
	}
	if taken == 0 {
		t.Fatal("no backup succeeded while the writer ran")
	}
}
