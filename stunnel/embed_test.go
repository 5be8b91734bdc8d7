package stunnel

import (
	"context"
	"crypto/tls"
	"io"
	"math/big"
	"net"
	"testing"
	"time"
)

// tagServer answers every connection with its name.
func tagServer(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, name)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func TestSNIRouterAndReloadingClientConfig(t *testing.T) {
	p := newPKI(t)
	backends := map[string]string{"inst-1": tagServer(t, "one"), "inst-2": tagServer(t, "two")}
	serials := make(chan *big.Int, 10)
	router := SNIRouter(func(id string) (string, bool) { a, ok := backends[id]; return a, ok })
	_, srvAddr := startServer(t, ServerConfig{
		Options: Options{Name: "nodes", Loader: p.loader("alloc", "allocator", "a1"), Allow: Allow{Roles: []string{"proxy"}}},
		Target: func(ctx context.Context, peer Peer) (net.Conn, error) {
			serials <- peer.Cert.SerialNumber
			return router(ctx, peer)
		},
	})
	cliLoader := p.loader("proxy", "proxy", "p1")
	cli, err := NewClient(ClientConfig{Options: Options{Loader: cliLoader, Allow: Allow{Roles: []string{"allocator"}}}, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	base := cli.ReloadingTLSConfig()
	get := func(backend string) (string, error) {
		cfg := base.Clone()
		cfg.ServerName = BackendSNI(backend)
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srvAddr, cfg)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		return string(b), err
	}
	cases := []struct {
		backend, want string
	}{
		{"inst-1", "one"},
		{"inst-2", "two"},
		{"inst-9", ""}, // unknown: the tunnel closes the connection
	}
	for _, tc := range cases {
		t.Run(tc.backend, func(t *testing.T) {
			got, _ := get(tc.backend)
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	for len(serials) > 0 {
		<-serials
	}
	// A reload of the client certificate applies to the next handshake
	// through the same tls.Config.
	p.issue("proxy", Leaf{Identity: Identity{Role: "proxy", ID: "p1"}, TTL: 2 * time.Hour})
	if err := cliLoader.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := get("inst-1"); err != nil {
		t.Fatal(err)
	}
	if s := <-serials; s.Cmp(cliLoader.Current().Leaf.SerialNumber) != 0 {
		t.Fatalf("server saw serial %s, want the reloaded certificate's %s", s, cliLoader.Current().Leaf.SerialNumber)
	}
	// The same config refuses a server of the wrong role.
	_, impostor := startServer(t, ServerConfig{
		Options: Options{Loader: p.loader("imp", "proxy", "evil"), Allow: Allow{AnyPeer: true}},
		Target:  DialTarget(backends["inst-1"]),
	})
	cfg := base.Clone()
	cfg.ServerName = BackendSNI("inst-1")
	if c, err := tls.Dial("tcp", impostor, cfg); err == nil {
		c.Close()
		t.Fatal("a proxy certificate was accepted as an allocator tunnel")
	}
}

func TestBackendSNI(t *testing.T) {
	cases := []struct {
		in   string
		want string
		ok   bool
	}{
		{BackendSNI("abc"), "abc", true},
		{"abc", "", false},
		{".node.paddock", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := BackendFromSNI(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("BackendFromSNI(%q) = %q, %v", tc.in, got, ok)
			}
		})
	}
}
