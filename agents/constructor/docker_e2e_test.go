package constructor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"paddock/agents/allocator"
	"paddock/engine"
	"paddock/engine/testenv"
)

// e2eRepo keeps this package's node images apart from a live platform's
// and from the allocator tests' images.
var e2eRepo = fmt.Sprintf("paddock-ctest/node-%d", os.Getpid())

var (
	e2eOnce sync.Once
	e2eErr  error
)

// needDocker returns a Docker client: skips without a Docker engine,
// fails under CI=true.
func needDocker(t *testing.T) *client.Client {
	t.Helper()
	return testenv.Docker(t)
}

// needImages builds a static paddock binary and the node images of both
// platform versions from it, once per package run.
func needImages(t *testing.T, cli *client.Client) {
	t.Helper()
	e2eOnce.Do(func() {
		dir, err := os.MkdirTemp("", "paddock-ctest-bin-")
		if err != nil {
			e2eErr = err
			return
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "paddock")
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			e2eErr = err
			return
		}
		for _, pkg := range []string{".", "./agents/node/testdata/nodebin"} {
			cmd := exec.Command("go", "build", "-o", bin, pkg)
			cmd.Dir = filepath.Dir(strings.TrimSpace(string(out)))
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			var b []byte
			if b, e2eErr = cmd.CombinedOutput(); e2eErr == nil {
				break
			}
			e2eErr = &buildError{pkg: pkg, out: string(b), err: e2eErr}
		}
		if e2eErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		for _, v := range engine.DefaultVersions {
			if e2eErr = allocator.BuildImage(ctx, cli, allocator.BuildOptions{Binary: bin, Repo: e2eRepo, Version: v,
				Labels: map[string]string{allocator.LabelTest: "constructor"}}, nil); e2eErr != nil {
				return
			}
		}
	})
	if e2eErr != nil {
		t.Fatalf("build node images: %v", e2eErr)
	}
}

type buildError struct {
	pkg, out string
	err      error
}

func (e *buildError) Error() string { return "go build " + e.pkg + ": " + e.err.Error() + "\n" + e.out }

func removeE2EImages() {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, v := range engine.DefaultVersions {
		_, _ = cli.ImageRemove(ctx, allocator.ImageRef(e2eRepo, v), image.RemoveOptions{Force: true, PruneChildren: true})
	}
}

// TestDockerEndToEnd: three real allocators on Docker in three zones, a
// 2-zone deployment created, then resized and upgraded while a client
// writes through the node API: every acknowledged write survives on
// every node of the final topology, the old containers go.
func TestDockerEndToEnd(t *testing.T) {
	cli := needDocker(t)
	env.Need(t)
	needImages(t, cli)
	label := "constructor-e2e-" + engine.RandomToken(3)
	testenv.CleanupDocker(t, cli, allocator.LabelTest, label)
	h := newHarness(t, "zone-1", "zone-2", "zone-3")
	snaps := t.TempDir()
	if err := os.Chmod(snaps, 0o777); err != nil { // nodes run as a numeric non-root user
		t.Fatal(err)
	}
	for i, zone := range []string{"zone-1", "zone-2", "zone-3"} {
		id := "docker-" + zone
		dir := t.TempDir()
		own, err := allocator.OwnCredential(dir, id)
		if err != nil {
			t.Fatal(err)
		}
		s := h.p.ConnectAllocator(t, id, own)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := allocator.Run(ctx, allocator.Config{ID: id, Zone: zone, CapacityMB: 4096, StateDir: dir, SnapshotDir: snaps,
				Runtime: allocator.RuntimeDocker, Store: s, ImageRepo: e2eRepo, Labels: map[string]string{allocator.LabelTest: label},
				ProbeInterval: 500 * time.Millisecond, StopTimeout: 5 * time.Second, Logger: quiet()}); err != nil {
				t.Errorf("allocator %d: %v", i, err)
			}
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	h.waitFor("three allocators alive", 60*time.Second, func() bool {
		n := 0
		for _, z := range []string{"zone-1", "zone-2", "zone-3"} {
			if ok, _, _ := h.admin.Exists(context.Background(), engine.AllocatorAlivePath("docker-"+z)); ok {
				n++
			}
		}
		return n == 3
	})
	h.startConstructor("c1", NewHTTPNodes(), func(c *Config) { c.HealthyTimeout = 2 * time.Minute; c.PauseSettle = 300 * time.Millisecond })

	// With credentials: the nodes enforce them, the allocators probe and
	// the constructor (peers, snapshots, restores) and the nodes
	// (replication) call as the platform; the writer is the customer.
	id, planID, user := h.createSecureDeployment(spec("8.17.0", 512, 2))
	if p := h.waitPlan(id, planID, 3*time.Minute); p.Status != engine.PlanSuccess {
		t.Fatalf("create: %s: %s", p.Status, stepNames(p))
	}
	before := checkRunning(t, h, id, 2)
	if r, _ := h.route(id); len(r.Backends) > 0 {
		if err := nodeHTTP(t, "GET", r.Backends[0].Address, "/", "", nil); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("anonymous request to a node = %v, want 401", err)
		}
	}
	// Two containers run, labelled with their deployment.
	cs, err := cli.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", allocator.LabelTest+"="+label), filters.Arg("label", "paddock.deployment="+id))})
	if err != nil || len(cs) != 2 {
		t.Fatalf("%d containers for the deployment (%v), want 2", len(cs), err)
	}

	w := &writer{h: h, id: id, user: user}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	h.waitFor("some writes", 30*time.Second, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.acked) > 20 })

	resize := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 1024, 2)})
	if p := h.waitPlan(id, resize, 3*time.Minute); p.Status != engine.PlanSuccess {
		t.Fatalf("resize: %s: %s", p.Status, stepNames(p))
	} else {
		checkByRecovery(t, "resize", p) // the containers recover from each other
	}
	upgrade := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.18.0", 1024, 2)})
	if p := h.waitPlan(id, upgrade, 3*time.Minute); p.Status != engine.PlanSuccess {
		t.Fatalf("upgrade: %s: %s", p.Status, stepNames(p))
	} else {
		checkByRecovery(t, "upgrade", p)
	}
	after := checkRunning(t, h, id, 2)
	h.waitFor("a few writes on the new nodes", 30*time.Second, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.acked) > 60
	})
	cancel()
	<-done
	w.checkNoLoss(t)
	for _, in := range after.Instances {
		if in.Version != "8.18.0" || in.SizeMB != 1024 {
			t.Fatalf("instance %+v not resized/upgraded", in)
		}
	}
	// The old containers are removed by their allocators.
	h.waitFor("old containers removed", 60*time.Second, func() bool {
		for _, old := range before.Instances {
			cs, _ := cli.ContainerList(context.Background(), container.ListOptions{All: true,
				Filters: filters.NewArgs(filters.Arg("label", "paddock.instance="+old.ID))})
			if len(cs) > 0 {
				return false
			}
		}
		return true
	})
}
