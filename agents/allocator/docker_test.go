package allocator_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"paddock/agents/allocator"
	"paddock/engine"
	"paddock/engine/testenv"
	"paddock/engine/zktest"
)

func dockerAllocator(t testing.TB, id, label, stateDir string) allocator.Config {
	return allocator.Config{
		ID: id, Zone: "zone-1", StateDir: stateDir, CapacityMB: 4096, ImageRepo: testRepo,
		Labels:        map[string]string{allocator.LabelTest: label},
		ProbeInterval: 300 * time.Millisecond, ProbeTimeout: time.Second, StopTimeout: 2 * time.Second,
		StartTimeout: 30 * time.Second, VolumeGrace: time.Hour,
	}
}

// TestNodeLifecycle: assignment → running healthy container serving on
// the reported port; docker kill → restarted and counted, documents
// intact; allocator restart → same container, same start time, served
// throughout; session expiry → re-registered, nodes untouched;
// unassign → removed, volume kept; reassign → data found.
func TestNodeLifecycle(t *testing.T) {
	cli := needDocker(t)
	p := env.Fresh(t, "zone-1")
	needImages(t, cli)
	label := testLabel(t)
	testenv.CleanupDocker(t, cli, allocator.LabelTest, label)
	cons := p.Connect(t, engine.RoleConstructor)
	ctx := ctxT(t, 5*time.Minute)

	id := "t-" + engine.RandomToken(4)
	stateDir := t.TempDir()
	part, err := zktest.NewPartition(env.Servers())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(part.Close) // after the stores using it are closed (cleanups run last-in first-out)
	cfg := dockerAllocator(t, id, label, stateDir)
	r := start(t, p, part.Addr(), cfg)

	// Registration: record with identity, parents, alive.
	var rec engine.Allocator
	if _, err := p.Admin.GetJSON(ctx, engine.AllocatorPath(id), &rec); err != nil {
		t.Fatal(err)
	}
	own, _ := allocator.OwnCredential(stateDir, id)
	if rec.Identity != own.DigestID() || rec.Zone != "zone-1" || rec.CapacityMB != 4096 || rec.Runtime != "docker" {
		t.Fatalf("record = %+v", rec)
	}
	var alive engine.AllocatorAlive
	if _, err := p.Admin.GetJSON(ctx, engine.AllocatorAlivePath(id), &alive); err != nil || !alive.DockerOK || alive.CapacityMB != 4096 {
		t.Fatalf("alive = %+v, %v", alive, err)
	}

	dep := engine.NewID()
	in := engine.Instance{ID: "i-" + engine.RandomToken(4), DeploymentID: dep, Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 256}
	assign(t, cons, id, in)
	st := waitStatus(t, cons, id, in.ID, 60*time.Second, "running and healthy", runningHealthy)
	if !strings.HasPrefix(st.Address, "127.0.0.1:") || st.Address != fmt.Sprintf("127.0.0.1:%d", st.HostPort) {
		t.Fatalf("address %q / host port %d", st.Address, st.HostPort)
	}
	base := "http://" + st.Address
	code, root, err := httpDo("GET", base+"/", "")
	if err != nil || code != 200 || root["cluster_name"] != dep || root["name"] != in.ID {
		t.Fatalf("GET / = %d %v %v", code, root, err)
	}
	if v, _ := root["version"].(map[string]any); v["number"] != "8.17.0" {
		t.Fatalf("version = %v", root["version"])
	}
	if code, _, err := httpDo("PUT", base+"/books/_doc/1?refresh=true", `{"title":"Dune"}`); err != nil || code != 201 {
		t.Fatalf("index doc: %d %v", code, err)
	}

	// The container carries the labels and the limits.
	ci, ok := containerOf(t, cli, id, in.ID)
	if !ok {
		t.Fatal("container not found")
	}
	for k, v := range map[string]string{allocator.LabelManaged: "true", allocator.LabelInstance: in.ID, allocator.LabelDeployment: dep,
		allocator.LabelKind: engine.KindElasticsearch, allocator.LabelAllocator: id, allocator.LabelTest: label} {
		if ci.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, ci.Config.Labels[k], v)
		}
	}
	if ci.ID != st.ContainerID {
		t.Fatalf("status container %s, docker %s", st.ContainerID, ci.ID)
	}

	// docker kill: restarted in place, counted, documents intact.
	firstStart := ci.State.StartedAt
	if err := cli.ContainerKill(ctx, ci.ID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, cons, id, in.ID, 60*time.Second, "restarted after docker kill", func(s engine.InstanceStatus) bool {
		return runningHealthy(s) && s.Restarts == 1
	})
	ci2, _ := containerOf(t, cli, id, in.ID)
	if ci2.ID != ci.ID || ci2.State.StartedAt == firstStart {
		t.Fatalf("after kill: container %s (was %s), started %s (was %s)", ci2.ID, ci.ID, ci2.State.StartedAt, firstStart)
	}
	base = "http://" + st.Address
	if code, doc, err := httpDo("GET", base+"/books/_doc/1", ""); err != nil || code != 200 || doc["found"] != true {
		t.Fatalf("document after container restart: %d %v %v", code, doc, err)
	}

	// A node that stops answering (paused) is restarted after
	// FailureThreshold failed probes, in place, and counted.
	if err := cli.ContainerPause(ctx, ci.ID); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, cons, id, in.ID, 60*time.Second, "restarted after failed health checks", func(s engine.InstanceStatus) bool {
		return runningHealthy(s) && s.Restarts == 2
	})
	if st.ContainerID != ci.ID {
		t.Fatalf("unhealthy restart replaced the container: %s, was %s", st.ContainerID, ci.ID)
	}

	// A higher generation asks for a restart: a new container on the same
	// data volume.
	in.Generation = 1
	if _, err := cons.Set(ctx, engine.InstancePath(id, in.ID), in, engine.AnyVersion); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, cons, id, in.ID, 60*time.Second, "recreated for generation 1", func(s engine.InstanceStatus) bool {
		return runningHealthy(s) && s.Generation == 1
	})
	if st.ContainerID == ci.ID {
		t.Fatal("generation bump did not replace the container")
	}
	base = "http://" + st.Address
	if code, doc, err := httpDo("GET", base+"/books/_doc/1", ""); err != nil || code != 200 || doc["found"] != true {
		t.Fatalf("document after generation restart: %d %v %v", code, doc, err)
	}
	ci2, _ = containerOf(t, cli, id, in.ID)

	// Allocator restart: nodes keep serving; adopted unchanged.
	var fails, probes atomic.Int64
	stopProbe := make(chan struct{})
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		for {
			select {
			case <-stopProbe:
				return
			case <-time.After(50 * time.Millisecond):
			}
			probes.Add(1)
			if code, _, err := httpDo("GET", base+"/books/_doc/1", ""); err != nil || code != 200 {
				fails.Add(1)
			}
		}
	}()
	r.stop(t)
	// The node serves while no allocator runs: let the prober see it.
	seen := probes.Load()
	waitFor(t, 10*time.Second, "requests served while the allocator is down", func() (bool, string) {
		return probes.Load() >= seen+5, fmt.Sprint(probes.Load() - seen)
	})
	r = start(t, p, part.Addr(), cfg)
	waitStatus(t, cons, id, in.ID, 30*time.Second, "adopted", runningHealthy)
	ci3, _ := containerOf(t, cli, id, in.ID)
	if ci3.ID != ci2.ID || ci3.State.StartedAt != ci2.State.StartedAt {
		t.Fatalf("allocator restart touched the container: %s@%s, was %s@%s", ci3.ID, ci3.State.StartedAt, ci2.ID, ci2.State.StartedAt)
	}
	if st, _ := readStatus(ctx, cons, id, in.ID); st.Restarts != 2 || st.Generation != 1 {
		t.Fatalf("after allocator restart: restarts %d generation %d, want 2 and 1", st.Restarts, st.Generation)
	}

	// Session expiry: cut the allocator off ZooKeeper until its session
	// expires; nodes serve throughout; it re-registers and reconciles.
	oldOwner := aliveOwner(t, p.Admin, id)
	part.Cut()
	waitFor(t, 30*time.Second, "the allocator's session to expire", func() (bool, string) {
		ok, _, err := p.Admin.Exists(ctx, engine.AllocatorAlivePath(id))
		return err == nil && !ok, fmt.Sprint(ok, err)
	})
	part.Restore()
	waitFor(t, 30*time.Second, "alive re-created under a new session", func() (bool, string) {
		o := aliveOwner(t, p.Admin, id)
		return o != 0 && o != oldOwner, fmt.Sprint(o)
	})
	close(stopProbe)
	<-probeDone
	if fails.Load() != 0 || probes.Load() < 10 {
		t.Fatalf("node failed %d of %d requests across allocator restart and session expiry", fails.Load(), probes.Load())
	}
	ci4, _ := containerOf(t, cli, id, in.ID)
	if ci4.ID != ci2.ID || ci4.State.StartedAt != ci2.State.StartedAt {
		t.Fatal("session expiry touched the container")
	}

	// Unassign: the container goes, its status goes, the volume stays.
	unassign(t, cons, id, in.ID)
	waitFor(t, 60*time.Second, "container removed", func() (bool, string) {
		_, ok := containerOf(t, cli, id, in.ID)
		return !ok, "container still there"
	})
	waitFor(t, 30*time.Second, "status removed", func() (bool, string) {
		ok, _, err := cons.Exists(ctx, engine.StatusPath(id, in.ID))
		return err == nil && !ok, fmt.Sprint(ok, err)
	})
	if !volumeExists(t, cli, allocator.VolumeName(id, in.ID)) {
		t.Fatal("data volume removed with the container: it must be kept for the grace period")
	}
	// Re-assign within the grace period: the data is back.
	assign(t, cons, id, in)
	st = waitStatus(t, cons, id, in.ID, 60*time.Second, "running again", runningHealthy)
	if code, doc, err := httpDo("GET", "http://"+st.Address+"/books/_doc/1", ""); err != nil || code != 200 || doc["found"] != true {
		t.Fatalf("document after re-assignment: %d %v %v", code, doc, err)
	}
	r.stop(t)
}

