package constructor

import (
	"bytes"
	"context"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/prometheus/client_golang/prometheus"

	"paddock/agents/allocator"
	"paddock/agents/node"
	"paddock/engine"
	"paddock/engine/testenv"
	"paddock/stunnel"
)

// host is one allocator of the multi-host test: its own registry and
// its own Docker networks (IsolateNodes), so its nodes reach the other
// host's only through the tunnels.
type host struct {
	id, zone string
	reg      *prometheus.Registry
	stop     func()
}

// counterSum sums the counter or gauge name over the series whose
// labels include want.
func counterSum(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// execIn runs the node binary in a container and returns its exit code
// and output.
func execIn(t *testing.T, cli *client.Client, ctr string, args ...string) (int, string) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	ex, err := cli.ContainerExecCreate(ctx, ctr, container.ExecOptions{Cmd: append([]string{"/paddock"}, args...), AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatalf("exec in %s: %v", ctr, err)
	}
	att, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatalf("exec attach in %s: %v", ctr, err)
	}
	var out bytes.Buffer
	_, _ = stdcopy.StdCopy(&out, &out, att.Reader)
	att.Close()
	in, err := cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	return in.ExitCode, out.String()
}

// containerOf is the running container of an instance, and its address
// on its own network.
func containerOf(t *testing.T, cli *client.Client, iid string) (string, string) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	cs, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", allocator.LabelInstance+"="+iid))})
	if err != nil || len(cs) != 1 {
		t.Fatalf("container of %s: %d found, %v", iid, len(cs), err)
	}
	ci, err := cli.ContainerInspect(ctx, cs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range ci.NetworkSettings.Networks {
		if strings.HasPrefix(name, "paddock-dep-") && n.IPAddress != "" {
			return cs[0].ID, n.IPAddress
		}
	}
	t.Fatalf("container of %s has no deployment network: %+v", iid, ci.NetworkSettings.Networks)
	return "", ""
}

