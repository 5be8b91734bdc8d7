package constructor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/s3server/s3test"
	"paddock/engine/service"
)

func TestDecideSnapshot(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	created := now.Add(-2 * time.Hour)
	rec := func(status string, ago time.Duration) engine.SnapshotRecord {
		return engine.SnapshotRecord{Name: engine.SnapshotName(now.Add(-ago)), Status: status, CreatedAt: now.Add(-ago)}
	}
	cases := []struct {
		name    string
		p       engine.SnapshotPolicy
		recs    []engine.SnapshotRecord
		created time.Time
		take    bool
		isNew   bool
	}{
		{"new deployment, interval not passed", engine.SnapshotPolicy{}, nil, now.Add(-10 * time.Minute), false, false},
		{"never snapshotted, interval passed", engine.SnapshotPolicy{}, nil, created, true, true},
		{"last attempt recent", engine.SnapshotPolicy{}, []engine.SnapshotRecord{rec(engine.SnapshotSuccess, 10*time.Minute)}, created, false, false},
		{"last attempt failed long ago", engine.SnapshotPolicy{}, []engine.SnapshotRecord{rec(engine.SnapshotFailed, 31*time.Minute)}, created, true, true},
		{"short interval", engine.SnapshotPolicy{IntervalSeconds: 60}, []engine.SnapshotRecord{rec(engine.SnapshotSuccess, 61*time.Second)}, created, true, true},
		{"asked for, even when disabled", engine.SnapshotPolicy{Disabled: true}, []engine.SnapshotRecord{rec(engine.SnapshotRequested, 0)}, created, true, false},
		{"one running: nothing else", engine.SnapshotPolicy{IntervalSeconds: 1}, []engine.SnapshotRecord{rec(engine.SnapshotInProgress, time.Hour)}, created, false, false},
		{"disabled", engine.SnapshotPolicy{Disabled: true}, nil, created, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decideSnapshot(c.p, c.recs, c.created, now)
			if (d.Take != nil) != c.take || d.New != c.isNew {
				t.Fatalf("decision = %+v, want take %v new %v", d, c.take, c.isNew)
			}
			if d.New && (d.Take.Trigger != engine.TriggerSchedule || d.Take.Repository != engine.DefaultRepository) {
				t.Fatalf("scheduled record = %+v", d.Take)
			}
		})
	}
}