func aliveOwner(t testing.TB, s *engine.Store, id string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ok, st, err := s.Exists(ctx, engine.AllocatorAlivePath(id))
	if err != nil || !ok {
		return 0
	}
	return st.EphemeralOwner
}

// fixture is a fresh platform with one Docker allocator running.
type fixture struct {
	cli  *client.Client
	p    *zktest.Platform
	cons *engine.Store
	ctx  context.Context
	id   string
}

func dockerFixture(t *testing.T, capacityMB int, tune ...func(*allocator.Config)) fixture {
	t.Helper()
	f := fixture{cli: needDocker(t)}
	f.p = env.Fresh(t, "zone-1")
	needImages(t, f.cli)
	label := testLabel(t)
	testenv.CleanupDocker(t, f.cli, allocator.LabelTest, label)
	f.cons = f.p.Connect(t, engine.RoleConstructor)
	f.ctx = ctxT(t, 3*time.Minute)
	f.id = "t-" + engine.RandomToken(4)
	cfg := dockerAllocator(t, f.id, label, t.TempDir())
	cfg.CapacityMB = capacityMB
	for _, fn := range tune {
		fn(&cfg)
	}
	start(t, f.p, env.Servers(), cfg)
	return f
}

// TestContainerConfinement: limits in proportion to memory, dropped
// capabilities, read-only root, no Docker socket, and no way from a node
// to ZooKeeper, the Docker socket or another deployment's nodes.
func TestContainerConfinement(t *testing.T) {
	f := dockerFixture(t, 2048)
	cli, cons, ctx, id := f.cli, f.cons, f.ctx, f.id

	depA, depB := engine.NewID(), engine.NewID()
	small := engine.Instance{ID: "small-" + engine.RandomToken(3), DeploymentID: depA, Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 256}
	big := engine.Instance{ID: "big-" + engine.RandomToken(3), DeploymentID: depA, Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 512}
	other := engine.Instance{ID: "other-" + engine.RandomToken(3), DeploymentID: depB, Kind: engine.KindKibana, Version: "8.18.0", SizeMB: 128}
	for _, in := range []engine.Instance{small, big, other} {
		assign(t, cons, id, in)
	}
	for _, in := range []engine.Instance{small, big, other} {
		waitStatus(t, cons, id, in.ID, 90*time.Second, "running and healthy", runningHealthy)
	}
	cs, _ := containerOf(t, cli, id, small.ID)
	cb, _ := containerOf(t, cli, id, big.ID)
	hs, hb := cs.HostConfig, cb.HostConfig
	if hs.Memory != 256<<20 || hb.Memory != 512<<20 {
		t.Errorf("memory limits %d / %d", hs.Memory, hb.Memory)
	}
	if hb.CPUShares != 2*hs.CPUShares || hs.CPUShares == 0 {
		t.Errorf("CPU shares %d / %d: want 2:1", hb.CPUShares, hs.CPUShares)
	}
	if hb.NanoCPUs != 2*hs.NanoCPUs || hs.NanoCPUs == 0 {
		t.Errorf("NanoCPUs %d / %d: want 2:1", hb.NanoCPUs, hs.NanoCPUs)
	}
	info, _ := cli.Info(ctx)
	if want := int64(float64(512) / 2048 * float64(info.NCPU) * 1e9); hb.NanoCPUs != want {
		t.Errorf("NanoCPUs of the 512 MB node = %d, want size/capacity × %d CPUs = %d", hb.NanoCPUs, info.NCPU, want)
	}
	for _, ci := range []container.InspectResponse{cs, cb} {
		h := ci.HostConfig
		if len(h.CapDrop) != 1 || h.CapDrop[0] != "ALL" || len(h.CapAdd) != 0 {
			t.Errorf("%s: CapDrop %v CapAdd %v", ci.Name, h.CapDrop, h.CapAdd)
		}
		if !h.ReadonlyRootfs {
			t.Errorf("%s: root filesystem is writable", ci.Name)
		}
		if !contains(h.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: SecurityOpt %v", ci.Name, h.SecurityOpt)
		}
		if h.PidsLimit == nil || *h.PidsLimit <= 0 {
			t.Errorf("%s: no pids limit", ci.Name)
		}
		if h.Privileged || h.NetworkMode.IsHost() {
			t.Errorf("%s: privileged or host network", ci.Name)
		}
		if ci.Config.User != fmt.Sprint(allocator.NodeUID)+":"+fmt.Sprint(allocator.NodeUID) {
			t.Errorf("%s: user %q", ci.Name, ci.Config.User)
		}
		for _, m := range ci.Mounts {
			if strings.Contains(m.Source, "docker.sock") || strings.Contains(m.Destination, "docker.sock") {
				t.Errorf("%s mounts the Docker socket: %+v", ci.Name, m)
			}
		}
		for _, b := range h.PortBindings["9200/tcp"] {
			if b.HostIP != "127.0.0.1" {
				t.Errorf("%s: port published on %q", ci.Name, b.HostIP)
			}
		}
	}

	// From inside: ZooKeeper (loopback and the host through the bridge
	// gateway), the Docker socket and the other deployment are out of
	// reach; the deployment's own peer is reachable by alias.
	zkPort := env.Servers()[strings.LastIndex(env.Servers(), ":")+1:]
	gw := ""
	for _, n := range cs.NetworkSettings.Networks {
		gw = n.Gateway
	}
	if gw == "" {
		t.Fatal("node container has no network gateway")
	}
	unreachable := []string{"127.0.0.1:" + zkPort, gw + ":" + zkPort, "unix:///var/run/docker.sock", "unix:///run/docker.sock",
		allocator.Alias(other.ID) + ":9200"}
	if out, code := execIn(t, cli, cs.ID, append([]string{"/paddock", "node", "dial", "--timeout", "2s", "--expect-unreachable"}, unreachable...)); code != 0 {
		t.Fatalf("node reaches what it must not (exit %d):\n%s", code, out)
	}
	if out, code := execIn(t, cli, cs.ID, []string{"/paddock", "node", "dial", "--timeout", "2s", allocator.Alias(big.ID) + ":9200"}); code != 0 {
		t.Fatalf("node cannot reach its own deployment's peer (exit %d):\n%s", code, out)
	}
	// Snapshot on one node, restore on another, through the shared
	// snapshot directory mounted at /snapshots (written as the node user).
	ss, _ := readStatus(ctx, cons, id, small.ID)
	sb, _ := readStatus(ctx, cons, id, big.ID)
	repo := `{"type":"fs","settings":{"location":"/snapshots/` + depA + `"}}`
	for _, c := range []struct{ method, url, body string }{
		{"PUT", "http://" + ss.Address + "/books/_doc/1", `{"title":"Dune"}`},
		{"PUT", "http://" + ss.Address + "/_snapshot/found-snapshots", repo},
		{"PUT", "http://" + ss.Address + "/_snapshot/found-snapshots/snap-1?wait_for_completion=true", ""},
		{"PUT", "http://" + sb.Address + "/_snapshot/found-snapshots", repo},
		{"POST", "http://" + sb.Address + "/_snapshot/found-snapshots/snap-1/_restore", ""},
	} {
		if code, body, err := httpDo(c.method, c.url, c.body); err != nil || code >= 300 {
			t.Fatalf("%s %s: %d %v %v", c.method, c.url, code, body, err)
		}
	}
	if code, doc, err := httpDo("GET", "http://"+sb.Address+"/books/_doc/1", ""); err != nil || code != 200 || doc["found"] != true {
		t.Fatalf("restored document: %d %v %v", code, doc, err)
	}

	// Kibana kind answers its status API.
	so, _ := readStatus(ctx, cons, id, other.ID)
	if code, body, err := httpDo("GET", "http://"+so.Address+"/api/status", ""); err != nil || code != 200 || body["status"] == nil {
		t.Fatalf("kibana /api/status: %d %v %v", code, body, err)
	}
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

// execIn runs a command in a container and returns its output and exit
// code.
func execIn(t testing.TB, cli *client.Client, id string, cmd []string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("exec create: %v", err)
	}
	att, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("exec attach: %v", err)
	}
	defer att.Close()
	var out strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := att.Reader.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	// The output ends when the command does; its exit code follows.
	var code int
	testenv.EventuallyDetail(t, 30*time.Second, "the exec to end", func() (bool, string) {
		res, err := cli.ContainerExecInspect(ctx, ex.ID)
		if err != nil {
			t.Fatalf("exec inspect: %v", err)
		}
		code = res.ExitCode
		return !res.Running, "running"
	})
	return out.String(), code
}

