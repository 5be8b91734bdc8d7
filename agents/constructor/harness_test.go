package constructor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock/agents/allocator"
	"paddock/agents/node"
	"paddock/engine"
	"paddock/engine/testenv"
	"paddock/engine/zktest"
)

var env *zktest.Env

func TestMain(m *testing.M) {
	code := zktest.Main(m, 1, &env)
	removeE2EImages()
	os.Exit(code)
}

func quiet() *slog.Logger {
	if os.Getenv("PADDOCK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// nodeRuntime is an allocator runtime whose workloads are real paddock
// nodes (agents/node) served in-process on loopback ports instead of
// Docker containers: the allocator's reconciler, the nodes' HTTP API,
// snapshots into a shared directory and restores are the real code.
// Nodes keep serving when their allocator dies, as containers would.
type nodeRuntime struct {
	root, snapshots string
	mu              sync.Mutex
	seq             int
	ws              map[string]*nodeWorkload
	subs            []chan struct{}
	// gone: instances whose containers cannot be created again (loseFor).
	gone map[string]bool
}

type nodeWorkload struct {
	w      allocator.Workload
	srv    *node.Server
	cancel context.CancelFunc
	done   chan struct{}
}

func newNodeRuntime(t testing.TB, snapshots string) *nodeRuntime {
	rt := &nodeRuntime{root: t.TempDir(), snapshots: snapshots, ws: map[string]*nodeWorkload{}}
	t.Cleanup(rt.stopAll)
	return rt
}

func (r *nodeRuntime) Name() string { return "sim" }
func (r *nodeRuntime) Host(context.Context) (allocator.HostInfo, error) {
	return allocator.HostInfo{CPUs: 2, MemoryMB: 64 << 10}, nil
}
func (r *nodeRuntime) Ping(context.Context) error                { return nil }
func (r *nodeRuntime) EnsureImage(context.Context, string) error { return nil }
func (r *nodeRuntime) List(context.Context) ([]allocator.Workload, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]allocator.Workload, 0, len(r.ws))
	for _, w := range r.ws {
		out = append(out, w.w)
	}
	return out, nil
}

func (r *nodeRuntime) start(in engine.Instance, w *nodeWorkload) error {
	srv, err := node.NewServer(node.Config{Name: in.ID, Version: in.Version, Kind: in.Kind,
		DataDir: filepath.Join(r.root, in.ID), SnapshotRoot: r.snapshots, Logger: quiet()})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx, ln)
		srv.Close()
	}()
	w.srv, w.cancel, w.done = srv, cancel, done
	w.w.Running, w.w.State, w.w.Health, w.w.StartedAt = true, "running", "healthy", time.Now().UTC()
	w.w.Address = ln.Addr().String()
	w.w.HostPort = ln.Addr().(*net.TCPAddr).Port
	return nil
}

func (r *nodeRuntime) stop(w *nodeWorkload) {
	if w.cancel != nil {
		w.cancel()
		<-w.done
		w.cancel = nil
	}
	w.w.Running, w.w.State = false, "exited"
}

func (r *nodeRuntime) Create(_ context.Context, spec allocator.Spec) (allocator.Workload, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := spec.Instance
	if r.gone[in.ID] {
		return allocator.Workload{}, fmt.Errorf("test: the container of %s cannot be created again", in.ID)
	}
	r.seq++
	w := &nodeWorkload{w: allocator.Workload{ID: fmt.Sprintf("node-%d", r.seq), Name: "node-" + in.ID, Instance: in.ID,
		Deployment: in.DeploymentID, Kind: in.Kind, Version: in.Version, SizeMB: in.SizeMB, Generation: in.Generation,
		CPUShares: spec.Resources.CPUShares, NanoCPUs: spec.Resources.NanoCPUs}}
	if err := r.start(in, w); err != nil {
		return allocator.Workload{}, err
	}
	r.ws[w.w.ID] = w
	return w.w, nil
}

