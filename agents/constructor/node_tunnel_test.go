package constructor

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"paddock/agents/allocator"
	"paddock/engine"
	"paddock/stunnel"
)

// tunnelPKI is a platform CA issuing role certificates (stunnel's CA
// helpers, as the director does).
type tunnelPKI struct {
	t  *testing.T
	ca *stunnel.CA
}

func newTunnelPKI(t *testing.T, name string) *tunnelPKI {
	t.Helper()
	ca, _, err := stunnel.NewCA(name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &tunnelPKI{t: t, ca: ca}
}

func (k *tunnelPKI) loader(role, id string) *stunnel.Loader {
	k.t.Helper()
	signer, keyPEM, err := stunnel.GenerateKey()
	if err != nil {
		k.t.Fatal(err)
	}
	c, err := k.ca.Issue(signer.Public(), stunnel.Leaf{Identity: stunnel.Identity{Role: role, ID: id}, TTL: time.Hour})
	if err != nil {
		k.t.Fatal(err)
	}
	l, err := stunnel.NewPEMLoader(c, keyPEM, k.ca.CertPEM, nil)
	if err != nil {
		k.t.Fatal(err)
	}
	return l
}

// tunnelAllocators starts alloc-1 (zone-1) and alloc-2 (zone-2) with
// their node tunnels on loopback, certificates from pki, tunnel metrics
// on one registry.
func tunnelAllocators(h *harness, pki *tunnelPKI) *stunnel.Metrics {
	tm := stunnel.NewMetrics(prometheus.NewRegistry())
	for _, a := range []struct{ id, zone string }{{"alloc-1", "zone-1"}, {"alloc-2", "zone-2"}} {
		h.startAllocatorWith(a.id, a.zone, 4096, nil, func(c *allocator.Config) {
			c.TunnelLoader = pki.loader("allocator", a.id)
			c.TunnelListen = "127.0.0.1:0"
			c.TunnelHost = "127.0.0.1"
			c.TunnelMetrics = tm
		})
	}
	return tm
}

// plainRefused is a NodeAPI whose plain path refuses to dial (and
// counts the attempts): only the node tunnel can carry its calls.
func plainRefused() (*HTTPNodes, *atomic.Int64) {
	var n atomic.Int64
	tr := &http.Transport{DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
		n.Add(1)
		return nil, errors.New("plain dial to " + addr + " refused by the test: nodes must be reached through the tunnel")
	}}
	return &HTTPNodes{Client: &http.Client{Transport: tr, Timeout: time.Minute}}, &n
}

// instanceStatus reads an instance's status as its allocator wrote it.
func (h *harness) instanceStatus(in engine.PlacedInstance) engine.InstanceStatus {
	h.t.Helper()
	b, _, err := h.admin.Get(ctxT(h.t, 10*time.Second), engine.StatusPath(in.Allocator, in.ID))
	if err != nil {
		h.t.Fatalf("status of %s: %v", in.ID, err)
	}
	var st engine.InstanceStatus
	if err := json.Unmarshal(b, &st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

// tunnelConnections is the connections both allocator tunnels admitted.
func tunnelConnections(t *testing.T, tm *stunnel.Metrics) float64 {
	t.Helper()
	var sum float64
	for _, a := range []string{"alloc-1", "alloc-2"} {
		var m dto.Metric
		if err := tm.Connections.WithLabelValues("allocator-" + a).Write(&m); err != nil {
			t.Fatal(err)
		}
		sum += m.GetCounter().GetValue()
	}
	return sum
}

func TestResizeThroughNodeTunnels(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2")
	pki := newTunnelPKI(t, "paddock-test-ca")
	tm := tunnelAllocators(h, pki)
	nodes, plainDials := plainRefused()
	h.startConstructor("c1", nodes, func(c *Config) { c.NodeLoader = pki.loader("constructor", "c1") })

	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	if p := h.waitPlan(id, planID, 60*time.Second); p.Status != engine.PlanSuccess {
		t.Fatalf("create %s: %s", p.Status, stepNames(p))
	}
	before := checkRunning(t, h, id, 2)
	// A document on every old node (written by the test at the published
	// port), to prove the resize carried the data through the tunnel.
	for _, in := range esOnly(before.Instances) {
		st := h.instanceStatus(in)
		if st.TunnelAddr == "" {
			t.Fatalf("instance %s on %s reports no tunnel address: %+v", in.ID, in.Allocator, st)
		}
		if err := nodeHTTP(t, "PUT", st.Address, "/logs/_doc/kept-"+in.Zone, `{"a":1}`, nil); err != nil {
			t.Fatal(err)
		}
	}
	connsBefore := tunnelConnections(t, tm)

	resize := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 2048, 2)})
	p := h.waitPlan(id, resize, 90*time.Second)
	if p.Status != engine.PlanSuccess {
		t.Fatalf("resize %s: %s", p.Status, stepNames(p))
	}
	checkByRecovery(t, "resize", p)
	for _, s := range p.Steps {
		if strings.Contains(s.Message, "peers not set") || strings.Contains(s.Message, "not pushed") || strings.Contains(s.Message, "not written") {
			t.Fatalf("replication peers failed through the tunnel: %s: %s", s.Name, s.Message)
		}
	}
	if n := plainDials.Load(); n != 0 {
		t.Fatalf("the constructor dialled nodes in plain %d time(s)", n)
	}
	// Routing pushes and recovery reads: all over the tunnels (the
	// copies recover from each other through them too).
	if got := tunnelConnections(t, tm) - connsBefore; got < 2 {
		t.Fatalf("%v connection(s) through the node tunnels during the resize, want at least one per node", got)
	}
	after := checkRunning(t, h, id, 2)
	for _, in := range esOnly(after.Instances) {
		if in.SizeMB != 2048 {
			t.Fatalf("instance %+v not resized", in)
		}
		st := h.instanceStatus(in)
		for _, z := range []string{"zone-1", "zone-2"} {
			if err := nodeHTTP(t, "GET", st.Address, "/logs/_doc/kept-"+z, "", nil); err != nil {
				t.Fatalf("new node %s lacks the document of %s: %v", in.ID, z, err)
			}
		}
	}
	r, _ := h.route(id)
	for _, b := range r.Backends {
		if !b.TLS || b.Address == "" {
			t.Fatalf("route backend %+v is not the node tunnel", b)
		}
	}
}