// TestBadInputKeepsServing: assignments that cannot run fail with a
// clear reason in their status; the healthy node keeps serving.
func TestBadInputKeepsServing(t *testing.T) {
	f := dockerFixture(t, 1024)
	cli, p, cons, ctx, id := f.cli, f.p, f.cons, f.ctx, f.id

	dep := engine.NewID()
	good := engine.Instance{ID: "good", DeploymentID: dep, Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 256}
	assign(t, cons, id, good)
	gst := waitStatus(t, cons, id, good.ID, 60*time.Second, "running", runningHealthy)

	assign(t, cons, id, engine.Instance{ID: "huge", DeploymentID: dep, Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 4096})
	assign(t, cons, id, engine.Instance{ID: "nover", DeploymentID: dep, Kind: engine.KindElasticsearch, Version: "9.9.9", SizeMB: 128})
	assign(t, cons, id, engine.Instance{ID: "nokind", DeploymentID: dep, Kind: "logstash", Version: "8.17.0", SizeMB: 128})
	if err := cons.Create(ctx, engine.InstancePath(id, "garbage"), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	for iid, want := range map[string]string{
		"huge":    "does not fit",
		"nover":   "paddock image build --version 9.9.9",
		"nokind":  "unknown kind",
		"garbage": "malformed instance record",
	} {
		waitStatus(t, cons, id, iid, 60*time.Second, "failed with "+want, func(s engine.InstanceStatus) bool {
			return s.State == engine.StateFailed && strings.Contains(s.Reason, want) && !s.Healthy
		})
	}
	if _, ok := containerOf(t, cli, id, "huge"); ok {
		t.Fatal("an instance over capacity got a container")
	}
	st, _ := readStatus(ctx, cons, id, good.ID)
	if !runningHealthy(st) || st.ContainerID != gst.ContainerID || st.Restarts != 0 {
		t.Fatalf("good node disturbed: %+v", st)
	}
	if code, _, err := httpDo("GET", "http://"+st.Address+"/_cluster/health", ""); err != nil || code != 200 {
		t.Fatalf("good node not serving: %d %v", code, err)
	}
	// A live capacity raise admits the big one.
	if err := p.Admin.Put(ctx, engine.AllocatorSettingsPath(id), engine.AllocatorSettings{CapacityMB: 8192}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "record capacity updated live", func() (bool, string) {
		var rec engine.Allocator
		_, err := p.Admin.GetJSON(ctx, engine.AllocatorPath(id), &rec)
		return err == nil && rec.CapacityMB == 8192, fmt.Sprint(rec.CapacityMB, err)
	})
	waitStatus(t, cons, id, "huge", 60*time.Second, "admitted after the capacity raise", runningHealthy)
	// The CPU quota of the running node follows the capacity: 256/8192 of
	// the host's CPUs now.
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := allocator.ComputeResources(256, 8192, info.NCPU).NanoCPUs
	waitFor(t, 30*time.Second, "CPU quota updated live", func() (bool, string) {
		ci, _ := containerOf(t, cli, id, good.ID)
		return ci.HostConfig.NanoCPUs == want, fmt.Sprint(ci.HostConfig.NanoCPUs, " want ", want)
	})
	if st, _ := readStatus(ctx, cons, id, good.ID); st.ContainerID != gst.ContainerID || st.Restarts != 0 || !runningHealthy(st) {
		t.Fatalf("the CPU update disturbed the node: %+v", st)
	}
}

// flakyRuntime is the real Docker runtime with the engine's API made to
// fail on demand (probes still reach the nodes, as they do when only
// the Docker daemon is down).
type flakyRuntime struct {
	allocator.Runtime
	down atomic.Bool
}

var errEngineDown = errors.New("cannot connect to the Docker daemon at unix:///var/run/docker.sock (injected)")

func (f *flakyRuntime) List(ctx context.Context) ([]allocator.Workload, error) {
	if f.down.Load() {
		return nil, errEngineDown
	}
	return f.Runtime.List(ctx)
}

func (f *flakyRuntime) Create(ctx context.Context, s allocator.Spec) (allocator.Workload, error) {
	if f.down.Load() {
		return allocator.Workload{}, errEngineDown
	}
	return f.Runtime.Create(ctx, s)
}

func (f *flakyRuntime) Ping(ctx context.Context) error {
	if f.down.Load() {
		return errEngineDown
	}
	return f.Runtime.Ping(ctx)
}

// TestDockerUnreachable: while the engine does not answer, the allocator
// says so (alive and statuses), keeps probing and reporting its nodes,
// and catches up when the engine is back.
func TestDockerUnreachable(t *testing.T) {
	flaky := &flakyRuntime{}
	f := dockerFixture(t, 4096, func(cfg *allocator.Config) {
		cfg.NewRuntime = func(c allocator.Config) (allocator.Runtime, error) {
			d, err := allocator.NewDocker(allocator.DockerConfig{AllocatorID: c.ID, PlatformID: c.PlatformID, PublishIP: c.PublishIP, SnapshotDir: c.SnapshotDir,
				ImageRepo: c.ImageRepo, Labels: c.Labels, Logger: c.Logger})
			flaky.Runtime = d
			return flaky, err
		}
	})
	cons, ctx, id := f.cons, f.ctx, f.id

	dep := engine.NewID()
	good := engine.Instance{ID: "good", DeploymentID: dep, Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 256}
	assign(t, cons, id, good)
	gst := waitStatus(t, cons, id, good.ID, 60*time.Second, "running", runningHealthy)

	flaky.down.Store(true)
	waitFor(t, 30*time.Second, "alive to report the engine down", func() (bool, string) {
		var alive engine.AllocatorAlive
		_, err := cons.GetJSON(ctx, engine.AllocatorAlivePath(id), &alive)
		return err == nil && !alive.DockerOK && strings.Contains(alive.Error, "Docker daemon"), fmt.Sprintf("%+v %v", alive, err)
	})
	waitStatus(t, cons, id, good.ID, 30*time.Second, "still running, with the engine error", func(s engine.InstanceStatus) bool {
		return runningHealthy(s) && strings.Contains(s.Reason, "container runtime unreachable") && s.ContainerID == gst.ContainerID
	})
	assign(t, cons, id, engine.Instance{ID: "late", DeploymentID: dep, Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 256})
	waitStatus(t, cons, id, "late", 30*time.Second, "waiting on the engine", func(s engine.InstanceStatus) bool {
		return !s.Healthy && strings.Contains(s.Reason, "container runtime unreachable")
	})
	if code, _, err := httpDo("GET", "http://"+gst.Address+"/", ""); err != nil || code != 200 {
		t.Fatalf("node not serving while the engine is down: %d %v", code, err)
	}

	flaky.down.Store(false)
	waitStatus(t, cons, id, "late", 60*time.Second, "created once the engine answers", runningHealthy)
	waitStatus(t, cons, id, good.ID, 30*time.Second, "error cleared", func(s engine.InstanceStatus) bool {
		return runningHealthy(s) && s.Reason == "" && s.ContainerID == gst.ContainerID
	})
	waitFor(t, 30*time.Second, "alive to report the engine back", func() (bool, string) {
		var alive engine.AllocatorAlive
		_, err := cons.GetJSON(ctx, engine.AllocatorAlivePath(id), &alive)
		return err == nil && alive.DockerOK && alive.Error == "" && alive.Healthy == 2, fmt.Sprintf("%+v %v", alive, err)
	})
}

// TestRemovalIsGracefulAndVolumesExpire: an unassigned node gets SIGTERM
// and exits cleanly (code 0) before its container is removed; its data
// volume outlives it for the grace period, then goes.
func TestRemovalIsGracefulAndVolumesExpire(t *testing.T) {
	f := dockerFixture(t, 2048, func(cfg *allocator.Config) { cfg.VolumeGrace = 3 * time.Second })
	cli, cons, ctx, id := f.cli, f.cons, f.ctx, f.id
	in := engine.Instance{ID: "gone", DeploymentID: engine.NewID(), Kind: engine.KindElasticsearch, Version: "8.18.0", SizeMB: 256}
	assign(t, cons, id, in)
	st := waitStatus(t, cons, id, in.ID, 60*time.Second, "running", runningHealthy)

	evctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Since replays what happened from now on, whenever the subscription
	// reaches the engine.
	since := strconv.FormatInt(time.Now().Unix(), 10)
	unassign(t, cons, id, in.ID)
	msgs, errs := cli.Events(evctx, events.ListOptions{Since: since, Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)), filters.Arg("container", st.ContainerID), filters.Arg("event", "die"))})
	select {
	case m := <-msgs:
		if code := m.Actor.Attributes["exitCode"]; code != "0" {
			t.Fatalf("node exited with code %s on removal: SIGTERM must stop it cleanly", code)
		}
	case err := <-errs:
		t.Fatalf("docker events: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no die event within 30s of the unassignment")
	}
	waitFor(t, 30*time.Second, "container removed", func() (bool, string) {
		_, ok := containerOf(t, cli, id, in.ID)
		return !ok, "container still there"
	})
	vol := allocator.VolumeName(id, in.ID)
	if !volumeExists(t, cli, vol) {
		t.Fatal("volume removed with its container, before the grace period")
	}
	waitFor(t, 30*time.Second, "volume removed after the grace period", func() (bool, string) {
		return !volumeExists(t, cli, vol), "volume still there"
	})
}