func (r *nodeRuntime) Start(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.ws[id]
	if !ok {
		return fmt.Errorf("workload %s not found", id)
	}
	if w.w.Running {
		return nil
	}
	return r.start(engine.Instance{ID: w.w.Instance, Kind: w.w.Kind, Version: w.w.Version}, w)
}

func (r *nodeRuntime) Restart(ctx context.Context, id string, _ time.Duration) error {
	r.mu.Lock()
	if w, ok := r.ws[id]; ok {
		r.stop(w)
	}
	r.mu.Unlock()
	return r.Start(ctx, id)
}

func (r *nodeRuntime) Remove(_ context.Context, w allocator.Workload, _ time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if nw, ok := r.ws[w.ID]; ok {
		r.stop(nw)
		delete(r.ws, w.ID)
	}
	return nil
}

func (r *nodeRuntime) Probe(ctx context.Context, w allocator.Workload) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.Address+"/_paddock/health", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health %s", resp.Status)
	}
	return nil
}

func (r *nodeRuntime) Events(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	r.mu.Lock()
	r.subs = append(r.subs, ch)
	r.mu.Unlock()
	return ch
}

// Update records new CPU settings (in-process nodes have no cgroup).
func (r *nodeRuntime) Update(_ context.Context, id string, res allocator.Resources) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.ws[id]
	if !ok {
		return fmt.Errorf("workload %s not found", id)
	}
	w.w.CPUShares, w.w.NanoCPUs = res.CPUShares, res.NanoCPUs
	return nil
}

func (r *nodeRuntime) Volumes(context.Context) (map[string]string, error) { return nil, nil }
func (r *nodeRuntime) RemoveVolume(context.Context, string) error         { return nil }
func (r *nodeRuntime) Close() error                                       { return nil }

func (r *nodeRuntime) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.ws {
		r.stop(w)
	}
}

// harness is one platform: real ZooKeeper, real allocators (in-process)
// over nodeRuntime, constructors started on demand.
type harness struct {
	t         testing.TB
	p         *zktest.Platform
	admin     *engine.Store
	snapshots string
	allocs    map[string]*agentHandle
	// runtimes are the allocators' in-process node runtimes.
	runtimes map[string]*nodeRuntime
	// allocCfgs are the allocators' configurations (resumeAllocator).
	allocCfgs map[string]allocator.Config
}

type agentHandle struct {
	cancel context.CancelFunc
	store  *engine.Store
	done   chan struct{}
	err    error
}

// kill stops the agent and drops its session at once (its ephemerals go).
func (a *agentHandle) kill() {
	a.cancel()
	<-a.done
	a.store.Close()
}

// crash closes the agent's ZooKeeper session under it (its ephemerals
// go at once; whatever it still sends fails), then stops it.
func (a *agentHandle) crash() {
	a.store.Close()
	a.cancel()
	<-a.done
}

