package allocator_test

import (
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"paddock/agents/allocator"
	"paddock/engine"
	"paddock/engine/testenv"
	"paddock/engine/zktest"
)

// TestPlatformsApart: two platforms (two ZooKeeper servers) on one
// Docker host, each with an allocator of the SAME id. Neither lists,
// replaces nor removes the other's containers or volumes, nor an
// unlabelled container/volume made before platform ids; an instance id
// that collides with the other platform's is refused, not taken over.
func TestPlatformsApart(t *testing.T) {
	cli := needDocker(t)
	pa := env.Fresh(t, "zone-1")
	env2, err := zktest.Start(1)
	if err != nil {
		testenv.Unavailable(t, "a second ZooKeeper", err)
	}
	t.Cleanup(env2.Stop)
	pb := env2.Fresh(t, "zone-1")
	needImages(t, cli)
	label := testLabel(t)
	testenv.CleanupDocker(t, cli, allocator.LabelTest, label)
	ctx := ctxT(t, 4*time.Minute)

	platA, _, err := pa.Admin.Platform(ctx)
	if err != nil {
		t.Fatal(err)
	}
	platB, _, err := pb.Admin.Platform(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if platA.ID == "" || platA.ID == platB.ID {
		t.Fatalf("platform ids %q / %q: want two distinct ids", platA.ID, platB.ID)
	}

	id := "t-" + engine.RandomToken(4)
	// An object from before platform ids, named for this allocator id.
	legacy := "legacy-" + engine.RandomToken(3)
	legacyLabels := map[string]string{allocator.LabelManaged: "true", allocator.LabelAllocator: id,
		allocator.LabelInstance: legacy, allocator.LabelDeployment: engine.NewID(), allocator.LabelTest: label}
	lc, err := cli.ContainerCreate(ctx, &container.Config{Image: allocator.ImageRef(testRepo, "8.17.0"), Labels: legacyLabels},
		nil, nil, nil, allocator.ContainerName(id, legacy))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: allocator.VolumeName(id, legacy), Labels: legacyLabels}); err != nil {
		t.Fatal(err)
	}

	// This very allocator's objects from before platform ids, for an
	// instance platform A assigns (same allocator, instance and
	// deployment ids): A adopts them, re-creating the container on the
	// same volume and network.
	adopt := engine.Instance{ID: "adopt-" + engine.RandomToken(3), DeploymentID: engine.NewID(), Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 128}
	adoptLabels := map[string]string{allocator.LabelManaged: "true", allocator.LabelAllocator: id,
		allocator.LabelInstance: adopt.ID, allocator.LabelDeployment: adopt.DeploymentID, allocator.LabelTest: label}
	oldNet, err := cli.NetworkCreate(ctx, allocator.NetworkName(adopt.DeploymentID), network.CreateOptions{Driver: "bridge",
		Labels: map[string]string{allocator.LabelManaged: "true", allocator.LabelDeployment: adopt.DeploymentID, allocator.LabelTest: label}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: allocator.VolumeName(id, adopt.ID), Labels: adoptLabels}); err != nil {
		t.Fatal(err)
	}
	oldAdopt, err := cli.ContainerCreate(ctx, &container.Config{Image: allocator.ImageRef(testRepo, "8.17.0"), Labels: adoptLabels},
		nil, nil, nil, allocator.ContainerName(id, adopt.ID))
	if err != nil {
		t.Fatal(err)
	}

	tune := func(cfg allocator.Config) allocator.Config {
		cfg.VolumeGrace = time.Second // collect quickly: a listed foreign volume would go
		return cfg
	}
	start(t, pa, env.Servers(), tune(dockerAllocator(t, id, label, t.TempDir())))
	start(t, pb, env2.Servers(), tune(dockerAllocator(t, id, label, t.TempDir())))
	consA, consB := pa.Connect(t, engine.RoleConstructor), pb.Connect(t, engine.RoleConstructor)

	inA := engine.Instance{ID: "a-" + engine.RandomToken(4), DeploymentID: engine.NewID(), Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 128}
	inB := engine.Instance{ID: "b-" + engine.RandomToken(4), DeploymentID: engine.NewID(), Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 128}
	assign(t, consA, id, inA)
	assign(t, consB, id, inB)
	stA := waitStatus(t, consA, id, inA.ID, 90*time.Second, "running and healthy", runningHealthy)
	waitStatus(t, consB, id, inB.ID, 90*time.Second, "running and healthy", runningHealthy)
	for in, plat := range map[string]string{inA.ID: platA.ID, inB.ID: platB.ID} {
		ci, ok := containerOf(t, cli, id, in)
		if !ok || ci.Config.Labels[allocator.LabelPlatform] != plat {
			t.Fatalf("container of %s: found %v, platform label %q, want %q", in, ok, ci.Config.Labels[allocator.LabelPlatform], plat)
		}
		v, err := cli.VolumeInspect(ctx, allocator.VolumeName(id, in))
		if err != nil || v.Labels[allocator.LabelPlatform] != plat {
			t.Fatalf("volume of %s: %v, platform label %q, want %q", in, err, v.Labels[allocator.LabelPlatform], plat)
		}
	}

	// Adoption: A's container for the legacy instance replaces the old
	// one, labelled with A's platform, on the old volume and network.
	assign(t, consA, id, adopt)
	stAdopt := waitStatus(t, consA, id, adopt.ID, 90*time.Second, "adopted, running and healthy", runningHealthy)
	if stAdopt.ContainerID == oldAdopt.ID {
		t.Fatal("the legacy container was kept as is: want it re-created")
	}
	ciAdopt, _ := containerOf(t, cli, id, adopt.ID)
	if ciAdopt.Config.Labels[allocator.LabelPlatform] != platA.ID {
		t.Fatalf("adopted container's platform label %q, want %q", ciAdopt.Config.Labels[allocator.LabelPlatform], platA.ID)
	}
	mounted := false
	for _, m := range ciAdopt.Mounts {
		mounted = mounted || (m.Name == allocator.VolumeName(id, adopt.ID) && m.Destination == "/data")
	}
	if _, onOld := ciAdopt.NetworkSettings.Networks[allocator.NetworkName(adopt.DeploymentID)]; !mounted || !onOld ||
		ciAdopt.NetworkSettings.Networks[allocator.NetworkName(adopt.DeploymentID)].NetworkID != oldNet.ID {
		t.Fatalf("adopted container: legacy volume mounted %v, networks %v (legacy network %s)", mounted, ciAdopt.NetworkSettings.Networks, oldNet.ID)
	}

	// Platform B is assigned an instance whose id is platform A's: the
	// names collide, B refuses and A's node is untouched.
	assign(t, consB, id, engine.Instance{ID: inA.ID, DeploymentID: inB.DeploymentID, Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 128})
	waitStatus(t, consB, id, inA.ID, 90*time.Second, "refused (another platform's name)", func(s engine.InstanceStatus) bool {
		return strings.Contains(s.Reason, "platform "+platA.ID)
	})

	// B's instance goes: B removes its container and, after the grace,
	// its volume; A's node, A's volume and the legacy objects stay.
	unassign(t, consB, id, inB.ID)
	unassign(t, consB, id, inA.ID)
	waitFor(t, 60*time.Second, "platform B's container and volume removed", func() (bool, string) {
		_, c := containerOf(t, cli, id, inB.ID)
		v := volumeExists(t, cli, allocator.VolumeName(id, inB.ID))
		return !c && !v, "container or volume still there"
	})
	ci, ok := containerOf(t, cli, id, inA.ID)
	if !ok || ci.ID != stA.ContainerID || !ci.State.Running {
		t.Fatalf("platform A's container after B's removals: found %v, id %s (was %s)", ok, ci.ID, stA.ContainerID)
	}
	if !volumeExists(t, cli, allocator.VolumeName(id, inA.ID)) {
		t.Fatal("platform B removed platform A's volume")
	}
	if code, _, err := httpDo("GET", "http://"+stA.Address+"/", ""); err != nil || code != 200 {
		t.Fatalf("platform A's node after B's removals: %d %v", code, err)
	}

	// A's instance goes: A removes its own; the legacy objects stay.
	unassign(t, consA, id, inA.ID)
	waitFor(t, 60*time.Second, "platform A's container and volume removed", func() (bool, string) {
		_, c := containerOf(t, cli, id, inA.ID)
		v := volumeExists(t, cli, allocator.VolumeName(id, inA.ID))
		return !c && !v, "container or volume still there"
	})
	if _, err := cli.ContainerInspect(ctx, lc.ID); cerrdefs.IsNotFound(err) {
		t.Fatal("the unlabelled (pre-platform-id) container was removed")
	}
	if !volumeExists(t, cli, allocator.VolumeName(id, legacy)) {
		t.Fatal("the unlabelled (pre-platform-id) volume was removed")
	}
}