// An image built from another binary under the same tag is rebuilt: a
// host whose paddock binary changed must not run nodes of the old build.
func TestImageRebuiltForAnotherBinary(t *testing.T) {
	cli := needDocker(t)
	needImages(t, cli)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ref := allocator.ImageRef(testRepo, testVersions[0])
	current, err := allocator.ImageUpToDate(ctx, cli, ref, binPath)
	if err != nil || !current {
		t.Fatalf("image built from binPath: up to date = %v, %v; want true", current, err)
	}
	// The same program with one more byte: another build as far as the
	// digest goes, still a static ELF.
	other := filepath.Join(t.TempDir(), "paddock")
	b, err := os.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, append(b, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if current, err := allocator.ImageUpToDate(ctx, cli, ref, other); err != nil || current {
		t.Fatalf("image against another binary: up to date = %v, %v; want false", current, err)
	}
	if current, err := allocator.ImageUpToDate(ctx, cli, ref, ""); err != nil || !current {
		t.Fatalf("no binary to compare: up to date = %v, %v; want true", current, err)
	}
	if current, err := allocator.ImageUpToDate(ctx, cli, allocator.ImageRef(testRepo, "0.0.0-missing"), binPath); err != nil || current {
		t.Fatalf("missing image: up to date = %v, %v; want false, nil", current, err)
	}
	d, err := allocator.NewDocker(allocator.DockerConfig{PlatformID: "image-test", ImageRepo: testRepo, NodeBinary: other, Labels: map[string]string{allocator.LabelTest: "allocator"}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.EnsureImage(ctx, testVersions[0]); err != nil {
		t.Fatal(err)
	}
	if current, err := allocator.ImageUpToDate(ctx, cli, ref, other); err != nil || !current {
		t.Fatalf("after EnsureImage with the other binary: up to date = %v, %v; want true", current, err)
	}
}

// TestDeploymentNetworkCreatedOnceUnderConcurrency: two allocators of
// one Docker engine place a deployment's nodes at the same moment; both
// must join the same network (Docker alone makes duplicates, and a
// creator may not see the other's yet: TestDockerEndToEnd's nodes then
// could not reach each other).
func TestDeploymentNetworkCreatedOnceUnderConcurrency(t *testing.T) {
	cli := needDocker(t)
	needImages(t, cli)
	label := "allocator-netlock"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		f := filters.NewArgs(filters.Arg("label", allocator.LabelTest+"="+label))
		ns, _ := cli.NetworkList(ctx, network.ListOptions{Filters: f})
		for _, n := range ns {
			_ = cli.NetworkRemove(ctx, n.ID)
		}
		cs, _ := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		for _, c := range cs {
			_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}
	})
	platform := "netlock-" + engine.RandomToken(3)
	var ds []*allocator.Docker
	for _, id := range []string{"netlock-a", "netlock-b"} {
		d, err := allocator.NewDocker(allocator.DockerConfig{AllocatorID: id, PlatformID: platform, ImageRepo: testRepo,
			Labels: map[string]string{allocator.LabelTest: label}})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		ds = append(ds, d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	image := allocator.ImageRef(testRepo, testVersions[0])
	for round := range 6 {
		dep := fmt.Sprintf("%s-%d", platform, round)
		ids := make([]string, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, d := range ds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids[i], errs[i] = d.EnsureNetwork(ctx, dep, image)
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: %v, %v", round, errs[0], errs[1])
		}
		ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", allocator.NetworkName(dep)))})
		if err != nil {
			t.Fatal(err)
		}
		if ids[0] != ids[1] || len(ns) != 1 {
			t.Fatalf("round %d: the allocators joined %s and %s; %d networks named %s", round, ids[0], ids[1], len(ns), allocator.NetworkName(dep))
		}
	}
	// No lock container is left behind.
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", allocator.LabelLock))})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Labels[allocator.LabelPlatform] == platform {
			t.Fatalf("lock container left: %v", c.Names)
		}
	}
}
