package director

import (
	"context"
	"testing"
	"time"

	"paddock/engine"
)

// TestIssueLocalAndJoinShareTheHostKey: certificates issued locally for
// one role stay valid when the host later joins for another role.
func TestIssueLocalAndJoinShareTheHostKey(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	addrs, dirState := startDirector(t, p)
	ctx := context.Background()
	for r, c := range p.Creds {
		if err := engine.SaveCredential(engine.CredentialFile(dirState, r), c); err != nil {
			t.Fatal(err)
		}
	}
	ji, err := IssueLocal(dirState, addrs.Enroll, addrs.Tunnel, "local-1", []engine.Role{engine.RoleConstructor, engine.RoleProxy}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	check := func(role string) {
		t.Helper()
		at, err := NewAgentTLS(dirState, role, nil, quiet())
		if err != nil {
			t.Fatalf("%s: %v", role, err)
		}
		s, err := engine.Connect(ctx, engine.Options{Servers: ji.ZooKeeper, Dialer: at.Dialer(), Role: engine.Role(role),
			Credential: p.Creds[engine.Role(role)], ConnectTimeout: 20 * time.Second, Logger: quiet()})
		if err != nil {
			t.Fatalf("%s through the tunnel: %v", role, err)
		}
		s.Close()
	}
	check("constructor")
	check("proxy")
	ds := p.Connect(t, engine.RoleDirector)
	tok, _, err := CreateToken(ctx, ds, []string{"allocator"}, time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Join(ctx, addrs.Enroll, tok.String(), []string{"allocator"}, dirState); err != nil {
		t.Fatal(err)
	}
	check("allocator")
	check("constructor") // still valid: same host key
}
