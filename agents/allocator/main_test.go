package allocator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"paddock/agents/allocator"
	"paddock/engine"
	"paddock/engine/testenv"
	"paddock/engine/zktest"
)

var env *zktest.Env

// testRepo keeps test images apart from a live platform's paddock/node
// and from other test runs on this Docker host (one repository per test
// process: a run in another checkout builds from another binary).
var testRepo = fmt.Sprintf("paddock-test/node-%d", os.Getpid())

var testVersions = []string{"8.17.0", "8.18.0"}

func TestMain(m *testing.M) {
	code := zktest.Main(m, 1, &env)
	removeTestImages()
	if dir := binDir; dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

var (
	imagesOnce sync.Once
	imagesErr  error
	binDir     string
	binPath    string
)

// needDocker returns a Docker client, skipping (failing under CI=true)
// when the engine is unreachable.
func needDocker(t testing.TB) *client.Client {
	t.Helper()
	return testenv.Docker(t)
}

// needImages builds a static paddock binary once and the test images
// paddock-test/node:<version> from it.
func needImages(t testing.TB, cli *client.Client) {
	t.Helper()
	imagesOnce.Do(func() {
		binDir, imagesErr = os.MkdirTemp("", "paddock-alloc-bin-")
		if imagesErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "paddock")
		root, err := moduleRoot()
		if err != nil {
			imagesErr = err
			return
		}
		// The real binary; when the tree is mid-change elsewhere and does
		// not build, the node-only binary (same node code, same CLI).
		var firstErr []byte
		for _, pkg := range []string{".", "./agents/node/testdata/nodebin"} {
			cmd := exec.Command("go", "build", "-o", binPath, pkg)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			out, err := cmd.CombinedOutput()
			if err == nil {
				if pkg != "." {
					fmt.Fprintf(os.Stderr, "allocator tests: paddock does not build, using the node-only binary:\n%s\n", firstErr)
				}
				break
			}
			if pkg != "." {
				imagesErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
			firstErr = out
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		for _, v := range testVersions {
			if err := allocator.BuildImage(ctx, cli, allocator.BuildOptions{Binary: binPath, Repo: testRepo, Version: v,
				Labels: map[string]string{allocator.LabelTest: "allocator"}}, nil); err != nil {
				imagesErr = err
				return
			}
		}
	})
	if imagesErr != nil {
		t.Fatalf("build test images: %v", imagesErr)
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

func removeTestImages() {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, v := range testVersions {
		_, _ = cli.ImageRemove(ctx, allocator.ImageRef(testRepo, v), image.RemoveOptions{Force: true, PruneChildren: true})
	}
}

func testLabel(t testing.TB) string {
	return strings.NewReplacer("/", "-", " ", "-").Replace(strings.ToLower(t.Name())) + "-" + engine.RandomToken(3)
}

func logger() *slog.Logger {
	lv := slog.LevelWarn
	if os.Getenv("PADDOCK_TEST_LOG") != "" {
		lv = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
}

// runner runs one allocator in the background.
type runner struct {
	cfg    allocator.Config
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error
}

func (r *runner) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("allocator returned %v", r.err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("allocator did not stop within 60s of its context ending")
	}
}

// start runs an allocator with cfg (ID, StateDir... filled by the
// caller) on a store of its own, and waits until it is ready.
func start(t testing.TB, p *zktest.Platform, servers string, cfg allocator.Config) *runner {
	t.Helper()
	own, err := allocator.OwnCredential(cfg.StateDir, cfg.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store == nil {
		cfg.Store = zktest.ConnectTo(t, servers, engine.RoleAllocator, p.Creds[engine.RoleAllocator], &own)
	}
	if cfg.Logger == nil {
		cfg.Logger = logger()
	}
	ready := make(chan struct{})
	cfg.OnReady = func(string) { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{cfg: cfg, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = allocator.Run(ctx, cfg)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(60 * time.Second):
		}
	})
	select {
	case <-ready:
	case <-r.done:
		t.Fatalf("allocator %s stopped before ready: %v", cfg.ID, r.err)
	case <-time.After(60 * time.Second):
		t.Fatalf("allocator %s not ready within 60s", cfg.ID)
	}
	return r
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	testenv.EventuallyDetail(t, d, what, cond)
}

func readStatus(ctx context.Context, s *engine.Store, alloc, iid string) (engine.InstanceStatus, error) {
	var st engine.InstanceStatus
	_, err := s.GetJSON(ctx, engine.StatusPath(alloc, iid), &st)
	return st, err
}

// waitStatus waits until the instance's status znode satisfies pred.
func waitStatus(t testing.TB, s *engine.Store, alloc, iid string, d time.Duration, what string, pred func(engine.InstanceStatus) bool) engine.InstanceStatus {
	t.Helper()
	var st engine.InstanceStatus
	waitFor(t, d, iid+" "+what, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		st, err = readStatus(ctx, s, alloc, iid)
		if err != nil {
			return false, err.Error()
		}
		b, _ := json.Marshal(st)
		return pred(st), string(b)
	})
	return st
}

func runningHealthy(st engine.InstanceStatus) bool {
	return st.State == engine.StateRunning && st.Healthy && st.Address != "" && st.HostPort > 0
}

func assign(t testing.TB, cons *engine.Store, alloc string, in engine.Instance) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	if in.CreatedAt.IsZero() {
		in.CreatedAt = time.Now().UTC()
	}
	if err := cons.Create(ctx, engine.InstancePath(alloc, in.ID), in); err != nil {
		t.Fatalf("assign %s: %v", in.ID, err)
	}
}

func unassign(t testing.TB, cons *engine.Store, alloc, iid string) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	if err := cons.Delete(ctx, engine.InstancePath(alloc, iid), engine.AnyVersion); err != nil {
		t.Fatalf("unassign %s: %v", iid, err)
	}
}

// httpDo sends a request to a node and decodes the JSON answer.
func httpDo(method, url, body string) (int, map[string]any, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, nil
}

func containerOf(t testing.TB, cli *client.Client, alloc, iid string) (container.InspectResponse, bool) {
	t.Helper()
	ci, err := cli.ContainerInspect(context.Background(), allocator.ContainerName(alloc, iid))
	if cerrdefs.IsNotFound(err) {
		return ci, false
	}
	if err != nil {
		t.Fatalf("inspect %s: %v", iid, err)
	}
	return ci, true
}

func volumeExists(t testing.TB, cli *client.Client, name string) bool {
	t.Helper()
	_, err := cli.VolumeInspect(context.Background(), name)
	if err != nil && !cerrdefs.IsNotFound(err) {
		t.Fatalf("inspect volume %s: %v", name, err)
	}
	return err == nil
}
