package director

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"paddock/engine"
	"paddock/engine/testenv"
	"paddock/engine/zktest"
	"paddock/stunnel"
)

var env *zktest.Env

func TestMain(m *testing.M) { os.Exit(zktest.Main(m, 1, &env)) }

type zkQuiet struct{}

func (zkQuiet) Printf(string, ...any) {}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startDirector runs a director on free ports for the test.
func startDirector(t *testing.T, p *zktest.Platform) (Addrs, string) {
	t.Helper()
	dir := t.TempDir()
	ready := make(chan Addrs, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{ID: "d1", StateDir: dir,
			Store:       engine.Options{Servers: env.Servers(), Credential: p.Creds[engine.RoleDirector], Logger: quiet()},
			Credentials: p.Creds, ZooKeeper: env.Servers(), TunnelAddr: "127.0.0.1:0", EnrollAddr: "127.0.0.1:0",
			Logger: quiet(), Ready: func(a Addrs) { ready <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("director: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("director did not stop within 15s")
		}
	})
	select {
	case a := <-ready:
		return a, dir
	case err := <-done:
		t.Fatalf("director stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("director not ready within 30s")
	}
	return Addrs{}, ""
}

func TestDirectorPublishesCAAndKeepsKeyPrivate(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	_, dir := startDirector(t, p)
	st, err := os.Stat(filepath.Join(CADir(dir), "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %s, want 0600", st.Mode().Perm())
	}
	// Public: an unauthenticated session reads it.
	anon, _, err := zk.Connect(strings.Split(env.Servers(), ","), 5*time.Second, zk.WithLogger(zkQuiet{}))
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	b, _, err := anon.Get(engine.PathCA)
	if err != nil {
		t.Fatalf("CA not world-readable: %v", err)
	}
	if strings.Contains(string(b), "PRIVATE KEY") {
		t.Fatal("private key material in ZooKeeper")
	}
	// Nobody else may overwrite it.
	if _, err := p.Admin.Set(context.Background(), engine.PathCA, []byte("evil"), engine.AnyVersion); !errors.Is(err, engine.ErrNoAuth) {
		t.Errorf("admin overwrote the CA: %v", err)
	}
}

func TestEnrollmentJoinTunnelAndRenewal(t *testing.T) {
	p := env.Fresh(t, "zone-1", "zone-2")
	addrs, dirState := startDirector(t, p)
	ctx := context.Background()
	ds := p.Connect(t, engine.RoleDirector)
	tok, rec, err := CreateToken(ctx, ds, []string{"allocator", "proxy"}, time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Persistent || rec.ExpiresAt.IsZero() {
		t.Fatalf("ephemeral token record = %+v", rec)
	}

	host := t.TempDir()
	ji, err := Join(ctx, addrs.Enroll, tok.String(), []string{"allocator"}, host)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := engine.LoadCredential(engine.CredentialFile(host, engine.RoleAllocator))
	if err != nil || cred != p.Creds[engine.RoleAllocator] {
		t.Fatalf("allocator credential = %+v, %v", cred, err)
	}
	if _, err := os.Stat(engine.CredentialFile(host, engine.RoleProxy)); err == nil {
		t.Error("credential of a role not asked for was written")
	}
	_, keyFile, _ := TLSFiles(host, "allocator")
	if st, _ := os.Stat(keyFile); st == nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", st)
	}

	// Through the tunnel with the new identity: read and write what the
	// allocator role may.
	at, err := NewAgentTLS(host, "allocator", nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if at.Loader.Current().Identity != (stunnel.Identity{Role: "allocator", ID: ji.ID}) {
		t.Fatalf("certificate identity = %v", at.Loader.Current().Identity)
	}
	s, err := engine.Connect(ctx, engine.Options{Servers: ji.ZooKeeper, Dialer: at.Dialer(), Role: engine.RoleAllocator,
		Credential: cred, ConnectTimeout: 20 * time.Second, Logger: quiet()})
	if err != nil {
		t.Fatalf("ZooKeeper through the tunnel at %s: %v", ji.ZooKeeper, err)
	}
	defer s.Close()
	if _, _, err := s.Platform(ctx); err != nil {
		t.Fatalf("read the platform through the tunnel: %v", err)
	}
	if ji.ZooKeeper != addrs.Tunnel {
		t.Errorf("join told ZooKeeper at %s, want the tunnel %s", ji.ZooKeeper, addrs.Tunnel)
	}

	// Renewal: a fresh certificate, same identity.
	old := at.Loader.Current().Leaf
	if _, err := Renew(ctx, host, "allocator"); err != nil {
		t.Fatal(err)
	}
	if err := at.Loader.Reload(); err != nil {
		t.Fatal(err)
	}
	nw := at.Loader.Current().Leaf
	if nw.SerialNumber.Cmp(old.SerialNumber) == 0 || at.Loader.Current().Identity.ID != ji.ID {
		t.Fatalf("renewal gave serial %s identity %v", nw.SerialNumber, at.Loader.Current().Identity)
	}
	// The live session survives the reload, new dials use the new cert.
	if _, _, err := s.Platform(ctx); err != nil {
		t.Fatalf("session after renewal: %v", err)
	}

	// A certificate of a role the tunnel does not admit is refused.
	ca, _, err := LoadOrCreateCA(dirState)
	if err != nil {
		t.Fatal(err)
	}
	key, keyPEM, _ := stunnel.GenerateKey()
	nodeCert, _ := ca.Issue(key.Public(), stunnel.Leaf{Identity: stunnel.Identity{Role: "node", ID: "n1"}, TTL: time.Hour})
	nl, err := stunnel.NewPEMLoader(nodeCert, keyPEM, ca.CertPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc, _ := stunnel.NewClient(stunnel.ClientConfig{Options: stunnel.Options{Loader: nl, Allow: stunnel.Allow{Roles: []string{"director"}}}, Logger: quiet()})
	if c, err := nc.DialContext(ctx, "tcp", addrs.Tunnel); err == nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a node certificate got through the ZooKeeper tunnel")
		}
		c.Close()
	}
}

func TestJoinRefusals(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	addrs, _ := startDirector(t, p)
	ctx := context.Background()
	ds := p.Connect(t, engine.RoleDirector)
	tok, _, err := CreateToken(ctx, ds, []string{"proxy"}, time.Hour, true)
	if err != nil {
		t.Fatal(err)
	}
	revoked, _, _ := CreateToken(ctx, ds, []string{"allocator"}, 0, true)
	if _, err := RevokeToken(ctx, ds, revoked.Hash()[:12]); err != nil {
		t.Fatal(err)
	}
	expired, _, _ := CreateToken(ctx, ds, []string{"allocator"}, time.Millisecond, false)
	time.Sleep(5 * time.Millisecond) // the token's lifetime, not a wait for a condition
	foreign := tok
	foreign.CAFingerprint = strings.Repeat("ab", 32)

	cases := []struct {
		name  string
		token string
		roles []string
		want  string
	}{
		{"missing role named", tok.String(), []string{"proxy", "allocator"}, "does not grant role(s) allocator"},
		{"revoked token", revoked.String(), []string{"allocator"}, "unknown, revoked or expired"},
		{"expired token", expired.String(), []string{"allocator"}, "unknown, revoked or expired"},
		{"token of another CA", foreign.String(), []string{"proxy"}, "not signed by the CA pinned"},
		{"malformed token", "pdk1.nope", []string{"proxy"}, "malformed roles token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host := t.TempDir()
			_, err := Join(ctx, addrs.Enroll, tc.token, tc.roles, host)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Join = %v, want error containing %q", err, tc.want)
			}
			if _, err := os.Stat(engine.CredentialFile(host, engine.RoleProxy)); err == nil {
				t.Error("credentials written despite the refusal")
			}
		})
	}
	// The persistent token still works, and shows in the list with its use.
	if _, err := Join(ctx, addrs.Enroll, tok.String(), []string{"proxy"}, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	list, err := ListTokens(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != tok.Hash()[:12] || list[0].Uses != 1 {
		t.Fatalf("token list = %+v, want only the persistent token with one use", list)
	}
}

func TestRevokedCertificateRefused(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	addrs, _ := startDirector(t, p)
	ctx := context.Background()
	ds := p.Connect(t, engine.RoleDirector)
	tok, _, err := CreateToken(ctx, ds, []string{"allocator"}, time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	ji, err := Join(ctx, addrs.Enroll, tok.String(), []string{"allocator"}, host)
	if err != nil {
		t.Fatal(err)
	}
	at, err := NewAgentTLS(host, "allocator", nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if at.Loader.CRLFile == "" {
		t.Fatal("joined host has no revocation list")
	}
	c, err := at.Client.DialContext(ctx, "tcp", addrs.Tunnel)
	if err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	c.Close()

	recs, err := RevokeCertificates(ctx, ds, "allocator/"+ji.ID)
	if err != nil || len(recs) != 1 {
		t.Fatalf("revoke = %v, %v", recs, err)
	}
	// The director's tunnel refuses it once the list is re-read.
	testenv.Eventually(t, 30*time.Second, "the tunnel to refuse the revoked certificate", func() bool {
		c, err := at.Client.DialContext(ctx, "tcp", addrs.Tunnel)
		if err != nil {
			return true
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, rerr := c.Read(make([]byte, 1))
		var ne interface{ Timeout() bool }
		return rerr != nil && !(errors.As(rerr, &ne) && ne.Timeout())
	})
	if _, err := Renew(ctx, host, "allocator"); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("renewal of a revoked certificate: %v", err)
	}
	// The published list names it, for every other tunnel end.
	if err := FetchCRL(ctx, addrs.Enroll, tok.CAFingerprint, host); err != nil {
		t.Fatal(err)
	}
	if err := at.Loader.Reload(); err != nil {
		t.Fatal(err)
	}
	if !at.Loader.Current().Revoked[recs[0].Serial] {
		t.Fatal("revoked serial missing from the fetched list")
	}
}
