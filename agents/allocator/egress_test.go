package allocator

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"paddock/agents/node"
	"paddock/engine/testenv"
	"paddock/stunnel"
)

func egressLoader(t testing.TB, ca *stunnel.CA, role, id string) *stunnel.Loader {
	t.Helper()
	key, keyPEM, err := stunnel.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(key.Public(), stunnel.Leaf{Identity: stunnel.Identity{Role: role, ID: id}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l, err := stunnel.NewPEMLoader(cert, keyPEM, ca.CertPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// connectVia asks the egress socket for target via the tunnel and, when
// it answers 200, GETs / over the stream.
func connectVia(t *testing.T, sock, method, target, via string) (int, string) {
	t.Helper()
	// The path is over the socket name limit: dial it through its
	// directory's descriptor, as the allocator listens.
	d, err := os.Open(filepath.Dir(sock))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := net.DialTimeout("unix", fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), filepath.Base(sock)), 5*time.Second)
	if err != nil {
		t.Fatalf("dial the egress socket: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	req := method + " " + target + " HTTP/1.1\r\nHost: " + target + "\r\n"
	if via != "" {
		req += node.ViaHeader + ": " + via + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read the egress answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if _, err := io.WriteString(c, "GET /hello HTTP/1.1\r\nHost: peer\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	inner, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read the peer's answer through the egress: %v", err)
	}
	b, _ := io.ReadAll(inner.Body)
	return inner.StatusCode, string(b)
}

// TestEgress: a node's egress socket (under a state dir too deep for a
// plain socket path) forwards a CONNECT to the peer's allocator tunnel
// with the caller's deployment in the SNI; the tunnel's name check
// refuses another deployment's instance (403), a missing via or another
// method is a 400, a tunnel that is not there a 502; an instance gone
// loses its socket.
func TestEgress(t *testing.T) {
	ca, _, err := stunnel.NewCA("egress-test-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "peer says hello") }))
	defer peer.Close()
	// The peer's allocator tunnel: instance "t1" of deployment "dep-a".
	srv, err := stunnel.NewServer(stunnel.ServerConfig{
		Options: stunnel.Options{Name: "peer-tunnel", Loader: egressLoader(t, ca, "allocator", "a2"), Allow: stunnel.Allow{Roles: []string{"allocator"}}},
		AdmitName: func(sn string) error {
			target, dep, ok := stunnel.PeerFromSNI(sn)
			if !ok || target != "t1" || dep != "dep-a" {
				return fmt.Errorf("no instance %q of %q here", target, dep)
			}
			return nil
		},
		Target: stunnel.DialTarget(peer.Listener.Addr().String()),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Serve(ctx, ln) }()
	via := ln.Addr().String()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := closed.Addr().String()
	closed.Close()

	stateDir := filepath.Join(t.TempDir(), strings.Repeat("deep", 20))
	reg := prometheus.NewRegistry()
	m := newEgressMetrics(reg)
	eg, err := newEgress(ctx, Config{ID: "a1", StateDir: stateDir, TunnelLoader: egressLoader(t, ca, "allocator", "a1")},
		slog.New(slog.NewTextHandler(io.Discard, nil)), m)
	if err != nil {
		t.Fatal(err)
	}
	defer eg.close()
	sockOf := func(iid, dep string) string {
		dir, err := eg.prepare(iid, dep)
		if err != nil {
			t.Fatal(err)
		}
		sock := filepath.Join(dir, filepath.Base(node.ContainerEgressSocket))
		if len(sock) <= maxUnixPath {
			t.Fatalf("socket path %s is short: the test wants one over %d characters", sock, maxUnixPath)
		}
		return sock
	}
	a, b := sockOf("src-a", "dep-a"), sockOf("src-b", "dep-b")

	for _, tc := range []struct {
		name, sock, method, target, via string
		code                            int
		body                            string
	}{
		{"same deployment", a, "CONNECT", "t1" + node.PeerHostSuffix + ":80", via, 200, "peer says hello"},
		{"another deployment's instance", b, "CONNECT", "t1" + node.PeerHostSuffix + ":80", via, 403, "remote error"},
		{"no via", a, "CONNECT", "t1" + node.PeerHostSuffix + ":80", "", 400, node.ViaHeader},
		{"not a peer host", a, "CONNECT", "example.com:80", via, 400, "CONNECT"},
		{"not CONNECT", a, "GET", "t1" + node.PeerHostSuffix + ":80", via, 400, "got GET"},
		{"tunnel not there", a, "CONNECT", "t1" + node.PeerHostSuffix + ":80", nowhere, 502, "connect to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := connectVia(t, tc.sock, tc.method, tc.target, tc.via)
			if code != tc.code || !strings.Contains(body, tc.body) {
				t.Fatalf("answer %d %q, want %d with %q", code, body, tc.code, tc.body)
			}
		})
	}
	for result, want := range map[string]float64{"ok": 1, "refused": 1, "bad_request": 3, "unreachable": 1} {
		if got := value(m.conns.WithLabelValues(result)); got != want {
			t.Errorf("egress connections %s: %v, want %v", result, got, want)
		}
	}
	if got := value(m.sockets); got != 2 {
		t.Errorf("egress sockets %v, want 2", got)
	}
	testenv.Eventually(t, 10*time.Second, "egress bytes counted", func() bool { return value(m.bytes.WithLabelValues("out")) > 0 })

	eg.sync(map[string]string{"src-a": "dep-a"})
	if _, err := os.Stat(filepath.Dir(b)); !os.IsNotExist(err) {
		t.Fatalf("the socket directory of a gone instance stays: %v", err)
	}
	if got := value(m.sockets); got != 1 {
		t.Errorf("egress sockets after sync %v, want 1", got)
	}
	if code, body := connectVia(t, a, "CONNECT", "t1"+node.PeerHostSuffix+":80", via); code != 200 {
		t.Fatalf("the kept socket answers %d %s", code, body)
	}
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue() + m.GetGauge().GetValue()
}

// BenchmarkPeerEgress compares a node's peer call made directly (what
// nodes of one host did over their shared Docker network) with the same
// call through the egress and an allocator tunnel (what they do now,
// on one host as across hosts): keep-alive connections both ways, so
// the difference is the per-request cost of the two extra hops and
// TLS, not connection setup. Figures: docs/benchmarks.md, "Peer
// egress".
func BenchmarkPeerEgress(b *testing.B) {
	ca, _, err := stunnel.NewCA("egress-bench-ca", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer peer.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := stunnel.NewServer(stunnel.ServerConfig{
		Options: stunnel.Options{Name: "peer-tunnel", Loader: egressLoader(b, ca, "allocator", "a2"), Allow: stunnel.Allow{Roles: []string{"allocator"}}},
		Target:  stunnel.DialTarget(peer.Listener.Addr().String()), Logger: quiet,
	})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Serve(ctx, ln) }()
	eg, err := newEgress(ctx, Config{ID: "a1", StateDir: b.TempDir(), TunnelLoader: egressLoader(b, ca, "allocator", "a1")}, quiet,
		newEgressMetrics(prometheus.NewRegistry()))
	if err != nil {
		b.Fatal(err)
	}
	defer eg.close()
	dir, err := eg.prepare("src", "dep")
	if err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(dir, filepath.Base(node.ContainerEgressSocket))
	via := ln.Addr().String()
	egressTr := &http.Transport{MaxIdleConnsPerHost: 16, DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", sock)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s: %s\r\n\r\n", addr, addr, node.ViaHeader, via)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != 200 {
			c.Close()
			return nil, fmt.Errorf("egress: %v %v", resp, err)
		}
		return c, nil
	}}
	for _, size := range []int{1 << 10, 64 << 10} {
		body := strings.Repeat("x", size)
		for _, p := range []struct {
			name string
			url  string
			tr   *http.Transport
		}{
			{"direct", peer.URL, &http.Transport{MaxIdleConnsPerHost: 16}},
			{"egress+tunnel", "http://t1" + node.PeerHostSuffix, egressTr},
		} {
			b.Run(fmt.Sprintf("%s/%dKiB", p.name, size>>10), func(b *testing.B) {
				hc := &http.Client{Transport: p.tr}
				b.SetBytes(int64(size))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					resp, err := hc.Post(p.url+"/_paddock/replication/ops", "application/json", strings.NewReader(body))
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
	}
}
