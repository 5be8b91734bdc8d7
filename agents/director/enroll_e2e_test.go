package director

import (
	"context"
	"errors"
	"testing"
	"time"

	"paddock/agents/allocator"
	"paddock/engine"
)

// TestSecondAllocatorJoinsThroughTheTunnel: token create → an allocator
// on another "host" (own state dir, zone-2) joins with it, gets its
// certificate and credential, and registers and receives an instance
// with ZooKeeper reached only through the director's mTLS tunnel. The
// allocator runs its sim runtime: this test is about enrollment and the
// tunnel, the Docker runtime has its own tests.
func TestSecondAllocatorJoinsThroughTheTunnel(t *testing.T) {
	p := env.Fresh(t, "zone-1", "zone-2")
	addrs, _ := startDirector(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ds := p.Connect(t, engine.RoleDirector)
	tok, _, err := CreateToken(ctx, ds, []string{"allocator"}, time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	ji, err := Join(ctx, addrs.Enroll, tok.String(), []string{"allocator"}, host)
	if err != nil {
		t.Fatal(err)
	}
	at, err := NewAgentTLS(host, "allocator", nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithCancel(ctx)
	go at.Run(actx)
	cred, err := engine.LoadCredential(engine.CredentialFile(host, engine.RoleAllocator))
	if err != nil {
		t.Fatal(err)
	}
	const id = "alloc-zone-2-joined"
	done := make(chan error, 1)
	go func() {
		done <- allocator.Run(actx, allocator.Config{ID: id, Zone: "zone-2", StateDir: host, Runtime: allocator.RuntimeSim,
			CapacityMB: 4096, Logger: quiet(),
			ZK: engine.Options{Servers: ji.ZooKeeper, Dialer: at.Dialer(), Credential: cred, Logger: quiet()}})
	}()
	t.Cleanup(func() {
		acancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("allocator did not stop")
		}
	})

	waitFor := func(what string, cond func() error) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			err := cond()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			select {
			case err := <-done:
				t.Fatalf("allocator stopped: %v", err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	waitFor("allocator registered through the tunnel", func() error {
		ok, _, err := p.Admin.Exists(ctx, engine.AllocatorAlivePath(id))
		if err == nil && !ok {
			err = errors.New("no alive node yet")
		}
		return err
	})
	var rec engine.Allocator
	if _, err := p.Admin.GetJSON(ctx, engine.AllocatorPath(id), &rec); err != nil || rec.Zone != "zone-2" {
		t.Fatalf("allocator record = %+v, %v", rec, err)
	}

	// The constructor assigns an instance; the allocator reports it.
	cons := p.Connect(t, engine.RoleConstructor)
	inst := engine.Instance{ID: "inst-joined-1", DeploymentID: engine.NewID(), Kind: "elasticsearch", Version: engine.DefaultVersions[0],
		SizeMB: 512, Zone: "zone-2", CreatedAt: time.Now().UTC()}
	if err := cons.Create(ctx, engine.InstancePath(id, inst.ID), inst); err != nil {
		t.Fatal(err)
	}
	waitFor("instance status from the joined allocator", func() error {
		var st engine.InstanceStatus
		if _, err := p.Admin.GetJSON(ctx, engine.StatusPath(id, inst.ID), &st); err != nil {
			return err
		}
		if st.State != engine.StateRunning {
			return errors.New("state " + st.State)
		}
		return nil
	})
}
