package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"paddock/agents/node"
	"paddock/engine"
)

// TestHTTPSListenerAndTLSBackends: clients reach the proxy over TLS, and
// backends marked TLS (allocator tunnels) are dialled with BackendTLS.
func TestHTTPSListenerAndTLSBackends(t *testing.T) {
	backend := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", "tls-backend")
		io.WriteString(w, r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(backend.Close)
	roots := x509.NewCertPool()
	roots.AddCert(backend.Certificate())
	p := startProxy(t, func(c *Config) {
		c.HTTPSAddr = "127.0.0.1:0"
		c.TLSConfig = &tls.Config{Certificates: backend.TLS.Certificates, MinVersion: tls.VersionTLS12}
		c.BackendTLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	})
	be := esBackend("t1", "z1", "a1", backend.Listener.Addr().String())
	be.TLS = true
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, be)}, nil)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	req, _ := http.NewRequest(http.MethodGet, "https://"+p.HTTPSAddr()+"/", nil)
	req.Host = testID + ".localhost"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "tls-backend" || string(b) != "https" {
		t.Fatalf("over TLS both ways: %d from %q, proto %q", resp.StatusCode, resp.Header.Get("X-Backend"), b)
	}
	// A plain client on the TLS port gets nothing useful, and the proxy
	// carries on.
	nc, err := net.Dial("tcp", p.HTTPSAddr())
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(nc, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	io.ReadAll(nc)
	nc.Close()
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after a plain-text client on the TLS port: %v", err)
	} else {
		resp.Body.Close()
	}
}

// TestThroughNode uses the stand-in Elasticsearch node as the backend.
func TestThroughNode(t *testing.T) {
	n, err := node.NewServer(node.Config{Name: "n1", ClusterName: testID, DataDir: t.TempDir(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	p := startProxy(t, nil)
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("n1", "z1", "a1", ln.Addr().String()))}, nil)
	c := newClient()
	do := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, "http://"+p.HTTPAddr()+path, strings.NewReader(body))
		req.Host = testID + ".localhost"
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, m := do("GET", "/", ""); code != 200 || m["cluster_name"] != testID {
		t.Fatalf("GET /: %d %v", code, m)
	}
	if code, m := do("PUT", "/books/_doc/1?refresh=true", `{"title":"paddock"}`); code/100 != 2 {
		t.Fatalf("index: %d %v", code, m)
	}
	if code, m := do("GET", "/books/_doc/1", ""); code != 200 || m["_source"].(map[string]any)["title"] != "paddock" {
		t.Fatalf("get: %d %v", code, m)
	}
}

func TestMetricsAndHealth(t *testing.T) {
	es := newTestBackend(t, "es-1")
	maddr := deadAddr(t)
	p := startProxy(t, func(c *Config) { c.MetricsAddr = maddr })
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("es-1", "z1", "a1", es.addr()))}, nil)
	c := newClient()
	get(t, c, p.HTTPAddr(), testID+".localhost", "/", nil)
	get(t, c, p.HTTPAddr(), "nope.localhost", "/", nil)
	var body string
	waitFor(t, 5*time.Second, "the metrics endpoint", func() bool {
		resp, err := http.Get("http://" + maddr + "/metrics")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return resp.StatusCode == 200
	})
	for _, want := range []string{
		`paddock_proxy_requests_total{code="200",deployment="` + testID + `"} 1`,
		`paddock_proxy_requests_total{code="404",deployment="_unknown"} 1`,
		`paddock_proxy_upstream_seconds_count 1`,
		`paddock_proxy_routes 1`,
		`paddock_proxy_cache_age_seconds`,
		`paddock_proxy_zookeeper_connected 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	resp, err := http.Get("http://" + maddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"zookeeper"`) {
		t.Fatalf("healthz: %d %s", resp.StatusCode, b)
	}
}