// TestSnapshotSchedule runs the scheduler against real nodes (in-process,
// fs repository in the shared directory) on real ZooKeeper: scheduled
// snapshots appear and retention removes the old ones, a failing
// repository is recorded and counted and the next snapshot succeeds once
// it is back, a manual snapshot is restored into the same deployment
// after a delete, and into a new deployment (create --restore-from).
func TestSnapshotSchedule(t *testing.T) {
	h := newHarness(t, "zone-1")
	h.startAllocator("a1", "zone-1", 8192, nil)
	_, maddr := h.startConstructorWithMetrics("c1", nil, nil)
	ctx := ctxT(t, 3*time.Minute)
	var logs bytes.Buffer
	svc := service.New(h.admin, service.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if _, err := svc.PutRepository(ctx, "default", service.RepositoryConfig{Type: "fs", Settings: service.RepositorySettings{Location: "/mnt/shared"}}, "test"); err != nil {
		t.Fatal(err)
	}
	id, planID := h.createDeployment(spec("8.17.0", 1024, 1))
	if p := h.waitPlan(id, planID, 60*time.Second); p.Status != engine.PlanSuccess {
		t.Fatalf("create: %s %s", p.Status, stepNames(p))
	}
	addr := h.instanceStatus(h.deployment(id).Instances[0]).Address
	for i := range 5 {
		nodeDo(t, addr, "PUT", fmt.Sprintf("/orders/_doc/%d?refresh=true", i), `{"n":1}`)
	}
	one, keep, days := 1, 2, 1
	if _, err := svc.SetSnapshotPolicy(ctx, id, service.SnapshotPolicyRequest{IntervalSecs: &one, KeepLast: &keep, KeepDailyDays: &days}, "test"); err != nil {
		t.Fatal(err)
	}
	list := func() []engine.SnapshotRecord {
		v, err := svc.ListSnapshots(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return v.Snapshots
	}
	// Scheduled snapshots come and the first ones go.
	var first string
	h.waitFor("a first scheduled snapshot", 30*time.Second, func() bool {
		for _, r := range list() {
			if r.Status == engine.SnapshotSuccess {
				first = r.Name
				return r.Trigger == engine.TriggerSchedule && r.Indices == 1 && r.DurationMS >= 0 && r.Node != ""
			}
		}
		return false
	})
	h.waitFor("retention to remove the first snapshot", 60*time.Second, func() bool {
		rs := list()
		for _, r := range rs {
			if r.Name == first {
				return false
			}
		}
		return len(rs) > 0
	})
	good := 0
	for _, r := range list() {
		if r.Status == engine.SnapshotSuccess {
			good++
		}
	}
	if good > keep {
		t.Fatalf("%d successful snapshots kept, policy keeps %d: %+v", good, keep, list())
	}
	repoDir := filepath.Join(h.snapshots, "repositories", "default", id)
	if _, err := os.Stat(filepath.Join(repoDir, first)); !os.IsNotExist(err) {
		t.Fatalf("retention left the first snapshot on the node's repository (stat: %v)", err)
	}

	// The repository breaks: the failure is recorded and counted; once it
	// is back the next one succeeds.
	missing := "gone"
	if _, err := svc.SetSnapshotPolicy(ctx, id, service.SnapshotPolicyRequest{Repository: &missing}, "test"); err != nil {
		t.Fatal(err)
	}
	var failed engine.SnapshotRecord
	h.waitFor("a failed snapshot", 30*time.Second, func() bool {
		for _, r := range list() {
			if r.Status == engine.SnapshotFailed {
				failed = r
				return true
			}
		}
		return false
	})
	if !strings.Contains(failed.Error, "repository gone does not exist") {
		t.Fatalf("failure recorded as %q", failed.Error)
	}
	if n := metricLabeled(t, maddr, "paddock_snapshot_failures_total", id); n < 1 {
		t.Fatalf("paddock_snapshot_failures_total{deployment=%s} = %v", id, n)
	}
	back := ""
	if _, err := svc.SetSnapshotPolicy(ctx, id, service.SnapshotPolicyRequest{Repository: &back}, "test"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("a successful snapshot after the failure", 30*time.Second, func() bool {
		for _, r := range list() {
			if r.Status == engine.SnapshotSuccess && r.Name > failed.Name {
				return true
			}
		}
		return false
	})
	if metricLabeled(t, maddr, "paddock_snapshot_last_success_timestamp_seconds", id) < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatal("paddock_snapshot_last_success_timestamp_seconds is not recent")
	}

	// A manual snapshot, then restore into the same deployment.
	off := true
	if _, err := svc.SetSnapshotPolicy(ctx, id, service.SnapshotPolicyRequest{Disabled: &off}, "test"); err != nil {
		t.Fatal(err)
	}
	manual, err := svc.TakeSnapshot(ctx, id, "test")
	if err != nil {
		t.Fatal(err)
	}
	h.waitFor("the manual snapshot", 30*time.Second, func() bool {
		r, err := svc.GetSnapshot(ctx, id, manual.Name)
		return err == nil && r.Status == engine.SnapshotSuccess
	})
	nodeDo(t, addr, "DELETE", "/orders", "")
	if _, err := svc.RestoreSnapshot(ctx, id, service.RestoreRequest{Snapshot: manual.Name}, "test"); err != nil {
		t.Fatal(err)
	}
	waitRestore(t, h, svc, id)
	if n := count(t, addr, "orders"); n != 5 {
		t.Fatalf("%d documents after the restore, want 5", n)
	}

	// Into a new deployment.
	res, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "copy", Spec: spec("8.17.0", 1024, 1), RestoreFrom: id + "/" + manual.Name, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	cp := res.Deployment.ID
	if p := h.waitPlan(cp, res.PlanID, 60*time.Second); p.Status != engine.PlanSuccess {
		t.Fatalf("create copy: %s %s", p.Status, stepNames(p))
	}
	waitRestore(t, h, svc, cp)
	caddr := h.instanceStatus(h.deployment(cp).Instances[0]).Address
	if n := count(t, caddr, "orders"); n != 5 {
		t.Fatalf("%d documents in the copy, want 5", n)
	}
}

func waitRestore(t *testing.T, h *harness, svc *service.Service, id string) {
	t.Helper()
	var r engine.RestoreRecord
	h.waitFor("the restore of "+id, 60*time.Second, func() bool {
		var err error
		r, err = svc.GetRestore(context.Background(), id)
		return err == nil && r.Done()
	})
	if r.Status != engine.RestoreSuccess {
		t.Fatalf("restore %s: %s", r.Status, r.Error)
	}
}

func nodeDo(t *testing.T, addr, method, path, body string) []byte {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
	}
	return b
}

func count(t *testing.T, addr, index string) int {
	t.Helper()
	var out struct {
		Count int `json:"count"`
	}
	nodeDo(t, addr, "POST", "/"+index+"/_refresh", "")
	if err := json.Unmarshal(nodeDo(t, addr, "GET", "/"+index+"/_count", ""), &out); err != nil {
		t.Fatal(err)
	}
	return out.Count
}

// metricLabeled reads a sample whose labels contain label (0 when absent).
func metricLabeled(t *testing.T, addr, name, label string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, `"`+label+`"`) {
			var f float64
			fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &f)
			return f
		}
	}
	return 0
}

