package constructor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"paddock/agents/allocator"
	"paddock/engine"
	"paddock/engine/testenv"
	"paddock/engine/zktest"
)

// simNodes is the NodeAPI of sim allocators: their instances only exist
// as records, so there is no data to move (create plans only set peers).
type simNodes struct{}

func (simNodes) Snapshot(context.Context, string, string, string) error { return nil }
func (simNodes) Restore(context.Context, string, string, string) error  { return nil }
func (simNodes) SetPeers(context.Context, string, []string) error       { return nil }
func (simNodes) LatestSnapshot(context.Context, string, string) (string, error) {
	return "", nil
}
func (simNodes) PushReplication(context.Context, string, ReplicationPush) (bool, error) {
	return true, nil
}
func (simNodes) NodeReplication(context.Context, string) (NodeReplication, error) {
	return NodeReplication{}, errNoReplicationAPI
}
func (simNodes) ReplicationEvents(context.Context, string, int64, time.Duration) (ReplicationEvents, error) {
	return ReplicationEvents{}, errNoReplicationAPI
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkZooKeeperPlacement: PADDOCK_BENCH_DEPLOYMENTS (default 1,000)
// deployments of 3 instances (one per zone) on PADDOCK_BENCH_ALLOCATORS
// (default 100) allocators in 3 zones running the sim runtime (instances
// only acknowledged), through a real ZooKeeper of its own, the real
// allocator agents and the constructor. 8 writers create the deployments
// as the service layer does (one Multi each). Reports the time until
// every plan succeeded (all instances placed, acknowledged running and
// healthy by their allocators, routes written, deployments running),
// the instances placed per second, and ZooKeeper's own counts per
// instance (mntr: write transactions, reads). Run with
//
//	go test ./agents/constructor -run '^$' -bench ZooKeeper -benchtime 1x
//
// scripts/bench-constructor.sh runs the sizes of docs/benchmarks.md.
func BenchmarkZooKeeperPlacement(b *testing.B) {
	allocators := envInt("PADDOCK_BENCH_ALLOCATORS", 100)
	deployments := envInt("PADDOCK_BENCH_DEPLOYMENTS", 1000)
	zk, err := zktest.StartHeap(1, 2048)
	if err != nil {
		b.Fatalf("start ZooKeeper: %v", err)
	}
	defer zk.Stop()
	for b.Loop() {
		r := runZKScale(b, zk, allocators, deployments)
		b.ReportMetric(r.elapsed.Seconds(), "s-total")
		b.ReportMetric(float64(r.placed)/r.elapsed.Seconds(), "instances/s")
		b.ReportMetric(r.zkWrites/float64(r.placed), "zk-writes/instance")
		b.ReportMetric(r.zkReads/float64(r.placed), "zk-reads/instance")
		b.ReportMetric(r.cpu.Seconds()*1000/float64(r.placed), "cpu-ms/instance")
		b.ReportMetric(r.zkCPU.Seconds()*1000/float64(r.placed), "zk-cpu-ms/instance")
		b.ReportMetric(r.zkJIT.Seconds()*1000/float64(r.placed), "zk-jit-ms/instance")
		b.Logf("%d allocators, %d deployments: %s", allocators, deployments, r)
	}
}

// scaleResult is one run's figures.
type scaleResult struct {
	elapsed time.Duration
	placed  int
	// zkWrites and zkReads are ZooKeeper's own counts (mntr) during the
	// run: write transactions (a Multi is one) and reads.
	zkWrites, zkReads float64
	// client is what the constructor, allocators, writers and the
	// console-like observer sent.
	constructor, allocators, writers, observer engine.StoreStats
	// cpu is this process's CPU time, zkCPU ZooKeeper's, zkJIT the part
	// of it its JIT compiler threads took (a fresh JVM's warm-up, not
	// the requests' cost: it falls with the length of the run).
	cpu, zkCPU, zkJIT time.Duration
	// Plan phases (ms): pickup = created → first step; wait = the wait
	// step (assignments written → acknowledged); total = created → ended.
	pickup, wait, total [3]float64
	load                string
}

func (r scaleResult) String() string {
	per := func(n int64) string { return fmt.Sprintf("%.2f", float64(n)/float64(r.placed)) }
	return fmt.Sprintf("%.1f s, %.0f instances/s; ZooKeeper per instance: %.2f write transactions, %.1f reads; "+
		"per instance sent by the constructor: %s transactions (%s ops), %s reads; by the allocators: %s transactions, %s reads; by the writers: %s transactions; by the observer: %s reads; "+
		"CPU per instance: %.2f ms here, %.2f ms ZooKeeper (%.2f ms of it JIT compiling); plan phases p50/p90/p99 ms: pickup %.0f/%.0f/%.0f, wait %.0f/%.0f/%.0f, created→ended %.0f/%.0f/%.0f; load %s",
		r.elapsed.Seconds(), float64(r.placed)/r.elapsed.Seconds(), r.zkWrites/float64(r.placed), r.zkReads/float64(r.placed),
		per(r.constructor.Transactions()), per(r.constructor.Writes+r.constructor.MultiOps), per(r.constructor.Reads),
		per(r.allocators.Transactions()), per(r.allocators.Reads), per(r.writers.Transactions()), per(r.observer.Reads),
		r.cpu.Seconds()*1000/float64(r.placed), r.zkCPU.Seconds()*1000/float64(r.placed), r.zkJIT.Seconds()*1000/float64(r.placed),
		r.pickup[0], r.pickup[1], r.pickup[2], r.wait[0], r.wait[1], r.wait[2], r.total[0], r.total[1], r.total[2], r.load)
}

// startSimAllocators runs n allocators of the sim runtime in 3 zones,
// capMB each (probing every probe; 0: the default), until ctx ends (wg
// waits for them), and returns their stores once every one is alive.
func startSimAllocators(tb testing.TB, ctx context.Context, wg *sync.WaitGroup, p *zktest.Platform, n, capMB int, probe time.Duration) []*engine.Store {
	tb.Helper()
	stores := make([]*engine.Store, n)
	for i := range n {
		id := fmt.Sprintf("sim-%04d", i)
		dir := tb.TempDir()
		own, err := allocator.OwnCredential(dir, id)
		if err != nil {
			tb.Fatal(err)
		}
		var s *engine.Store
		// Labelled for the CPU profile (go tool pprof -tags): the
		// client's send and receive loops start here and inherit it.
		pprof.Do(ctx, pprof.Labels("role", "allocators"), func(context.Context) { s = p.ConnectAllocator(tb, id, own) })
		stores[i] = s
		wg.Add(1)
		go pprof.Do(ctx, pprof.Labels("role", "allocators"), func(ctx context.Context) {
			defer wg.Done()
			_ = allocator.Run(ctx, allocator.Config{ID: id, Zone: fmt.Sprintf("zone-%d", i%3+1), CapacityMB: capMB, StateDir: dir,
				Runtime: allocator.RuntimeSim, Store: s, Logger: quiet(), ProbeInterval: probe})
		})
	}
	testenv.EventuallyDetail(tb, 5*time.Minute, "every allocator alive", func() (bool, string) {
		alive := 0
		for i := range n {
			if ok, _, _ := p.Admin.Exists(ctx, engine.AllocatorAlivePath(fmt.Sprintf("sim-%04d", i))); ok {
				alive++
			}
		}
		return alive == n, fmt.Sprintf("%d of %d alive", alive, n)
	})
	return stores
}

// readTally counts reads by client, request and znode (ids replaced by
// "*"): engine.Store.TallyReads.
type readTally struct {
	mu sync.Mutex
	n  map[string]int64
}

func (t *readTally) hook(client string) func(op, p string) {
	return func(op, p string) {
		k := client + "\t" + op + "\t" + znodeKind(p)
		t.mu.Lock()
		t.n[k]++
		t.mu.Unlock()
	}
}

// table lists the counts per deployment, largest first.
func (t *readTally) table(deployments int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.n))
	for k := range t.n {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return t.n[keys[i]] > t.n[keys[j]] || t.n[keys[i]] == t.n[keys[j]] && keys[i] < keys[j]
	})
	var b strings.Builder
	b.WriteString("client\trequest\tznode\tper deployment\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s\t%.2f\n", k, float64(t.n[k])/float64(deployments))
	}
	return b.String()
}

