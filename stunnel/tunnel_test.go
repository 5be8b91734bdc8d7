package stunnel

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRoundTripClientToServer(t *testing.T) {
	p := newPKI(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	backend := echoServer(t)
	srv, srvAddr := startServer(t, ServerConfig{
		Options: Options{Name: "srv", Loader: p.loader("srv", "director", "d1"), Allow: Allow{Roles: []string{"proxy"}}, Metrics: m},
		Target:  DialTarget(backend),
	})
	_, cliAddr := startClient(t, ClientConfig{
		Options: Options{Name: "cli", Loader: p.loader("cli", "proxy", "p1"), Allow: Allow{Roles: []string{"director"}}, Metrics: m},
		Remote:  srvAddr,
	})
	c, err := net.Dial("tcp", cliAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 3 {
		if err := roundTrip(c, fmt.Sprintf("hello %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "one admitted connection", func() bool {
		return metricValue(m.Connections.WithLabelValues("srv")) == 1 && metricValue(m.Active.WithLabelValues("srv")) == 1
	})
	if st := srv.Status(); st.Open != 1 || st.Identity != "director/d1" {
		t.Errorf("status = %+v, want one open connection as director/d1", st)
	}
	c.Close()
	eventually(t, 5*time.Second, "connection closed on both sides", func() bool {
		return metricValue(m.Active.WithLabelValues("srv")) == 0 && metricValue(m.Active.WithLabelValues("cli")) == 0
	})
	if got := metricValue(m.Bytes.WithLabelValues("srv", "in")); got != float64(len("hello 0")*3) {
		t.Errorf("server bytes in = %v, want %d", got, len("hello 0")*3)
	}
}

func TestDialerNegotiatesTLS13AndSNI(t *testing.T) {
	p := newPKI(t)
	backend := echoServer(t)
	sni := make(chan string, 1)
	_, srvAddr := startServer(t, ServerConfig{
		Options: Options{Loader: p.loader("srv", "allocator", "a1"), Allow: Allow{Roles: []string{"proxy"}}},
		Target: func(ctx context.Context, peer Peer) (net.Conn, error) {
			sni <- peer.ServerName + " " + peer.Identity.String()
			return DialTarget(backend)(ctx, peer)
		},
	})
	cli, err := NewClient(ClientConfig{Options: Options{Loader: p.loader("cli", "proxy", "p1"), Allow: Allow{Roles: []string{"allocator"}}}, Remote: srvAddr, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := cli.DialSNI(context.Background(), "", "inst-42")
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if v := tc.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("TLS version = %s, want TLS 1.3", tls.VersionName(v))
	}
	if err := roundTrip(tc, "ping"); err != nil {
		t.Fatal(err)
	}
	if got := <-sni; got != "inst-42 proxy/p1" {
		t.Errorf("target saw %q, want SNI inst-42 from proxy/p1", got)
	}
}

func TestRefusals(t *testing.T) {
	p := newPKI(t)
	other := newPKI(t) // a CA the server does not trust
	backend := echoServer(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	srvLoader := p.loader("srv", "allocator", "a1")

	expCert, expKey, _ := p.issue("expired", Leaf{Identity: Identity{Role: "proxy", ID: "old"},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	revCert, revKey, revSerial := p.issue("revoked", Leaf{Identity: Identity{Role: "proxy", ID: "gone"}, TTL: time.Hour})
	crl := p.revoke(revSerial)
	srvLoader.CRLFile = crl
	if err := srvLoader.Reload(); err != nil {
		t.Fatal(err)
	}
	_, srvAddr := startServer(t, ServerConfig{
		Options: Options{Name: "nodes", Loader: srvLoader, Allow: Allow{Roles: []string{"proxy"}}, Metrics: m},
		Target:  DialTarget(backend),
	})

	// rawCert builds a client tls.Config straight from files, so expired
	// material (which a Loader refuses to load) can be presented.
	rawCert := func(certFile, keyFile string) []tls.Certificate {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{c}
	}
	wrongRoleC, wrongRoleK, _ := p.issue("wrongrole", Leaf{Identity: Identity{Role: "allocator", ID: "a2"}, TTL: time.Hour})
	otherC, otherK, _ := other.issue("foreign", Leaf{Identity: Identity{Role: "proxy", ID: "p9"}, TTL: time.Hour})
	okC, okK, _ := p.issue("good", Leaf{Identity: Identity{Role: "proxy", ID: "p1"}, TTL: time.Hour})

	cases := []struct {
		name   string
		certs  []tls.Certificate
		reason string
	}{
		{"wrong role", rawCert(wrongRoleC, wrongRoleK), ReasonNotAllowed},
		{"expired certificate", rawCert(expCert, expKey), ReasonExpired},
		{"revoked certificate", rawCert(revCert, revKey), ReasonRevoked},
		{"unknown CA", rawCert(otherC, otherK), ReasonUnknownAuthority},
		{"no certificate", nil, ReasonNoCertificate},
		{"allowed proxy", rawCert(okC, okK), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := metricValue(m.HandshakeFailures.WithLabelValues("nodes", tc.reason))
			conn, err := tls.Dial("tcp", srvAddr, &tls.Config{Certificates: tc.certs, InsecureSkipVerify: true})
			if err == nil {
				// TLS 1.3: the client learns of a refused certificate on
				// its first read.
				err = roundTrip(conn, "x")
				conn.Close()
			}
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("allowed peer refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("connection admitted, want refusal")
			}
			eventually(t, 5*time.Second, "failure counted as "+tc.reason, func() bool {
				return metricValue(m.HandshakeFailures.WithLabelValues("nodes", tc.reason)) == before+1
			})
		})
	}
}

func TestClientRefusesServerOfWrongRole(t *testing.T) {
	p := newPKI(t)
	backend := echoServer(t)
	_, srvAddr := startServer(t, ServerConfig{
		Options: Options{Loader: p.loader("srv", "proxy", "imposter"), Allow: Allow{AnyPeer: true}},
		Target:  DialTarget(backend),
	})
	cli, err := NewClient(ClientConfig{Options: Options{Loader: p.loader("cli", "allocator", "a1"), Allow: Allow{Roles: []string{"director"}}}, Remote: srvAddr, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cli.DialContext(context.Background(), "tcp", "")
	if err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("dial = %v, want refusal of a proxy certificate where a director is expected", err)
	}
}

func TestLoaderKeepsOldMaterialOnFailure(t *testing.T) {
	p := newPKI(t)
	l := p.loader("me", "proxy", "p1")
	gen := l.Current().Generation
	cases := []struct {
		name   string
		break_ func()
	}{
		{"garbage certificate", func() { p.write("me.crt", []byte("not a cert")) }},
		{"missing key", func() { os.Remove(l.KeyFile) }},
		{"certificate of another key", func() {
			c, _, _ := p.issue("other", Leaf{Identity: Identity{Role: "proxy", ID: "p1"}, TTL: time.Hour})
			b, _ := os.ReadFile(c)
			p.write("me.crt", b)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.break_()
			if err := l.Reload(); err == nil {
				t.Fatal("reload of broken material succeeded")
			}
			if l.Current().Generation != gen {
				t.Fatal("broken material replaced the working one")
			}
			if err, _ := l.LastError(); err == nil {
				t.Fatal("last reload error not kept for the status endpoint")
			}
		})
	}
}

// TestReloadUnderLoad streams through several tunnelled connections while
// both ends' certificates are replaced (SIGHUP and timer): no connection
// may drop, and new connections present the new certificates.
func TestReloadUnderLoad(t *testing.T) {
	p := newPKI(t)
	backend := echoServer(t)
	srvLoader := p.loader("srv", "director", "d1")
	cliLoader := p.loader("cli", "proxy", "p1")
	srv, srvAddr := startServer(t, ServerConfig{
		Options: Options{Loader: srvLoader, Allow: Allow{Roles: []string{"proxy"}}},
		Target:  DialTarget(backend),
	})
	_, cliAddr := startClient(t, ClientConfig{
		Options: Options{Loader: cliLoader, Allow: Allow{Roles: []string{"director"}}},
		Remote:  srvAddr,
	})

	// Our own SIGHUP handler first, so the signal can never reach the
	// default action before WatchReload has installed its handler.
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGHUP)
	defer signal.Stop(guard)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srvLoader.WatchReload(ctx, 0, quietLog())
	go cliLoader.watch(ctx, 50*time.Millisecond, nil, quietLog())

	const conns = 8
	stop := make(chan struct{})
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	var sent [conns]int
	for i := range conns {
		c, err := net.Dial("tcp", cliAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				if err := roundTrip(c, fmt.Sprintf("conn %d message %d %s", i, n, strings.Repeat("x", 4096))); err != nil {
					errs <- fmt.Errorf("connection %d dropped after %d messages: %w", i, n, err)
					return
				}
				sent[i] = n
			}
		}()
	}
	eventually(t, 10*time.Second, "all connections streaming", func() bool { return srv.Status().Open == conns })

	// Replace both certificates: server by SIGHUP, client by its timer.
	p.issue("srv", Leaf{Identity: Identity{Role: "director", ID: "d1"}, TTL: 2 * time.Hour})
	p.issue("cli", Leaf{Identity: Identity{Role: "proxy", ID: "p1"}, TTL: 2 * time.Hour})
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "server certificate reloaded", func() bool { return srvLoader.Current().Generation == 2 })
	eventually(t, 10*time.Second, "client certificate reloaded", func() bool { return cliLoader.Current().Generation >= 2 })

	// New connections work with the new material on both sides.
	c, err := net.Dial("tcp", cliAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c, "after reload"); err != nil {
		t.Fatalf("new connection after reload: %v", err)
	}
	c.Close()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i, n := range sent {
		if n == 0 {
			t.Errorf("connection %d made no progress", i)
		}
	}
	if st := srv.Status(); st.CertGeneration != 2 || st.LastReloadError != "" {
		t.Errorf("status after reload = %+v", st)
	}
}

func TestDrainKeepsLiveConnections(t *testing.T) {
	p := newPKI(t)
	backend := echoServer(t)
	s, err := NewServer(ServerConfig{
		Options: Options{Loader: p.loader("srv", "director", "d1"), Allow: Allow{Roles: []string{"proxy"}}, DrainTimeout: 30 * time.Second},
		Target:  DialTarget(backend), Logger: quietLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	cli, err := NewClient(ClientConfig{Options: Options{Loader: p.loader("cli", "proxy", "p1"), Allow: Allow{Roles: []string{"director"}}}, Remote: ln.Addr().String(), Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	live, err := cli.DialContext(context.Background(), "tcp", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(live, "before"); err != nil {
		t.Fatal(err)
	}
	cancel() // SIGTERM in the CLI
	eventually(t, 5*time.Second, "listener closed", func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if err := roundTrip(live, "during drain"); err != nil {
		t.Fatalf("live connection broken by drain: %v", err)
	}
	select {
	case <-done:
		t.Fatal("Serve returned while a connection was live")
	default:
	}
	live.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the last connection closed")
	}
}

func TestDrainTimeoutClosesStragglers(t *testing.T) {
	p := newPKI(t)
	backend := echoServer(t)
	s, err := NewServer(ServerConfig{
		Options: Options{Loader: p.loader("srv", "director", "d1"), Allow: Allow{Roles: []string{"proxy"}}, DrainTimeout: 200 * time.Millisecond},
		Target:  DialTarget(backend), Logger: quietLog(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	cli, _ := NewClient(ClientConfig{Options: Options{Loader: p.loader("cli", "proxy", "p1"), Allow: Allow{Roles: []string{"director"}}}, Remote: ln.Addr().String(), Logger: quietLog()})
	live, err := cli.DialContext(context.Background(), "tcp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := roundTrip(live, "x"); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not force-close after the drain timeout")
	}
	live.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := live.Read(make([]byte, 1)); err != io.EOF && err == nil {
		t.Fatal("straggler still open after the drain timeout")
	}
}

func TestIdleTimeout(t *testing.T) {
	p := newPKI(t)
	backend := echoServer(t)
	_, srvAddr := startServer(t, ServerConfig{
		Options: Options{Loader: p.loader("srv", "director", "d1"), Allow: Allow{Roles: []string{"proxy"}}, IdleTimeout: 300 * time.Millisecond},
		Target:  DialTarget(backend),
	})
	cli, _ := NewClient(ClientConfig{Options: Options{Loader: p.loader("cli", "proxy", "p1"), Allow: Allow{Roles: []string{"director"}}}, Remote: srvAddr, Logger: quietLog()})
	c, err := cli.DialContext(context.Background(), "tcp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c, "x"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("idle connection got data, want it closed")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("idle connection was not closed by the tunnel within 10s")
	}
}

func TestConnectTimeoutToTarget(t *testing.T) {
	p := newPKI(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	// A closed port: the target dial fails and the tunnel drops the
	// connection after the handshake.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	_, srvAddr := startServer(t, ServerConfig{
		Options: Options{Name: "dead", Loader: p.loader("srv", "director", "d1"), Allow: Allow{Roles: []string{"proxy"}}, ConnectTimeout: time.Second, Metrics: m},
		Target:  DialTarget(dead),
	})
	cli, _ := NewClient(ClientConfig{Options: Options{Loader: p.loader("cli", "proxy", "p1"), Allow: Allow{Roles: []string{"director"}}}, Remote: srvAddr, Logger: quietLog()})
	c, err := cli.DialContext(context.Background(), "tcp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c, "x"); err == nil {
		t.Fatal("tunnel to a dead target echoed")
	}
	eventually(t, 5*time.Second, "target failure counted", func() bool {
		return metricValue(m.TargetFailures.WithLabelValues("dead")) == 1
	})
}