// TestLostDeploymentRecoversFromPlatformSnapshot: the only node of a
// 1-zone deployment dies with its allocator and no plan ever copied its
// data: the replacement restores the newest snapshot of the platform's
// schedule, and the plan's activity names it and the writes lost.
func TestLostDeploymentRecoversFromPlatformSnapshot(t *testing.T) {
	h := newHarness(t, "zone-1")
	h.startAllocator("alloc-1a", "zone-1", 4096, nil)
	h.startAllocator("alloc-1b", "zone-1", 4096, nil)
	h.setGrace(1)
	h.startConstructor("c1", NewHTTPNodes(), nil)
	ctx := ctxT(t, 3*time.Minute)
	svc := service.New(h.admin, service.WithLogger(quiet()))
	if _, err := svc.PutRepository(ctx, "default", service.RepositoryConfig{Type: "fs", Settings: service.RepositorySettings{Location: "/mnt/shared"}}, "test"); err != nil {
		t.Fatal(err)
	}
	id, planID := h.createDeployment(spec("8.17.0", 1024, 1))
	h.waitPlan(id, planID, 60*time.Second)
	r, _ := h.route(id)
	if err := nodeHTTP(t, "PUT", r.Backends[0].Address, "/logs/_doc/precious?refresh=true", `{"x":1}`, nil); err != nil {
		t.Fatal(err)
	}
	snap, err := svc.TakeSnapshot(ctx, id, "test")
	if err != nil {
		t.Fatal(err)
	}
	h.waitFor("the snapshot", 30*time.Second, func() bool {
		r, err := svc.GetSnapshot(ctx, id, snap.Name)
		return err == nil && r.Status == engine.SnapshotSuccess
	})
	d := checkRunning(t, h, id, 1)
	h.allocs[d.Instances[0].Allocator].kill()
	mv := h.waitMovePlan(id)
	if mv.Status != engine.PlanSuccess || !strings.Contains(stepNames(mv), StepMigrate+"=success") {
		t.Fatalf("move: %s", stepNames(mv))
	}
	var msg string
	for _, st := range mv.Steps {
		if st.Name == StepSnapshot {
			msg = st.Message
		}
	}
	if !strings.Contains(msg, "recovering snapshot "+snap.Name+" of repository default") || !strings.Contains(msg, "writes made after it are lost") {
		t.Fatalf("snapshot step says %q", msg)
	}
	checkRunning(t, h, id, 1)
	r, _ = h.route(id)
	if err := nodeHTTP(t, "GET", r.Backends[0].Address, "/logs/_doc/precious", "", nil); err != nil {
		t.Fatalf("snapshot not recovered: %v", err)
	}
}