// znodeKind replaces the ids in a path by "*": the deployment, the
// allocator, an instance, a status, a history entry.
func znodeKind(p string) string {
	seg := strings.Split(p, "/")
	for i := 3; i < len(seg); i++ {
		switch seg[i-1] {
		case "deployments", "allocators", "instances", "status", "history":
			seg[i] = "*"
		}
	}
	return strings.Join(seg, "/")
}

// threadCPU reads the CPU time of each thread of a process from /proc,
// summed by thread name without its number ("GC Thread#3" → "GC
// Thread#").
func threadCPU(pid int) map[string]time.Duration {
	out := map[string]time.Duration{}
	dirs, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, d := range dirs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, d.Name()))
		if err != nil {
			continue
		}
		s := string(b)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if i < 0 || j < i {
			continue
		}
		name := strings.TrimRight(s[i+1:j], "0123456789-:")
		f := strings.Fields(s[j+2:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[name] += time.Duration(ut+st) * time.Second / 100
	}
	return out
}

func threadTable(a, b map[string]time.Duration, deployments int) string {
	var names []string
	for k := range b {
		if b[k]-a[k] > 0 {
			names = append(names, k)
		}
	}
	sort.Slice(names, func(i, j int) bool { return b[names[i]]-a[names[i]] > b[names[j]]-a[names[j]] })
	var out strings.Builder
	for _, k := range names {
		fmt.Fprintf(&out, "%s\t%.2f\n", k, float64((b[k]-a[k]).Microseconds())/1000/float64(deployments))
	}
	return out.String()
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU reads a process's CPU time from /proc (0 when unknown).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+2:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func zkPid(zk *zktest.Env) int {
	b, _ := os.ReadFile(filepath.Join(zk.Cluster.Node(1).Dir, "zookeeper.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func percentiles(xs []float64) [3]float64 {
	if len(xs) == 0 {
		return [3]float64{}
	}
	sort.Float64s(xs)
	at := func(q float64) float64 { return xs[min(len(xs)-1, int(q*float64(len(xs))))] }
	return [3]float64{at(0.5), at(0.9), at(0.99)}
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// benchWarmup deployments are placed before timing (and stay). After
// 300 a fresh JVM's JIT compiler still took 1.2 of ZooKeeper's 2.1 ms of
// CPU per instance placed in a 1,000-deployment burst, and what it had
// not compiled yet ran slower: the figure measured the JVM's warm-up.
// After 2,000 the compiler takes 0.07-0.15 ms (zk-jit-ms/instance).
const benchWarmup = 2000

func runZKScale(b *testing.B, zk *zktest.Env, allocators, deployments int) scaleResult {
	p := zk.Fresh(b, "zone-1", "zone-2", "zone-3")
	admin := p.Admin
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	warm := envInt("PADDOCK_BENCH_WARMUP", benchWarmup)
	capMB := max(64<<10, 3*(deployments+warm)*1024/allocators*2) // half full at the end
	stores := startSimAllocators(b, ctx, &wg, p, allocators, capMB, 0)
	var cs, obs *engine.Store
	pprof.Do(ctx, pprof.Labels("role", "constructor"), func(context.Context) { cs = p.Connect(b, engine.RoleConstructor) })
	wg.Add(1)
	go pprof.Do(ctx, pprof.Labels("role", "constructor"), func(ctx context.Context) {
		defer wg.Done()
		_ = Run(ctx, Config{Store: cs, ID: "bench", Nodes: simNodes{}, Logger: quiet(), HealthyTimeout: 5 * time.Minute, MaxPlans: envInt("PADDOCK_BENCH_MAXPLANS", 0)})
	})
	// The observer has a session of its own (its reads counted apart
	// from the writers'), and its CPU its own label.
	pprof.Do(ctx, pprof.Labels("role", "observer"), func(context.Context) { obs = p.Connect(b, engine.RoleAdmin) })
	// Watch deployments through a cache, as the console does (tui/data:
	// the whole subtree, history included, leaves by the layout); count the
	// finished ones from its events (each deployment record decoded once
	// per change: a scan of every deployment per poll would cost the
	// benchmark more than the constructor at 10,000).
	watch := engine.NewTreeCache(obs, engine.PathDeployments, engine.CacheLeaves(engine.LayoutLeaves(engine.PathDeployments)),
		engine.CacheContainers(engine.ContainerZnode))
	wevs := watch.Listen()
	var smu sync.Mutex
	state := map[string]string{} // deployment → running | failed | ""
	wg.Add(1)
	go pprof.Do(ctx, pprof.Labels("role", "observer"), func(ctx context.Context) { defer wg.Done(); _ = watch.Run(ctx) })
	wg.Add(1)
	go pprof.Do(ctx, pprof.Labels("role", "observer"), func(ctx context.Context) {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-wevs:
				rel := strings.TrimPrefix(ev.Path, engine.PathDeployments+"/")
				if ev.Type != engine.NodeAdded && ev.Type != engine.NodeUpdated || strings.Contains(rel, "/") || rel == ev.Path {
					continue
				}
				var d engine.Deployment
				st := ""
				if json.Unmarshal(ev.Data, &d) == nil {
					switch {
					case d.LastPlanStatus == engine.PlanSuccess && d.Status == engine.DeploymentRunning:
						st = "running"
					case d.LastPlanStatus == engine.PlanError:
						st = "failed"
					}
				}
				smu.Lock()
				state[rel] = st
				smu.Unlock()
			}
		}
	})
	<-watch.Ready()
	// Let the constructor lead and load before timing.
	testenv.Eventually(b, time.Minute, "a constructor leading", func() bool {
		kids, _ := admin.Children(ctx, engine.PathLeaderCons)
		return len(kids) == 1
	})
	// A fresh JVM interprets until its JIT has compiled the hot paths:
	// warm it up with a first batch of deployments (benchWarmup; they
	// stay, so the measured burst lands on a platform that already
	// holds some).
	create := func(from, n int, sp engine.DeploymentSpec) {
		var cwg sync.WaitGroup
		for w := range 8 {
			cwg.Add(1)
			go pprof.Do(ctx, pprof.Labels("role", "writers"), func(ctx context.Context) {
				defer cwg.Done()
				for i := from + w; i < from+n; i += 8 {
					id := engine.NewID()
					now := time.Now().UTC()
					dep := engine.Deployment{ID: id, Name: fmt.Sprintf("bench-%d", i), CreatedAt: now, UpdatedAt: now, Status: engine.DeploymentInitializing, Instances: []engine.PlacedInstance{}}
					plan := engine.Plan{ID: engine.NewID(), DeploymentID: id, Action: engine.ActionCreate, Spec: sp, Strategy: engine.PlanGrowAndShrink,
						CreatedAt: now, Status: engine.PlanPending, Steps: []engine.PlanStep{}}
					dep.LastPlanID, dep.LastPlanStatus = plan.ID, plan.Status // as the service layer records it
					if err := admin.Multi(ctx, engine.OpCreate(engine.DeploymentPath(id), dep), engine.OpCreate(engine.PlansPath(id), nil),
						engine.OpCreate(engine.PlanHistoryPath(id), nil), engine.OpCreate(engine.PendingPlanPath(id), plan)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		cwg.Wait()
	}
	create(0, warm, spec("8.17.0", 1024, 3))
	testenv.EventuallyDetail(b, 10*time.Minute, "the warm-up deployments running", func() (bool, string) {
		smu.Lock()
		n, failed := 0, 0
		for _, st := range state {
			switch st {
			case "running":
				n++
			case "failed":
				failed++
			}
		}
		smu.Unlock()
		if failed > 0 {
			b.Fatalf("warm-up: %d of %d deployments running, %d failed", n, warm, failed)
		}
		return n == warm, fmt.Sprintf("%d of %d running", n, warm)
	})

	sumAllocs := func() engine.StoreStats {
		var t engine.StoreStats
		for _, s := range stores {
			t = t.Add(s.Stats())
		}
		return t
	}
	m0, err := zk.Mntr(1)
	if err != nil {
		b.Fatalf("mntr: %v", err)
	}
	c0, a0, w0, o0 := cs.Stats(), sumAllocs(), admin.Stats(), obs.Stats()
	tally := &readTally{n: map[string]int64{}}
	cs.TallyReads(tally.hook("constructor"))
	obs.TallyReads(tally.hook("observer"))
	admin.TallyReads(tally.hook("writers"))
	for _, s := range stores {
		s.TallyReads(tally.hook("allocators"))
	}
	if f := os.Getenv("PADDOCK_BENCH_CPUPROFILE"); f != "" {
		// The timed burst alone (-test.cpuprofile covers the start and
		// the warm-up too); go tool pprof -tags splits it by role.
		pf, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			b.Fatalf("PADDOCK_BENCH_CPUPROFILE with -test.cpuprofile: %v", err)
		}
	}
	cpu0, zcpu0, zth0 := selfCPU(), processCPU(zkPid(zk)), threadCPU(zkPid(zk))
	start := time.Now()
	create(warm, deployments, spec("8.17.0", 1024, 3))
	done, failed := 0, 0
	failedID := ""
	limit := time.After(30 * time.Minute)
	for done+failed < warm+deployments {
		select {
		case <-time.After(250 * time.Millisecond):
		case <-limit:
			b.Fatalf("after 30 minutes: %d of %d deployments running, %d failed", done, deployments, failed)
		}
		done, failed = 0, 0
		smu.Lock()
		for id, st := range state {
			switch st {
			case "running":
				done++
			case "failed":
				failed++
				if failedID == "" {
					failedID = id
				}
			}
		}
		smu.Unlock()
	}
	r := scaleResult{elapsed: time.Since(start), load: loadAvg()}
	r.cpu, r.zkCPU = selfCPU()-cpu0, processCPU(zkPid(zk))-zcpu0
	zth1 := threadCPU(zkPid(zk))
	for name, t := range zth1 {
		if strings.HasPrefix(name, "C1 CompilerThre") || strings.HasPrefix(name, "C2 CompilerThre") {
			r.zkJIT += t - zth0[name]
		}
	}
	if f := os.Getenv("PADDOCK_BENCH_CPUPROFILE"); f != "" {
		pprof.StopCPUProfile()
	}
	r.constructor, r.allocators, r.writers, r.observer = cs.Stats().Sub(c0), sumAllocs().Sub(a0), admin.Stats().Sub(w0), obs.Stats().Sub(o0)
	for _, s := range append([]*engine.Store{cs, obs, admin}, stores...) {
		s.TallyReads(nil)
	}
	if f := os.Getenv("PADDOCK_BENCH_READS"); f != "" {
		_ = os.WriteFile(f, []byte(tally.table(deployments)+"\nZooKeeper JVM CPU by thread (ms per deployment):\n"+
			threadTable(zth0, zth1, deployments)), 0o644)
	}
	m1, err := zk.Mntr(1)
	if err != nil {
		b.Fatalf("mntr: %v", err)
	}
	// Every write request ZooKeeper committed (a Multi is one), and
	// every read it answered.
	r.zkWrites = m1["cnt_updatelatency"] - m0["cnt_updatelatency"]
	r.zkReads = m1["cnt_readlatency"] - m0["cnt_readlatency"]
	if f := os.Getenv("PADDOCK_BENCH_MNTR"); f != "" {
		var keys []string
		for k := range m1 {
			if m1[k] != m0[k] {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var out strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&out, "%s\t%.0f\t%.0f\t%+.0f\n", k, m0[k], m1[k], m1[k]-m0[k])
		}
		_ = os.WriteFile(f, []byte(out.String()), 0o644)
	}
	if failed > 0 {
		for _, name := range watch.Children(engine.PlanHistoryPath(failedID)) {
			var p engine.Plan
			if n, ok := watch.Get(engine.PlanHistoryEntryPath(failedID, name)); ok && json.Unmarshal(n.Data, &p) == nil {
				b.Logf("failed plan: %s", stepNames(p))
				for _, st := range p.Steps {
					b.Logf("  %s %s: %s", st.Name, st.Status, st.Message)
				}
			}
		}
		b.Fatalf("%d deployments failed", failed)
	}
	var pickup, wait, total []float64
	for _, id := range watch.Children(engine.PathDeployments) {
		for _, name := range watch.Children(engine.PlanHistoryPath(id)) {
			var p engine.Plan
			n, ok := watch.Get(engine.PlanHistoryEntryPath(id, name))
			if !ok || json.Unmarshal(n.Data, &p) != nil || len(p.Steps) == 0 || p.EndedAt == nil || p.CreatedAt.Before(start) {
				continue
			}
			pickup = append(pickup, float64(p.Steps[0].Started.Sub(p.CreatedAt))/1e6)
			total = append(total, float64(p.EndedAt.Sub(p.CreatedAt))/1e6)
			for _, st := range p.Steps {
				if st.Name == StepWait && st.Ended != nil {
					wait = append(wait, float64(st.Ended.Sub(st.Started))/1e6)
				}
			}
		}
	}
	r.pickup, r.wait, r.total = percentiles(pickup), percentiles(wait), percentiles(total)
	// Every instance acknowledged running by its allocator.
	inv, err := admin.Inventory(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, a := range inv {
		for _, st := range a.Statuses {
			if st.State == engine.StateRunning && st.Healthy {
				r.placed++
			}
		}
	}
	if r.placed != 3*(warm+deployments) {
		b.Fatalf("%d instances running, want %d", r.placed, 3*(warm+deployments))
	}
	r.placed = 3 * deployments
	return r
}