func TestConstructorCertificateOfAnotherCARefused(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2")
	tm := tunnelAllocators(h, newTunnelPKI(t, "paddock-test-ca"))
	foreign := newTunnelPKI(t, "another-platform-ca")
	nodes, plainDials := plainRefused()
	h.startConstructor("c1", nodes, func(c *Config) {
		c.NodeLoader = foreign.loader("constructor", "c1")
		c.MigrateBySnapshot = true // the snapshot step names the refusal
	})

	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	h.waitPlan(id, planID, 60*time.Second)
	before := checkRunning(t, h, id, 2)
	routeBefore, _ := h.route(id)

	resize := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", 2048, 2)})
	p := h.waitPlan(id, resize, 90*time.Second)
	if p.Status != engine.PlanError {
		t.Fatalf("resize with a foreign certificate: %s, want error: %s", p.Status, stepNames(p))
	}
	if !strings.Contains(stepNames(p), StepSnapshot+"="+engine.PlanError) || !strings.Contains(stepNames(p), StepRollback+"="+engine.PlanSuccess) {
		t.Fatalf("steps: %s", stepNames(p))
	}
	var snap engine.PlanStep
	for _, s := range p.Steps {
		if s.Name == StepSnapshot {
			snap = s
		}
	}
	for _, want := range []string{"through tunnel 127.0.0.1:", "unknown authority", "same platform CA"} {
		if !strings.Contains(snap.Message, want) {
			t.Fatalf("snapshot step message %q lacks %q", snap.Message, want)
		}
	}
	t.Logf("snapshot step: %s", snap.Message)
	if n := plainDials.Load(); n != 0 {
		t.Fatalf("the constructor fell back to plain dials (%d)", n)
	}
	if got := tunnelConnections(t, tm); got != 0 {
		t.Fatalf("the node tunnels admitted %v connection(s) of a foreign certificate", got)
	}
	after := checkRunning(t, h, id, 2)
	if after.Spec.Elasticsearch.SizeMB != 1024 || len(after.Instances) != len(before.Instances) {
		t.Fatalf("topology changed by a refused plan:\nbefore %+v\nafter  %+v", before, after)
	}
	for i := range before.Instances {
		if after.Instances[i].ID != before.Instances[i].ID {
			t.Fatalf("instances changed: before %+v after %+v", before.Instances, after.Instances)
		}
	}
	if r, _ := h.route(id); !sameBackends(r.Backends, routeBefore.Backends) || r.State != engine.RouteLive {
		t.Fatalf("route changed: %+v, was %+v", r, routeBefore)
	}
}