// waitMovePlan waits for the move plan the rescheduler writes off a
// lost allocator to finish, and returns it.
func (h *harness) waitMovePlan(id string) engine.Plan {
	h.t.Helper()
	var mv engine.Plan
	h.waitFor("the move plan off the lost allocator", 60*time.Second, func() bool {
		for _, p := range h.history(id) {
			if p.Action == engine.ActionMove {
				mv = p
				return true
			}
		}
		return false
	})
	return mv
}

// TestSnapshotScheduleS3 is the schedule against the real object store
// (SeaweedFS): snapshots land under the deployment's base path in the
// bucket; the store stopped under the schedule makes one fail cleanly
// (recorded with its error, counted) while the deployment serves, and
// the next succeeds once the store is back; the keys appear in no
// record, log line or metric.
func TestSnapshotScheduleS3(t *testing.T) {
	st := s3test.Start(t)
	h := newHarness(t, "zone-1")
	h.startAllocator("a1", "zone-1", 8192, nil)
	var logs syncBuffer
	_, maddr := h.startConstructorWithMetrics("c1", nil, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := ctxT(t, 4*time.Minute)
	svc := service.New(h.admin, service.WithLogger(quiet()))
	if _, err := svc.PutRepository(ctx, "default", service.RepositoryConfig{Type: "s3", Settings: service.RepositorySettings{
		Endpoint: st.Endpoint, Bucket: st.Bucket, AccessKey: st.AccessKey, SecretKey: st.SecretKey}}, "test"); err != nil {
		t.Fatal(err)
	}
	id, planID := h.createDeployment(spec("8.17.0", 1024, 1))
	if p := h.waitPlan(id, planID, 60*time.Second); p.Status != engine.PlanSuccess {
		t.Fatalf("create: %s %s", p.Status, stepNames(p))
	}
	addr := h.instanceStatus(h.deployment(id).Instances[0]).Address
	for i := range 3 {
		nodeDo(t, addr, "PUT", fmt.Sprintf("/orders/_doc/%d?refresh=true", i), `{"n":1}`)
	}
	one := 1
	if _, err := svc.SetSnapshotPolicy(ctx, id, service.SnapshotPolicyRequest{IntervalSecs: &one}, "test"); err != nil {
		t.Fatal(err)
	}
	list := func() []engine.SnapshotRecord {
		v, err := svc.ListSnapshots(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return v.Snapshots
	}
	var good engine.SnapshotRecord
	h.waitFor("a snapshot in the object store", 60*time.Second, func() bool {
		for _, r := range list() {
			if r.Status == engine.SnapshotSuccess {
				good = r
				return true
			}
		}
		return false
	})
	if n, _ := st.Count(id + "/"); n == 0 || good.SizeBytes == 0 {
		t.Fatalf("snapshot %+v: %d objects under %s/ in the bucket", good, n, id)
	}

	st.Server.Stop()
	var failed engine.SnapshotRecord
	h.waitFor("a failed snapshot while the store is down", 90*time.Second, func() bool {
		for _, r := range list() {
			if r.Status == engine.SnapshotFailed {
				failed = r
				return true
			}
		}
		return false
	})
	if failed.Error == "" || metricLabeled(t, maddr, "paddock_snapshot_failures_total", id) < 1 {
		t.Fatalf("failure recorded as %+v", failed)
	}
	if n := count(t, addr, "orders"); n != 3 {
		t.Fatalf("the deployment serves %d documents while the store is down, want 3", n)
	}
	st.Restart()
	h.waitFor("a successful snapshot once the store is back", 120*time.Second, func() bool {
		for _, r := range list() {
			if r.Status == engine.SnapshotSuccess && r.Name > failed.Name {
				return true
			}
		}
		return false
	})
	for _, r := range list() {
		if strings.Contains(r.Error, st.SecretKey) || strings.Contains(r.Error, st.AccessKey) {
			t.Fatalf("record %s holds a key: %s", r.Name, r.Error)
		}
	}
	resp, err := http.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, k := range []string{st.SecretKey, st.AccessKey} {
		if strings.Contains(logs.String(), k) || strings.Contains(string(mb), k) {
			t.Fatal("a repository key reached the constructor's log or metrics")
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