// TestDockerMultiHostReplication (issue 12, "Multi-host"): two Docker
// allocators that stand for two hosts: each puts its nodes on networks
// of its own (IsolateNodes), so a node of one cannot reach a node of the
// other except through the allocators (proved from inside a container).
// The constructor and a real proxy reach nodes only through the node
// tunnels. A 2-zone deployment spans both; a writer loops through the
// proxy; the replication goes node → egress → mTLS → the peer's tunnel
// (the egress metrics show it); an allocator-role certificate asking for
// a node of another deployment is refused. Then the primary's host is
// cut off (its containers killed and kept down, its allocator stopped):
// the replica on the other host is promoted and every acknowledged write
// is on it.
func TestDockerMultiHostReplication(t *testing.T) {
	cli := needDocker(t)
	env.Need(t)
	needImages(t, cli)
	label := "constructor-multihost-" + engine.RandomToken(3)
	testenv.CleanupDocker(t, cli, allocator.LabelTest, label)
	h := newHarness(t, "zone-1", "zone-2")
	h.setGrace(3600) // no replacement: the cut host's copy stays lost
	pki := newTunnelPKI(t, "paddock-test-ca")

	snaps := snapshotDir(t)
	hosts := map[string]*host{}
	for _, zone := range []string{"zone-1", "zone-2"} {
		hs := &host{id: "host-" + zone, zone: zone, reg: prometheus.NewRegistry()}
		hs.stop = startDockerAllocator(t, h, label, snaps, hs.id, zone, func(c *allocator.Config) {
			c.Registry, c.TunnelLoader, c.TunnelListen, c.TunnelHost, c.IsolateNodes = hs.reg, pki.loader("allocator", hs.id), "127.0.0.1:0", "127.0.0.1", true
		})
		hosts[hs.id] = hs
	}
	nodes, plainDials := plainRefused()
	h.startConstructor("c1", nodes, func(c *Config) {
		c.NodeLoader = pki.loader("constructor", "c1")
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
	byID := map[string]engine.PlacedInstance{}
	for _, in := range esOnly(d.Instances) {
		byID[in.ID] = in
	}
	primary := byID[r.Primary]
	var replica engine.PlacedInstance
	for _, in := range byID {
		if in.ID != primary.ID {
			replica = in
		}
	}
	if primary.Allocator == replica.Allocator {
		t.Fatalf("both copies on %s: the test needs one per host", primary.Allocator)
	}

	// No plain path between the hosts' nodes: from inside the primary's
	// container, the replica's container address refuses, while the
	// primary's own egress socket answers.
	pc, _ := containerOf(t, cli, primary.ID)
	_, rip := containerOf(t, cli, replica.ID)
	if code, out := execIn(t, cli, pc, "node", "dial", "--timeout", "2s", "--expect-unreachable", net.JoinHostPort(rip, "9200")); code != 0 {
		t.Fatalf("a node of %s reaches a node of %s directly (exit %d): %s", primary.Allocator, replica.Allocator, code, out)
	}
	if code, out := execIn(t, cli, pc, "node", "dial", "unix://"+node.ContainerEgressSocket); code != 0 {
		t.Fatalf("the node's egress socket is not there (exit %d): %s", code, out)
	}

	// A real proxy, through the node tunnels.
	w := newProxyWriter(startTestProxy(t, h, pki.loader("proxy", "p1")), id, user)
	stopWriter := w.start(t)
	h.waitFor("100 writes acknowledged through the proxy", 2*time.Minute, func() bool { return w.count() >= 100 })

	// The replication crossed the hosts through the egress and tunnels.
	ph := hosts[primary.Allocator]
	if n := counterSum(t, ph.reg, "paddock_allocator_egress_connections_total", map[string]string{"result": "ok"}); n < 1 {
		t.Fatalf("the primary's allocator egress forwarded %v connections", n)
	}
	if n := plainDials.Load(); n != 0 {
		t.Fatalf("the constructor dialled nodes in plain %d time(s)", n)
	}

	// Defence in depth: an allocator certificate may reach a node only
	// for the node's own deployment.
	rst := h.instanceStatus(replica)
	rogue, err := stunnel.NewClient(stunnel.ClientConfig{Options: stunnel.Options{Name: "rogue", Loader: pki.loader("allocator", "rogue"),
		Allow: stunnel.Allow{Roles: []string{"allocator"}}}})
	if err != nil {
		t.Fatal(err)
	}
	other := engine.NewID()
	if c, err := rogue.DialSNI(ctxT(t, 10*time.Second), rst.TunnelAddr, stunnel.PeerSNI(replica.ID, other)); err == nil {
		c.Close()
		t.Fatal("the replica's tunnel admitted an allocator asking for it on behalf of another deployment")
	} else {
		t.Logf("cross-deployment peer connection refused: %v", err)
	}
	// As a proxy would (the node SNI): refused after the handshake.
	for _, sni := range []string{stunnel.BackendSNI(replica.ID), stunnel.PeerSNI(replica.ID, id)} {
		c, err := rogue.DialSNI(ctxT(t, 10*time.Second), rst.TunnelAddr, sni)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = io.WriteString(c, "GET /_paddock/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if err == nil {
				_, err = c.Read(make([]byte, 64))
			}
			c.Close()
		}
		switch {
		case sni == stunnel.BackendSNI(replica.ID) && err == nil:
			t.Fatal("an allocator certificate reached a node as a proxy would")
		case sni != stunnel.BackendSNI(replica.ID) && err != nil:
			t.Fatalf("a same-deployment peer connection failed: %v", err)
		}
	}
	rh := hosts[replica.Allocator]
	if n := counterSum(t, rh.reg, "paddock_allocator_peer_refused_total", map[string]string{"reason": "cross_deployment"}); n != 1 {
		t.Fatalf("refused cross-deployment connections counted %v, want 1", n)
	}

	// Cut the primary's host off: its nodes die and stay down, its
	// allocator stops (tunnel and egress gone).
	before := w.count()
	kctx, kcancel := context.WithCancel(context.Background())
	kdone := make(chan struct{})
	go func() { defer close(kdone); keepDown(kctx, t, cli, primary.ID, false) }()
	defer func() { kcancel(); <-kdone }()
	cut := time.Now()
	ph.stop()
	// Bytes are counted as connections end (stunnel.Pipe): the stop
	// closed them.
	if n := counterSum(t, ph.reg, "paddock_allocator_egress_bytes_total", map[string]string{"direction": "out"}); n < 1000 {
		t.Fatalf("the primary's allocator egress forwarded %v bytes out", n)
	}
	h.waitFor("the replica promoted", 60*time.Second, func() bool {
		r2, _, ok := h.replication(id)
		return ok && r2.Primary == replica.ID && r2.Term > r.Term
	})
	h.waitFor("100 more writes acknowledged after the cut", 2*time.Minute, func() bool { return w.count() >= before+100 })
	stopWriter()
	t.Logf("host %s cut off; %d writes acknowledged before, %d after; %d failed attempts; promotion and writes resumed within %v",
		primary.Allocator, before, w.count()-before, w.fails.Load(), time.Since(cut).Round(time.Millisecond))

	r2, _, _ := h.replication(id)
	if !slices.Contains(r2.InSync, replica.ID) || slices.Contains(r2.InSync, primary.ID) {
		t.Fatalf("routing after the cut: %+v", r2)
	}
	acked := w.ackedDocs()
	st := h.instanceStatus(replica)
	nodeHTTPAs(t, user, "POST", st.Address, "/logs/_refresh", "", nil)
	var missing []string
	for _, doc := range acked {
		if err := nodeHTTPAs(t, user, "GET", st.Address, "/logs/_doc/"+doc, "", nil); err != nil {
			missing = append(missing, doc)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("the promoted copy %s lacks %d of %d acknowledged documents: %v", replica.ID, len(missing), len(acked), missing)
	}
	t.Logf("all %d acknowledged writes are on the promoted copy %s (term %d)", len(acked), engine.Short(replica.ID), r2.Term)
}
