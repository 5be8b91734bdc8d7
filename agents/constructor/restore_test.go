package constructor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/backup"
	"paddock/engine/zktest"
)

// TestRestoreAfterLostZooKeeper: a platform running a deployment loses
// ZooKeeper's data (the server restarts empty); the backup taken before
// is restored, and then, without anyone touching them, the allocator
// re-registers, the constructor leads again, and the deployment runs on
// the very same node (no container recreated) and takes a new plan.
func TestRestoreAfterLostZooKeeper(t *testing.T) {
	zkEnv, err := zktest.Start(1)
	if err != nil {
		t.Fatalf("ZooKeeper for the test: %v", err)
	}
	defer zkEnv.Stop()
	p := zkEnv.Fresh(t, "zone-1")
	h := &harness{t: t, p: p, admin: p.Admin, snapshots: t.TempDir(), allocs: map[string]*agentHandle{}}
	h.startAllocator("a1", "zone-1", 4096, nil)
	h.startConstructor("c1", nil, nil)
	id, planID := h.createDeployment(spec("8.17.0", 1024, 1))
	if p := h.waitPlan(id, planID, 60*time.Second); p.Status != engine.PlanSuccess {
		t.Fatalf("create: %s %s", p.Status, stepNames(p))
	}
	in := h.deployment(id).Instances[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	status := func() engine.InstanceStatus {
		var st engine.InstanceStatus
		_, _ = h.admin.GetJSON(ctx, engine.StatusPath("a1", in.ID), &st)
		return st
	}
	before := status()
	if before.ContainerID == "" || !before.Healthy {
		t.Fatalf("instance before: %+v", before)
	}
	su := zkEnv.Super(t)
	f, err := backup.Take(ctx, su, backup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	su.Close()

	// ZooKeeper's data is lost: the server comes back empty.
	if err := zkEnv.Cluster.StopNode(1); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(zkEnv.Cluster.Node(1).Dir, "data", "version-2")); err != nil {
		t.Fatal(err)
	}
	if err := zkEnv.Cluster.StartNode(1); err != nil {
		t.Fatal(err)
	}
	if err := zkEnv.Cluster.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	su = zkEnv.Super(t)
	if err := backup.Restore(ctx, su, f, backup.RestoreOptions{Force: true, ZxidMargin: 2000}); err != nil {
		t.Fatal(err)
	}

	admin := p.Connect(t, engine.RoleAdmin)
	h.admin = admin
	h.waitFor("the allocator alive again", 90*time.Second, func() bool {
		ok, _, _ := admin.Exists(ctx, engine.AllocatorAlivePath("a1"))
		return ok
	})
	h.waitFor("a constructor leading again", 90*time.Second, func() bool {
		kids, _ := admin.Children(ctx, engine.PathLeaderCons)
		return len(kids) > 0
	})
	h.waitFor("the instance running healthy", 90*time.Second, func() bool { return status().Healthy })
	if after := status(); after.ContainerID != before.ContainerID {
		t.Fatalf("the node was recreated: container %s, before %s", after.ContainerID, before.ContainerID)
	}
	if d := h.deployment(id); d.Status != engine.DeploymentRunning || len(d.Instances) != 1 || d.Instances[0].ID != in.ID {
		t.Fatalf("deployment after the restore: %+v", d)
	}
	restart := h.submit(id, engine.Plan{Action: engine.ActionRestart})
	if p := h.waitPlan(id, restart, 90*time.Second); p.Status != engine.PlanSuccess {
		t.Fatalf("a plan after the restore: %s %s", p.Status, stepNames(p))
	}
}