func newHarness(t testing.TB, zones ...string) *harness {
	t.Helper()
	p := env.Fresh(t, zones...)
	return &harness{t: t, p: p, admin: p.Admin, snapshots: t.TempDir(), allocs: map[string]*agentHandle{}, runtimes: map[string]*nodeRuntime{}}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func (h *harness) startAllocator(id, zone string, capMB int, tags map[string]string) *agentHandle {
	h.t.Helper()
	return h.startAllocatorWith(id, zone, capMB, tags, nil)
}

// startAllocatorWith is startAllocator with mod applied to its Config
// (node tunnel settings).
func (h *harness) startAllocatorWith(id, zone string, capMB int, tags map[string]string, mod func(*allocator.Config)) *agentHandle {
	t := h.t
	t.Helper()
	dir := t.TempDir()
	own, err := allocator.OwnCredential(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	s := h.p.ConnectAllocator(t, id, own)
	rt := newNodeRuntime(t, h.snapshots)
	cfg := allocator.Config{ID: id, Zone: zone, CapacityMB: capMB, Tags: tags, StateDir: dir,
		SnapshotDir: h.snapshots, Runtime: allocator.RuntimeSim, Store: s, ProbeInterval: 200 * time.Millisecond,
		Logger: quiet(), NewRuntime: func(allocator.Config) (allocator.Runtime, error) { return rt, nil }}
	if mod != nil {
		mod(&cfg)
	}
	if h.allocCfgs == nil {
		h.allocCfgs = map[string]allocator.Config{}
	}
	h.allocCfgs[id] = cfg
	return h.runAllocator(id, cfg, rt)
}

// resumeAllocator starts allocator id again (after kill) on the same
// state directory and runtime: its nodes kept running, as containers
// outlive their allocator.
func (h *harness) resumeAllocator(id string) *agentHandle {
	t := h.t
	t.Helper()
	cfg := h.allocCfgs[id]
	own, err := allocator.OwnCredential(cfg.StateDir, id)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store = h.p.ConnectAllocator(t, id, own)
	return h.runAllocator(id, cfg, h.runtimes[id])
}

func (h *harness) runAllocator(id string, cfg allocator.Config, rt *nodeRuntime) *agentHandle {
	t := h.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &agentHandle{cancel: cancel, store: cfg.Store, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		a.err = allocator.Run(ctx, cfg)
	}()
	t.Cleanup(func() { cancel(); <-a.done })
	if h.runtimes == nil {
		h.runtimes = map[string]*nodeRuntime{}
	}
	h.allocs[id], h.runtimes[id] = a, rt
	h.waitFor("allocator "+id+" alive", 20*time.Second, func() bool {
		ok, _, _ := h.admin.Exists(context.Background(), engine.AllocatorAlivePath(id))
		return ok
	})
	return a
}

func (h *harness) startConstructor(id string, nodes NodeAPI, mod func(*Config)) *agentHandle {
	t := h.t
	t.Helper()
	s := h.p.Connect(t, engine.RoleConstructor)
	ctx, cancel := context.WithCancel(context.Background())
	a := &agentHandle{cancel: cancel, store: s, done: make(chan struct{})}
	cfg := Config{Store: s, ID: id, Nodes: nodes, Logger: quiet().With("constructor", id), HealthyTimeout: 30 * time.Second,
		PauseSettle: 250 * time.Millisecond, Tick: 200 * time.Millisecond, Seed: 1}
	if mod != nil {
		mod(&cfg)
	}
	go func() {
		defer close(a.done)
		a.err = Run(ctx, cfg)
	}()
	t.Cleanup(func() { cancel(); <-a.done })
	return a
}

func (h *harness) waitFor(what string, d time.Duration, cond func() bool) {
	h.t.Helper()
	testenv.Eventually(h.t, d, what, cond)
}

func spec(version string, sizeMB, zones int) engine.DeploymentSpec {
	return engine.DeploymentSpec{Version: version, Elasticsearch: engine.Topology{SizeMB: sizeMB, Zones: zones}}
}

// createDeployment writes a deployment and its create plan as the
// service layer does (one Multi).
func (h *harness) createDeployment(sp engine.DeploymentSpec) (string, string) {
	h.t.Helper()
	id := engine.NewID()
	now := time.Now().UTC()
	dep := engine.Deployment{ID: id, Name: "test-" + id[:6], CreatedAt: now, UpdatedAt: now, Status: engine.DeploymentInitializing, Instances: []engine.PlacedInstance{}}
	plan := engine.Plan{ID: engine.NewID(), DeploymentID: id, Action: engine.ActionCreate, Spec: sp, Strategy: engine.PlanGrowAndShrink,
		CreatedAt: now, Status: engine.PlanPending, Steps: []engine.PlanStep{}}
	dep.LastPlanID, dep.LastPlanStatus = plan.ID, plan.Status // as the service layer records it
	if err := h.admin.Multi(ctxT(h.t, 10*time.Second),
		engine.OpCreate(engine.DeploymentPath(id), dep), engine.OpCreate(engine.PlansPath(id), nil),
		engine.OpCreate(engine.PlanHistoryPath(id), nil), engine.OpCreate(engine.PendingPlanPath(id), plan)); err != nil {
		h.t.Fatal(err)
	}
	return id, plan.ID
}

// createSecureDeployment is createDeployment with credentials, as the
// API writes them: it returns the elastic user as "elastic:<password>".
func (h *harness) createSecureDeployment(sp engine.DeploymentSpec) (string, string, string) {
	h.t.Helper()
	ctx := ctxT(h.t, 10*time.Second)
	pw, user, err := engine.NewSuperUser()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.admin.EnsurePath(ctx, engine.PathCredentials); err != nil {
		h.t.Fatal(err)
	}
	id := engine.NewID()
	now := time.Now().UTC()
	dep := engine.Deployment{ID: id, Name: "test-" + id[:6], CreatedAt: now, UpdatedAt: now, Status: engine.DeploymentInitializing, Instances: []engine.PlacedInstance{}}
	plan := engine.Plan{ID: engine.NewID(), DeploymentID: id, Action: engine.ActionCreate, Spec: sp, Strategy: engine.PlanGrowAndShrink,
		CreatedAt: now, Status: engine.PlanPending, Steps: []engine.PlanStep{}}
	creds := engine.DeploymentCredentials{Users: []engine.CredentialUser{user}, PlatformSecret: engine.RandomToken(24), CreatedAt: now}
	if err := h.admin.Multi(ctx, engine.OpCreate(engine.CredentialsPath(id), creds),
		engine.OpCreate(engine.DeploymentPath(id), dep), engine.OpCreate(engine.PlansPath(id), nil),
		engine.OpCreate(engine.PlanHistoryPath(id), nil), engine.OpCreate(engine.PendingPlanPath(id), plan)); err != nil {
		h.t.Fatal(err)
	}
	return id, plan.ID, engine.SuperUser + ":" + pw
}

// submit writes a plan for an existing deployment; returns its id.
func (h *harness) submit(id string, plan engine.Plan) string {
	h.t.Helper()
	plan.ID, plan.DeploymentID, plan.CreatedAt, plan.Status, plan.Steps = engine.NewID(), id, time.Now().UTC(), engine.PlanPending, []engine.PlanStep{}
	if plan.Strategy == "" {
		plan.Strategy = engine.PlanGrowAndShrink
	}
	if plan.Spec.Version == "" {
		plan.Spec = h.deployment(id).Spec
	}
	if err := h.admin.Create(ctxT(h.t, 10*time.Second), engine.PendingPlanPath(id), plan); err != nil {
		h.t.Fatal(err)
	}
	return plan.ID
}

func (h *harness) deployment(id string) engine.Deployment {
	h.t.Helper()
	var d engine.Deployment
	if _, err := h.admin.GetJSON(ctxT(h.t, 10*time.Second), engine.DeploymentPath(id), &d); err != nil {
		h.t.Fatal(err)
	}
	return d
}

func (h *harness) route(id string) (engine.Route, bool) {
	var r engine.Route
	_, err := h.admin.GetJSON(context.Background(), engine.RoutePath(id), &r)
	return r, err == nil
}

// history returns the finished plans of a deployment, oldest first.
func (h *harness) history(id string) []engine.Plan {
	ctx := ctxT(h.t, 10*time.Second)
	names, err := h.admin.Children(ctx, engine.PlanHistoryPath(id))
	if err != nil {
		return nil
	}
	sort.Strings(names)
	var out []engine.Plan
	for _, n := range names {
		var p engine.Plan
		if _, err := h.admin.GetJSON(ctx, engine.PlanHistoryEntryPath(id, n), &p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// waitPlan waits until plan planID of deployment id is in the history.
func (h *harness) waitPlan(id, planID string, d time.Duration) engine.Plan {
	h.t.Helper()
	var got engine.Plan
	testenv.EventuallyDetail(h.t, d, "plan "+planID+" to finish", func() (bool, string) {
		for _, p := range h.history(id) {
			if p.ID == planID {
				got = p
				return true, ""
			}
		}
		// Say where a plan that does not finish stands.
		p, ok := h.pendingPlan(id)
		if !ok {
			return false, "no pending plan"
		}
		var s []string
		for _, st := range p.Steps {
			s = append(s, st.Name+"="+st.Status+" ("+st.Message+st.Waiting+")")
		}
		return false, fmt.Sprintf("pending plan %s %s, steps: %s", p.ID, p.Status, strings.Join(s, "; "))
	})
	return got
}

func (h *harness) pendingPlan(id string) (engine.Plan, bool) {
	var p engine.Plan
	_, err := h.admin.GetJSON(context.Background(), engine.PendingPlanPath(id), &p)
	return p, err == nil
}

func stepNames(p engine.Plan) string {
	var s []string
	for _, st := range p.Steps {
		s = append(s, st.Name+"="+st.Status)
	}
	return strings.Join(s, ", ")
}

func lastStep(p engine.Plan) engine.PlanStep {
	if len(p.Steps) == 0 {
		return engine.PlanStep{}
	}
	return p.Steps[len(p.Steps)-1]
}

// instanceZnodes lists the instance znodes of a deployment, by allocator.
func (h *harness) instanceZnodes(depID string) map[string][]string {
	ctx := ctxT(h.t, 10*time.Second)
	out := map[string][]string{}
	allocs, _ := h.admin.Children(ctx, engine.PathAllocators)
	for _, a := range allocs {
		ids, _ := h.admin.Children(ctx, engine.InstancesPath(a))
		for _, iid := range ids {
			var in engine.Instance
			if _, err := h.admin.GetJSON(ctx, engine.InstancePath(a, iid), &in); err == nil && in.DeploymentID == depID {
				out[a] = append(out[a], iid)
			}
		}
	}
	return out
}

// nodeHTTP does a request against a node and decodes the answer.
func nodeHTTP(t testing.TB, method, addr, path, body string, out any) error {
	return nodeHTTPAs(t, "", method, addr, path, body, out)
}

// nodeHTTPAs is nodeHTTP as a user ("name:password"; "" for none).
func nodeHTTPAs(t testing.TB, user, method, addr, path, body string, out any) error {
	req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if name, pass, ok := strings.Cut(user, ":"); ok {
		req.SetBasicAuth(name, pass)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// setGrace sets the platform's lost-allocator grace (read live).
func (h *harness) setGrace(seconds int) {
	h.t.Helper()
	var cfg engine.PlatformConfig
	if _, err := h.admin.Update(ctxT(h.t, 10*time.Second), engine.PathConfig, &cfg, func() error {
		cfg.LostAllocatorGraceSeconds = seconds
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
}

// startConstructorWithMetrics starts a constructor serving /metrics and
// returns that address.
func (h *harness) startConstructorWithMetrics(id string, nodes NodeAPI, mod func(*Config)) (*agentHandle, string) {
	h.t.Helper()
	addr := make(chan string, 1)
	a := h.startConstructor(id, nodes, func(c *Config) {
		c.MetricsAddr = "127.0.0.1:0"
		c.Ready = func(a string) { addr <- a }
		if mod != nil {
			mod(c)
		}
	})
	return a, <-addr
}

// metric reads one sample from an agent's /metrics (0 when absent).
func metric(t testing.TB, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// waitSweeps waits until the leader has swept n more times (looked at
// routes and rescheduling): "nothing may happen" is then an observed
// fact, not a guess about time.
func (h *harness) waitSweeps(addr string, n int) {
	h.t.Helper()
	from := metric(h.t, addr, "paddock_constructor_sweeps_total")
	h.waitFor(fmt.Sprintf("%d sweeps of the leader", n), 30*time.Second, func() bool {
		return metric(h.t, addr, "paddock_constructor_sweeps_total") >= from+float64(n)
	})
}
