package stunnel

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// testPKI is a CA with helpers that write certificates to files.
type testPKI struct {
	t   *testing.T
	dir string
	ca  *CA
	crl []*big.Int
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	ca, _, err := NewCA("paddock test CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := &testPKI{t: t, dir: dir, ca: ca}
	p.write("ca.pem", ca.CertPEM)
	return p
}

func (p *testPKI) write(name string, b []byte) string {
	p.t.Helper()
	f := filepath.Join(p.dir, name)
	tmp := f + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Rename(tmp, f); err != nil {
		p.t.Fatal(err)
	}
	return f
}

func (p *testPKI) caFile() string { return filepath.Join(p.dir, "ca.pem") }

// issue writes <name>.crt/.key for identity and returns their paths and
// the certificate's serial.
func (p *testPKI) issue(name string, l Leaf) (certFile, keyFile string, serial *big.Int) {
	p.t.Helper()
	key, keyPEM, err := GenerateKey()
	if err != nil {
		p.t.Fatal(err)
	}
	if l.IPs == nil {
		l.IPs = []net.IP{net.ParseIP("127.0.0.1")}
	}
	certPEM, err := p.ca.Issue(key.Public(), l)
	if err != nil {
		p.t.Fatal(err)
	}
	certs, _ := ParseCerts(certPEM)
	return p.write(name+".crt", certPEM), p.write(name+".key", keyPEM), certs[0].SerialNumber
}

func (p *testPKI) loader(name string, role, id string) *Loader {
	p.t.Helper()
	c, k, _ := p.issue(name, Leaf{Identity: Identity{Role: role, ID: id}, TTL: time.Hour})
	l, err := NewFileLoader(c, k, p.caFile(), "")
	if err != nil {
		p.t.Fatal(err)
	}
	return l
}

func (p *testPKI) revoke(s *big.Int) string {
	p.t.Helper()
	p.crl = append(p.crl, s)
	b, err := p.ca.CRL(int64(len(p.crl)), p.crl, time.Hour)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.write("ca.crl", b)
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// echoServer echoes every connection; it stops with the test.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// startServer runs a tunnel server on a free port until the test ends.
func startServer(t *testing.T, cfg ServerConfig) (*Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLog()
	}
	s, err := NewServer(cfg)
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
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop within 10s")
		}
	})
	return s, ln.Addr().String()
}

// startClient runs a tunnel client listener until the test ends.
func startClient(t *testing.T, cfg ClientConfig) (*Client, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLog()
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("client did not stop within 10s")
		}
	})
	return c, ln.Addr().String()
}

// roundTrip writes msg on c and reads it back (deadline 10s).
func roundTrip(c net.Conn, msg string) error {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return errors.New("echo mismatch: got " + string(buf))
	}
	return nil
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", d, what)
		case <-tick.C:
		}
	}
}

// metricValue reads a counter or gauge.
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
