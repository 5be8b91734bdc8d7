package allocator_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"paddock/agents/allocator"
	"paddock/engine"
	"paddock/stunnel"
)

// testPKI issues certificates of one CA as in-memory loaders.
type testPKI struct {
	t  testing.TB
	ca *stunnel.CA
}

func newTestPKI(t testing.TB) *testPKI {
	ca, _, err := stunnel.NewCA("allocator-test-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{t: t, ca: ca}
}

func (p *testPKI) loader(role, id string) *stunnel.Loader {
	p.t.Helper()
	key, keyPEM, err := stunnel.GenerateKey()
	if err != nil {
		p.t.Fatal(err)
	}
	cert, err := p.ca.Issue(key.Public(), stunnel.Leaf{Identity: stunnel.Identity{Role: role, ID: id}, TTL: time.Hour})
	if err != nil {
		p.t.Fatal(err)
	}
	l, err := stunnel.NewPEMLoader(cert, keyPEM, p.ca.CertPEM, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	return l
}

// tunnelClient is a client of role that admits allocator servers.
func (p *testPKI) tunnelClient(role string) *stunnel.Client {
	p.t.Helper()
	c, err := stunnel.NewClient(stunnel.ClientConfig{Options: stunnel.Options{Name: "test-" + role,
		Loader: p.loader(role, role+"-1"), Allow: stunnel.Allow{Roles: []string{"allocator"}}}, Logger: logger()})
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// getVia GETs path from a node through dial (one connection, no reuse).
func getVia(dial func(ctx context.Context) (net.Conn, error), path string) (int, string, error) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) }}}
	resp, err := hc.Get("http://node" + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestNodeTunnel: the allocator's mTLS tunnel routes by SNI to its
// nodes; proxy and constructor certificates pass, an allocator
// certificate, a certificate of another CA, no certificate and an
// unknown instance are refused; the node's own port is published on
// loopback only, and the status and record carry the tunnel address.
func TestNodeTunnel(t *testing.T) {
	pki := newTestPKI(t)
	f := dockerFixture(t, 2048, func(cfg *allocator.Config) {
		cfg.TunnelLoader = pki.loader("allocator", "host-1")
		cfg.TunnelListen = "127.0.0.1:0"
	})
	cli, cons, ctx, id := f.cli, f.cons, f.ctx, f.id

	in := engine.Instance{ID: "i-" + engine.RandomToken(4), DeploymentID: engine.NewID(), Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 128}
	assign(t, cons, id, in)
	st := waitStatus(t, cons, id, in.ID, 90*time.Second, "running, healthy, behind the tunnel", func(s engine.InstanceStatus) bool {
		return runningHealthy(s) && s.TunnelAddr != ""
	})
	host, port, err := net.SplitHostPort(st.TunnelAddr)
	if err != nil || host != "127.0.0.1" || port == "0" || port == strconv.Itoa(st.HostPort) {
		t.Fatalf("tunnel address %q (node port %d): want 127.0.0.1:<tunnel port>", st.TunnelAddr, st.HostPort)
	}
	var rec engine.Allocator
	if _, err := f.p.Admin.GetJSON(ctx, engine.AllocatorPath(id), &rec); err != nil || rec.TunnelAddr != st.TunnelAddr {
		t.Fatalf("allocator record tunnel %q (%v), status %q", rec.TunnelAddr, err, st.TunnelAddr)
	}

	sni := stunnel.BackendSNI(in.ID)
	t.Run("proxy certificate passes", func(t *testing.T) {
		c := pki.tunnelClient("proxy")
		code, body, err := getVia(func(ctx context.Context) (net.Conn, error) { return c.DialSNI(ctx, st.TunnelAddr, sni) }, "/")
		if err != nil || code != 200 || !strings.Contains(body, `"name":"`+in.ID+`"`) {
			t.Fatalf("GET / through the tunnel: %d %q %v", code, body, err)
		}
	})
	t.Run("constructor certificate passes (reloading config)", func(t *testing.T) {
		c := pki.tunnelClient("constructor")
		tc := c.ReloadingTLSConfig().Clone()
		tc.ServerName = sni
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}}
		resp, err := hc.Get("https://" + st.TunnelAddr + "/_paddock/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("health through the tunnel: %s", resp.Status)
		}
	})

	refused := []struct {
		name string
		dial func(ctx context.Context) (net.Conn, error)
	}{
		{"allocator certificate", func(ctx context.Context) (net.Conn, error) {
			return pki.tunnelClient("allocator").DialSNI(ctx, st.TunnelAddr, sni)
		}},
		{"proxy certificate of another CA", func(ctx context.Context) (net.Conn, error) {
			return newTestPKI(t).tunnelClient("proxy").DialSNI(ctx, st.TunnelAddr, sni)
		}},
		{"no certificate", func(ctx context.Context) (net.Conn, error) {
			var d tls.Dialer
			d.Config = &tls.Config{InsecureSkipVerify: true, ServerName: sni} // the server is not what is tested here
			return d.DialContext(ctx, "tcp", st.TunnelAddr)
		}},
		{"unknown instance", func(ctx context.Context) (net.Conn, error) {
			return pki.tunnelClient("proxy").DialSNI(ctx, st.TunnelAddr, stunnel.BackendSNI("i-nope"))
		}},
		{"no instance SNI", func(ctx context.Context) (net.Conn, error) {
			return pki.tunnelClient("proxy").DialSNI(ctx, st.TunnelAddr, "zookeeper")
		}},
	}
	for _, c := range refused {
		t.Run("refused: "+c.name, func(t *testing.T) {
			code, body, err := getVia(c.dial, "/")
			if err == nil {
				t.Fatalf("GET / through the tunnel answered %d %q: want refused", code, body)
			}
		})
	}

	t.Run("node port on loopback only", func(t *testing.T) {
		ci, ok := containerOf(t, cli, id, in.ID)
		if !ok {
			t.Fatal("container not found")
		}
		for _, b := range ci.HostConfig.PortBindings["9200/tcp"] {
			if b.HostIP != "127.0.0.1" {
				t.Errorf("node port requested on %q", b.HostIP)
			}
		}
		for _, b := range ci.NetworkSettings.Ports["9200/tcp"] {
			if b.HostIP != "127.0.0.1" {
				t.Errorf("node port published on %q", b.HostIP)
			}
		}
		// From this host's other addresses the node port does not answer.
		for _, ip := range hostIPs(t) {
			addr := net.JoinHostPort(ip, strconv.Itoa(st.HostPort))
			if code, _, err := getVia(func(ctx context.Context) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", addr)
			}, "/"); err == nil {
				t.Errorf("node answered %d on %s: its port must be bound to 127.0.0.1 only", code, addr)
			}
		}
	})
}

// hostIPs are this host's non-loopback IPv4 addresses.
func hostIPs(t testing.TB) []string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			out = append(out, n.IP.String())
		}
	}
	if len(out) == 0 {
		fmt.Println("no non-loopback address: the off-loopback check is vacuous here")
	}
	return out
}
