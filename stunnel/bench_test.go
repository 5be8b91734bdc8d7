package stunnel

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// benchChain runs a client+server tunnel pair in front of sink and
// returns the client's plain address.
func benchChain(b *testing.B, sink func(net.Conn)) string {
	b.Helper()
	ca, _, err := NewCA("bench", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	mk := func(role string) *Loader {
		key, keyPEM, _ := GenerateKey()
		cert, _ := ca.Issue(key.Public(), Leaf{Identity: Identity{Role: role, ID: "b"}, TTL: time.Hour})
		l, err := NewPEMLoader(cert, keyPEM, ca.CertPEM, nil)
		if err != nil {
			b.Fatal(err)
		}
		return l
	}
	bl, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() {
		for {
			c, err := bl.Accept()
			if err != nil {
				return
			}
			go sink(c)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	srv, _ := NewServer(ServerConfig{Options: Options{Loader: mk("director"), Allow: Allow{Roles: []string{"proxy"}}, DrainTimeout: time.Second},
		Target: DialTarget(bl.Addr().String()), Logger: quietLog()})
	sl, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ctx, sl)
	cli, _ := NewClient(ClientConfig{Options: Options{Loader: mk("proxy"), Allow: Allow{Roles: []string{"director"}}, DrainTimeout: time.Second},
		Remote: sl.Addr().String(), Logger: quietLog()})
	cl, _ := net.Listen("tcp", "127.0.0.1:0")
	go cli.Serve(ctx, cl)
	b.Cleanup(func() { cancel(); bl.Close() })
	return cl.Addr().String()
}

// BenchmarkBulk pushes one stream through a client+server pair.
func BenchmarkBulk(b *testing.B) {
	addr := benchChain(b, func(c net.Conn) { io.Copy(io.Discard, c); c.Close() })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandshake opens a new tunnelled connection (a TLS handshake
// between the ends) per iteration, with a 1-byte echo.
func BenchmarkHandshake(b *testing.B) {
	addr := benchChain(b, func(c net.Conn) { io.Copy(c, c); c.Close() })
	b.ResetTimer()
	for range b.N {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		if err := roundTrip(c, "x"); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
