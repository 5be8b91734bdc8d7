package director

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"paddock/agents/agentkit"
	"paddock/engine"
)

// TestJoinRole: without --join and --token a host that joined earlier
// keeps its tunnel and one that never joined has none; one of the two
// alone is the operator's mistake (a ConfigError), caught before any
// network call.
func TestJoinRole(t *testing.T) {
	t.Parallel()
	joined := t.TempDir()
	if err := os.MkdirAll(TLSDir(joined), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(JoinInfo{ZooKeeper: "director:2191"})
	if err := os.WriteFile(filepath.Join(TLSDir(joined), "join.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name, dir, join, token, zk string
		configErr                  bool
	}{
		{name: "never joined", dir: t.TempDir()},
		{name: "joined earlier", dir: joined, zk: "director:2191"},
		{name: "join without token", dir: t.TempDir(), join: "director", configErr: true},
		{name: "token without join", dir: joined, token: "t", configErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			zk, err := JoinRole(context.Background(), tc.dir, tc.join, tc.token, engine.RoleProxy, time.Second, log)
			var ce *agentkit.ConfigError
			if errors.As(err, &ce) != tc.configErr || (err != nil && !tc.configErr) {
				t.Fatalf("err = %v, want a ConfigError: %v", err, tc.configErr)
			}
			if zk != tc.zk {
				t.Errorf("tunnel = %q, want %q", zk, tc.zk)
			}
		})
	}
}

// TestHostLinkTunnelNeedsCertificate: asking for the tunnel on a host
// without the role's certificate says how to get one instead of
// dialing ZooKeeper in plain.
func TestHostLinkTunnelNeedsCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cred := engine.CredentialFile(dir, engine.RoleProxy)
	if err := os.MkdirAll(filepath.Dir(cred), 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(engine.Credential{User: "proxy", Password: "p"})
	if err := os.WriteFile(cred, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		tls     bool
		wantErr bool
	}{
		{"direct", false, false},
		{"tunnel", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := HostLink{StateDir: dir, Servers: "127.0.0.1:2181", TLS: tc.tls, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			l, err := h.Role(engine.RoleProxy, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tc.wantErr)
			}
			if err == nil && (l.Loader() != nil || l.Options().Dialer != nil || l.Options().Servers != h.Servers) {
				t.Errorf("direct link: loader %v, dialer set %v, servers %q", l.Loader(), l.Options().Dialer != nil, l.Options().Servers)
			}
		})
	}
}
