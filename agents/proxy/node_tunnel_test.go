package proxy

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"paddock/agents/node"
	"paddock/engine"
	"paddock/stunnel"
)

// The allocators' node tunnels, end to end: proxy → stunnel.Server
// (routing by SNI, admitting proxy certificates) → agents/node servers,
// with certificates of a real CA.

type testPKI struct {
	t  *testing.T
	ca *stunnel.CA
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, _, err := stunnel.NewCA("paddock test CA", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{t: t, ca: ca}
}

// pem issues a certificate for role/id with a fresh key.
func (k *testPKI) pem(role, id string) (cert, key []byte) {
	k.t.Helper()
	signer, keyPEM, err := stunnel.GenerateKey()
	if err != nil {
		k.t.Fatal(err)
	}
	c, err := k.ca.Issue(signer.Public(), stunnel.Leaf{Identity: stunnel.Identity{Role: role, ID: id}, TTL: time.Hour})
	if err != nil {
		k.t.Fatal(err)
	}
	return c, keyPEM
}

func (k *testPKI) loader(role, id string) *stunnel.Loader {
	k.t.Helper()
	c, key := k.pem(role, id)
	l, err := stunnel.NewPEMLoader(c, key, k.ca.CertPEM, nil)
	if err != nil {
		k.t.Fatal(err)
	}
	return l
}

// startNode serves a stand-in Elasticsearch node of cluster on loopback.
func startNode(t *testing.T, name, cluster string) string {
	t.Helper()
	n, err := node.NewServer(node.Config{Name: name, ClusterName: cluster, DataDir: t.TempDir(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; n.Close() })
	return ln.Addr().String()
}

// nodeTunnel is an allocator's :9400: a stunnel.Server routing by SNI
// to the nodes, recording the identities it admitted.
type nodeTunnel struct {
	addr string
	mu   sync.Mutex
	// peers counts admitted connections by client identity.
	peers map[string]int
}

func startNodeTunnel(t *testing.T, l *stunnel.Loader, nodes map[string]string) *nodeTunnel {
	t.Helper()
	nt := &nodeTunnel{peers: map[string]int{}}
	route := stunnel.SNIRouter(func(iid string) (string, bool) { a, ok := nodes[iid]; return a, ok })
	srv, err := stunnel.NewServer(stunnel.ServerConfig{
		Options: stunnel.Options{Name: "nodes", Loader: l, Allow: stunnel.Allow{Roles: []string{"proxy"}}},
		Target: func(ctx context.Context, p stunnel.Peer) (net.Conn, error) {
			nt.mu.Lock()
			nt.peers[p.Identity.String()]++
			nt.mu.Unlock()
			return route(ctx, p)
		},
		Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nt.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return nt
}

func (nt *nodeTunnel) admitted(id string) int {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	return nt.peers[id]
}

func tunnelBackend(iid, addr string) engine.Backend {
	return engine.Backend{InstanceID: iid, Kind: engine.KindElasticsearch, Zone: "z1", Allocator: "a1", Address: addr, TLS: true}
}

// clusterOf asks the deployment's root through the proxy.
func clusterOf(t *testing.T, c *http.Client, p *Proxy, dep string) (int, string, error) {
	a, err := get(t, c, p.HTTPAddr(), dep+".localhost", "/", nil)
	if err != nil {
		return 0, "", err
	}
	var m struct {
		ClusterName string `json:"cluster_name"`
	}
	_ = json.Unmarshal([]byte(a.body), &m)
	return a.code, m.ClusterName, nil
}

// TestNodeTunnelRoutesBySNI: two instances behind one allocator tunnel
// address, each reached by its SNI, each with its own keep-alive pool.
func TestNodeTunnelRoutesBySNI(t *testing.T) {
	pki := newTestPKI(t)
	nodes := map[string]string{"i-one": startNode(t, "i-one", "dep-one"), "i-two": startNode(t, "i-two", "dep-two")}
	nt := startNodeTunnel(t, pki.loader("allocator", "a1"), nodes)
	p := startProxy(t, func(c *Config) { c.BackendLoader = pki.loader("proxy", "p1") })
	p.setTable(map[string]engine.Route{
		"dep-one": liveRoute("dep-one", 1, tunnelBackend("i-one", nt.addr)),
		"dep-two": liveRoute("dep-two", 1, tunnelBackend("i-two", nt.addr)),
	}, nil)
	c := newClient()
	for range 3 {
		for _, dep := range []string{"dep-one", "dep-two"} {
			code, cluster, err := clusterOf(t, c, p, dep)
			if err != nil || code != 200 || cluster != dep {
				t.Fatalf("%s through the tunnel: %d %q %v", dep, code, cluster, err)
			}
		}
	}
	// One connection per instance, kept alive: 6 requests, 2 handshakes.
	if n := nt.admitted("proxy/p1"); n != 2 {
		t.Errorf("tunnel admitted %d connections for 6 sequential requests to 2 instances, want 2 (one pool per instance)", n)
	}
	p.mu.Lock()
	keys := len(p.backends)
	p.mu.Unlock()
	if keys != 2 {
		t.Errorf("%d backends for 2 instances behind one tunnel address, want 2", keys)
	}
	// An instance the tunnel does not know: the tunnel closes the
	// connection, and the client gets an error status, not a hang.
	p.setTable(map[string]engine.Route{"dep-three": liveRoute("dep-three", 1, tunnelBackend("i-three", nt.addr))}, nil)
	if code, _, err := clusterOf(t, c, p, "dep-three"); err != nil || (code != 502 && code != 503) {
		t.Fatalf("unknown instance behind the tunnel: %d %v, want 502 or 503", code, err)
	}
}

// TestNodeTunnelRefusesWrongServer: the proxy admits only allocator
// certificates of its CA on the other end; anything else is a 502/503
// within the connect timeout.
func TestNodeTunnelRefusesWrongServer(t *testing.T) {
	pki := newTestPKI(t)
	other := newTestPKI(t)
	nodes := map[string]string{"i-one": startNode(t, "i-one", "dep-one")}
	for _, tc := range []struct {
		name string
		ca   *testPKI
		role string
	}{
		{"proxy certificate on the tunnel", pki, "proxy"},
		{"director certificate on the tunnel", pki, "director"},
		{"allocator certificate of another CA", other, "allocator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The server trusts both CAs, so only the proxy's check of
			// the server can refuse.
			certPEM, keyPEM := tc.ca.pem(tc.role, "impostor")
			both := append(append([]byte{}, pki.ca.CertPEM...), other.ca.CertPEM...)
			srvLoader, err := stunnel.NewPEMLoader(certPEM, keyPEM, both, nil)
			if err != nil {
				t.Fatal(err)
			}
			nt := startNodeTunnel(t, srvLoader, nodes)
			p := startProxy(t, func(c *Config) {
				c.BackendLoader = pki.loader("proxy", "p1")
				c.ConnectTimeout = 2 * time.Second
			})
			p.setTable(map[string]engine.Route{"dep-one": liveRoute("dep-one", 1, tunnelBackend("i-one", nt.addr))}, nil)
			c := newClient()
			c.Timeout = 10 * time.Second
			code, _, err := clusterOf(t, c, p, "dep-one")
			if err != nil || (code != 502 && code != 503) {
				t.Fatalf("got %d %v, want 502 or 503", code, err)
			}
			if n := nt.admitted("proxy/p1"); n != 0 {
				t.Fatalf("the request reached the node through a refused tunnel (%d connections)", n)
			}
		})
	}
}

// TestNodeTunnelReloadUnderLoad: the proxy's certificate is replaced
// (renewal) while clients hammer a deployment behind the tunnel: no
// request fails, pooled connections live on, and new handshakes present
// the new certificate.
func TestNodeTunnelReloadUnderLoad(t *testing.T) {
	pki := newTestPKI(t)
	nodes := map[string]string{"i-one": startNode(t, "i-one", "dep-one"), "i-two": startNode(t, "i-two", "dep-two"),
		"i-three": startNode(t, "i-three", "dep-three")}
	nt := startNodeTunnel(t, pki.loader("allocator", "a1"), nodes)
	pl := pki.loader("proxy", "p1")
	p := startProxy(t, func(c *Config) { c.BackendLoader = pl })
	p.setTable(map[string]engine.Route{"dep-one": liveRoute("dep-one", 1, tunnelBackend("i-one", nt.addr))}, nil)
	l := startLoad(t, 8, p.HTTPAddr, "dep-one.localhost")
	waitFor(t, 10*time.Second, "requests through the tunnel", func() bool { return l.ok.Load() > 50 })
	for i, id := range []string{"p1-renewed", "p1-renewed-again"} {
		certPEM, keyPEM := pki.pem("proxy", id)
		if err := pl.SetPEM(certPEM, keyPEM, pki.ca.CertPEM, nil); err != nil {
			t.Fatal(err)
		}
		seen := l.ok.Load()
		waitFor(t, 10*time.Second, "requests after reload", func() bool { return l.ok.Load() > seen+50 })
		// A backend first named now handshakes with the new certificate.
		dep, iid := []string{"dep-two", "dep-three"}[i], []string{"i-two", "i-three"}[i]
		p.setTable(map[string]engine.Route{
			"dep-one": liveRoute("dep-one", 1, tunnelBackend("i-one", nt.addr)),
			dep:       liveRoute(dep, 1, tunnelBackend(iid, nt.addr)),
		}, nil)
		if code, cluster, err := clusterOf(t, newClient(), p, dep); err != nil || code != 200 || cluster != dep {
			t.Fatalf("after reload: %d %q %v", code, cluster, err)
		}
		if nt.admitted("proxy/"+id) == 0 {
			t.Fatalf("no handshake presented the reloaded certificate proxy/%s: %v", id, nt.peers)
		}
	}
	l.finish(t)
	if nt.admitted("proxy/p1") == 0 {
		t.Fatal("the first certificate was never used")
	}
}
