package constructor

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/elastic/go-elasticsearch/v8"

	"paddock/agents/allocator"
	"paddock/agents/node/esclienttest"
	"paddock/engine"
	"paddock/engine/testenv"
)

// checkAckedOn asserts every document the writer had acknowledged is
// on every copy of the routing (read at each node's published address).
func checkAckedOn(t *testing.T, h *harness, w *proxyWriter, d engine.Deployment, r engine.Replication) {
	t.Helper()
	acked := w.ackedDocs()
	for _, in := range d.Instances {
		if !slices.Contains(r.Copies, in.ID) {
			continue
		}
		st := h.instanceStatus(in)
		var missing []string
		for _, doc := range acked {
			if err := nodeHTTPAs(t, w.user, "GET", st.Address, "/logs/_doc/"+doc, "", nil); err != nil {
				missing = append(missing, doc)
			}
		}
		if len(missing) > 0 {
			t.Fatalf("copy %s (%s, in sync %v) lacks %d of %d acknowledged documents: %v", in.ID, in.Zone, r.IsInSync(in.ID), len(missing), len(acked), missing)
		}
	}
	t.Logf("%d acknowledged writes, all on the %d copies; %d failed attempts", len(acked), len(r.Copies), w.fails.Load())
}

// keepDown kills (or removes) every running container of an instance
// every 100 ms until ctx ends.
func keepDown(ctx context.Context, t *testing.T, cli *client.Client, iid string, remove bool) {
	f := filters.NewArgs(filters.Arg("label", allocator.LabelInstance+"="+iid))
	for {
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: remove, Filters: f})
		if err == nil {
			for _, c := range cs {
				if remove {
					_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
				} else {
					_ = cli.ContainerKill(ctx, c.ID, "KILL")
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// dockerAllocators starts one Docker allocator per zone.
func dockerAllocators(t *testing.T, h *harness, label string, zones ...string) {
	snaps := snapshotDir(t)
	for _, zone := range zones {
		startDockerAllocator(t, h, label, snaps, "docker-"+zone, zone, nil)
	}
}

// snapshotDir is a snapshot directory the nodes (a numeric non-root
// user) can write.
func snapshotDir(t *testing.T) string {
	snaps := t.TempDir()
	if err := os.Chmod(snaps, 0o777); err != nil {
		t.Fatal(err)
	}
	return snaps
}

// startDockerAllocator starts a Docker allocator (mod adjusts its
// Config), waits until it is alive and returns what stops it (at
// cleanup too; once).
func startDockerAllocator(t *testing.T, h *harness, label, snaps, id, zone string, mod func(*allocator.Config)) func() {
	t.Helper()
	dir := t.TempDir()
	own, err := allocator.OwnCredential(dir, id)
	if err != nil {
		t.Fatal(err)
	}
	s := h.p.ConnectAllocator(t, id, own)
	cfg := allocator.Config{ID: id, Zone: zone, CapacityMB: 4096, StateDir: dir, SnapshotDir: snaps,
		Runtime: allocator.RuntimeDocker, Store: s, ImageRepo: e2eRepo, Labels: map[string]string{allocator.LabelTest: label},
		ProbeInterval: 500 * time.Millisecond, StopTimeout: 5 * time.Second, Logger: quiet()}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := allocator.Run(ctx, cfg); err != nil {
			t.Errorf("allocator %s: %v", id, err)
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	h.waitFor("allocator "+id+" alive", 60*time.Second, func() bool {
		ok, _, _ := h.admin.Exists(context.Background(), engine.AllocatorAlivePath(id))
		return ok
	})
	return stop
}

// TestDockerPrimaryKilledFailover: a 2-zone deployment on real Docker
// allocators under a writer going through a real proxy; the primary's
// container is killed (docker kill), then the new primary's removed
// (docker rm -f). Each time the in-sync replica is promoted, the writer
// carries on, the lost copy comes back (its allocator restarts or
// re-creates it on its volume), recovers and is in sync again; every
// acknowledged write is on every copy at the end. The time from the
// kill to the first acknowledged write after the promotion is logged
// (PADDOCK_FAILOVER_RUNS kill cycles, default 2; figures in
// docs/benchmarks.md).
func TestDockerPrimaryKilledFailover(t *testing.T) {
	cli := needDocker(t)
	env.Need(t)
	needImages(t, cli)
	label := "constructor-failover-" + engine.RandomToken(3)
	testenv.CleanupDocker(t, cli, allocator.LabelTest, label)
	h := newHarness(t, "zone-1", "zone-2")
	h.setGrace(3600) // the allocators stay; only containers die
	dockerAllocators(t, h, label, "zone-1", "zone-2")
	h.startConstructor("c1", NewHTTPNodes(), func(c *Config) {
		c.HealthyTimeout = 2 * time.Minute
		c.FailoverGrace = time.Second
		c.ReplicationCheck = time.Second
	})
	id, planID, user := h.createSecureDeployment(spec("8.17.0", 512, 2))
	if p := h.waitPlan(id, planID, 3*time.Minute); p.Status != engine.PlanSuccess {
		t.Fatalf("create: %s: %s", p.Status, stepNames(p))
	}
	d := checkRunning(t, h, id, 2)
	r, _, ok := h.replication(id)
	if !ok || len(r.InSync) != 2 {
		t.Fatalf("routing of the new deployment: %+v (found %v)", r, ok)
	}
	// The node side of the contract (issue 12) must answer the routing
	// (asked as the platform, as the constructor does).
	hn := NewHTTPNodes()
	hn.Credentials = StoreCredentials(h.admin)
	if _, err := hn.NodeReplication(WithDeployment(ctxT(t, 10*time.Second), id), h.instanceStatus(d.Instances[0]).Address); err != nil {
		t.Fatalf("GET /_paddock/replication: %v", err)
	}

	// A client of the deployment: writes through a real proxy (straight
	// to the nodes: these allocators run no node tunnels).
	pxAddr := startTestProxy(t, h, nil)
	// Elastic's official Go client runs an application's whole sequence
	// through the proxy first: the proxy spreads reads over both copies,
	// so scroll pages and reads after writes reach either node.
	name, pass, _ := strings.Cut(user, ":")
	h.waitFor("the deployment's route in the proxy", 30*time.Second, func() bool {
		req, _ := http.NewRequest("GET", "http://"+pxAddr+"/", nil)
		req.Header.Set("X-Found-Cluster", id)
		req.SetBasicAuth(name, pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err := esclienttest.Run(ctxT(t, 2*time.Minute), elasticsearch.Config{Addresses: []string{"http://" + pxAddr},
		Header: http.Header{"X-Found-Cluster": {id}}, Username: name, Password: pass},
		esclienttest.Options{Log: t.Logf}); err != nil {
		t.Fatalf("the Go client's sequence through the proxy on 2 copies: %v", err)
	}
	w := newProxyWriter(pxAddr, id, user)
	stopWriter := w.start(t)
	h.waitFor("some writes", 30*time.Second, func() bool { return w.count() > 20 })

	runs := envInt("PADDOCK_FAILOVER_RUNS", 2)
	var took []time.Duration
	for i := 0; i < runs; i++ {
		cur, _, _ := h.replication(id)
		how := "docker kill"
		if i%2 == 1 {
			how = "docker rm -f"
		}
		// Its allocator restarts (or re-creates) a dead node within a
		// second, before the failover grace: the node is kept down
		// (killed again as it comes back) until a replica is promoted.
		killed := time.Now()
		downCtx, stopKilling := context.WithCancel(context.Background())
		downDone := make(chan struct{})
		go func() { defer close(downDone); keepDown(downCtx, t, cli, cur.Primary, i%2 == 1) }()
		var next engine.Replication
		h.waitFor("a replica promoted after "+how, 60*time.Second, func() bool {
			next, _, _ = h.replication(id)
			return next.Primary != cur.Primary
		})
		promoted := time.Now()
		stopKilling()
		<-downDone
		if next.Term != cur.Term+1 || !cur.IsInSync(next.Primary) {
			t.Fatalf("after %s: %+v, was %+v: want term+1 and a copy that was in sync", how, next, cur)
		}
		h.waitFor("a write acknowledged after the promotion", 60*time.Second, func() bool {
			_, ok := w.firstAckAfter(promoted)
			return ok
		})
		first, _ := w.firstAckAfter(promoted)
		took = append(took, first.Sub(killed))
		t.Logf("%s of primary %s: %s promoted at term %d; first acknowledged write %s after the kill (%d failed attempts so far)",
			how, engine.Short(cur.Primary), engine.Short(next.Primary), next.Term, first.Sub(killed).Round(time.Millisecond), w.fails.Load())
		h.waitFor("the lost copy back in sync", 3*time.Minute, func() bool {
			r, _, _ := h.replication(id)
			return len(r.InSync) == 2
		})
	}
	n := w.count()
	h.waitFor("writes after the last recovery", 30*time.Second, func() bool { return w.count() > n+20 })
	stopWriter()
	r, _, _ = h.replication(id)
	checkAckedOn(t, h, w, h.deployment(id), r)
	slices.Sort(took)
	t.Logf("kill → first acknowledged write after promotion over %d runs: p50 %s, max %s", len(took),
		took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
}
