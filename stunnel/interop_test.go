package stunnel

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// stunnelBinary finds Debian's stunnel4; a test without it skips, or
// fails under CI=true.
func stunnelBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"stunnel4", "stunnel"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("stunnel4 not installed under CI (apt-get install stunnel4)")
	}
	t.Skip("stunnel4 not installed (apt-get install stunnel4)")
	return ""
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runStunnel renders a stunnel.conf for svc, starts stunnel in the
// foreground and waits until it accepts.
func runStunnel(t *testing.T, svc ConfService) {
	t.Helper()
	bin := stunnelBinary(t)
	dir := t.TempDir()
	logFile := filepath.Join(dir, "stunnel.log")
	conf, err := RenderConf(ConfGlobal{Foreground: true, Output: logFile, Debug: 6}, svc)
	if err != nil {
		t.Fatal(err)
	}
	cf := filepath.Join(dir, "stunnel.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, cf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("stunnel.conf:\n%s\nstunnel output:\n%s%s", conf, out.String(), b)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", svc.Accept, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stunnel did not accept on %s within 15s", svc.Accept)
		}
		select {
		case <-exited:
			t.Fatalf("stunnel exited: %s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestInteropOurClientToStunnelServer(t *testing.T) {
	p := newPKI(t)
	backend := echoServer(t)
	sc, sk, _ := p.issue("stunnel-srv", Leaf{Identity: Identity{Role: "director", ID: "d1"}, TTL: time.Hour})
	accept := freeAddr(t)
	runStunnel(t, ConfService{Name: "zk", Accept: accept, Connect: backend, CertFile: sc, KeyFile: sk, CAFile: p.caFile(),
		Allow: Allow{Roles: []string{"proxy"}}})

	cases := []struct {
		name, role string
		admitted   bool
	}{
		{"allowed role", "proxy", true},
		{"wrong role refused by checkHost", "allocator", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cli, err := NewClient(ClientConfig{Options: Options{Loader: p.loader("cli-"+tc.role, tc.role, "x1"), Allow: Allow{Roles: []string{"director"}}},
				Remote: accept, Logger: quietLog()})
			if err != nil {
				t.Fatal(err)
			}
			c, err := cli.DialContext(context.Background(), "tcp", "")
			if err == nil {
				err = roundTrip(c, "through stunnel")
				c.Close()
			}
			if tc.admitted && err != nil {
				t.Fatalf("our client through stunnel: %v", err)
			}
			if !tc.admitted && err == nil {
				t.Fatal("stunnel admitted a certificate of the wrong role")
			}
		})
	}
}

func TestInteropStunnelClientToOurServer(t *testing.T) {
	p := newPKI(t)
	backend := echoServer(t)
	srv, srvAddr := startServer(t, ServerConfig{
		Options: Options{Loader: p.loader("srv", "director", "d1"), Allow: Allow{Roles: []string{"proxy"}}},
		Target:  DialTarget(backend),
	})
	cases := []struct {
		name, role, expect string
		admitted           bool
	}{
		{"allowed role", "proxy", "director", true},
		{"wrong role refused by our server", "allocator", "director", false},
		{"stunnel refuses a server of the wrong role", "proxy", "constructor", false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cc, ck, _ := p.issue("stunnel-cli-"+tc.role, Leaf{Identity: Identity{Role: tc.role, ID: "s1"}, TTL: time.Hour})
			accept := freeAddr(t)
			runStunnel(t, ConfService{Name: "zk", Client: true, Accept: accept, Connect: srvAddr, CertFile: cc, KeyFile: ck,
				CAFile: p.caFile(), Allow: Allow{Roles: []string{tc.expect}}, SNI: "zookeeper"})
			// (the readiness probe of runStunnel may already have been refused)
			failsBefore := srv.Status().HandshakeFailures[ReasonNotAllowed]
			c, err := net.Dial("tcp", accept)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = roundTrip(c, strings.Repeat("interop ", 1000))
			if tc.admitted && err != nil {
				t.Fatalf("stunnel client through our server: %v", err)
			}
			if !tc.admitted && err == nil {
				t.Fatalf("case %d: connection admitted, want refusal", i)
			}
			if tc.role == "allocator" {
				eventually(t, 5*time.Second, fmt.Sprintf("our server counting the refusal (%v)", srv.Status().HandshakeFailures), func() bool {
					return srv.Status().HandshakeFailures[ReasonNotAllowed] > failsBefore
				})
			}
		})
	}
}

// TestInteropStunnelHonoursOurCRL: a stunnel server given the CRL the
// CA signs (CRLfile) refuses a revoked certificate of an allowed role.
func TestInteropStunnelHonoursOurCRL(t *testing.T) {
	p := newPKI(t)
	backend := echoServer(t)
	sc, sk, _ := p.issue("stunnel-srv", Leaf{Identity: Identity{Role: "director", ID: "d1"}, TTL: time.Hour})
	_, _, revoked := p.issue("cli-revoked", Leaf{Identity: Identity{Role: "proxy", ID: "gone"}, TTL: time.Hour})
	crl := p.revoke(revoked)
	accept := freeAddr(t)
	runStunnel(t, ConfService{Name: "zk", Accept: accept, Connect: backend, CertFile: sc, KeyFile: sk, CAFile: p.caFile(),
		CRLFile: crl, Allow: Allow{Roles: []string{"proxy"}}})
	dial := func(name string) error {
		l, err := NewFileLoader(p.dir+"/"+name+".crt", p.dir+"/"+name+".key", p.caFile(), "")
		if err != nil {
			t.Fatal(err)
		}
		cli, _ := NewClient(ClientConfig{Options: Options{Loader: l, Allow: Allow{Roles: []string{"director"}}}, Remote: accept, Logger: quietLog()})
		c, err := cli.DialContext(context.Background(), "tcp", "")
		if err == nil {
			err = roundTrip(c, "crl")
			c.Close()
		}
		return err
	}
	p.issue("cli-ok", Leaf{Identity: Identity{Role: "proxy", ID: "fine"}, TTL: time.Hour})
	if err := dial("cli-ok"); err != nil {
		t.Fatalf("valid certificate refused: %v", err)
	}
	if err := dial("cli-revoked"); err == nil {
		t.Fatal("stunnel admitted a revoked certificate")
	}
}
