package platform

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"paddock/agents/director"
	"paddock/engine"
	"paddock/engine/testenv"
)

func TestLoopbackAddr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{":2191", "127.0.0.1:2191"},
		{"[::]:2191", "127.0.0.1:2191"},
		{"0.0.0.0:2191", "127.0.0.1:2191"},
		{"127.0.0.1:40000", "127.0.0.1:40000"},
		{"10.1.2.3:2191", "10.1.2.3:2191"},
		{"[::1]:2191", "[::1]:2191"},
		{"director.example:2191", "director.example:2191"},
		{"no-port", "no-port"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := LoopbackAddr(tc.in); got != tc.want {
				t.Errorf("LoopbackAddr(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestReissueLocal: with no enrollment endpoint, up re-issues the
// role certificates from the CA in the state dir and the agents'
// loaders pick them up.
func TestReissueLocal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for r, c := range engine.GenerateCredentials() {
		if err := engine.SaveCredential(engine.CredentialFile(dir, r), c); err != nil {
			t.Fatal(err)
		}
	}
	roles := []engine.Role{engine.RoleAdmin, engine.RoleConstructor}
	ji, err := director.IssueLocal(dir, "", "127.0.0.1:2191", "", roles, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var ats []*director.AgentTLS
	for _, r := range roles {
		at, err := director.NewAgentTLS(dir, string(r), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ats = append(ats, at)
	}
	before := ats[0].Loader.Current().Leaf.SerialNumber
	// Pretend the certificates are due: two thirds of their life passed.
	due := ji
	due.JoinedAt, due.NotAfter = time.Now().Add(-2*time.Second), time.Now().Add(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go reissueLocal(ctx, slog.New(slog.DiscardHandler), dir, "127.0.0.1:2191", due, time.Hour, ats)
	for _, at := range ats {
		testenv.Eventually(t, 10*time.Second, at.Role+"'s certificate to be re-issued and reloaded", func() bool {
			return at.Loader.Current().Leaf.SerialNumber.Cmp(before) != 0 && at.Loader.Current().Generation >= 2
		})
		if got := at.Loader.Current().Identity.Role; got != at.Role {
			t.Errorf("re-issued certificate of %s has role %s", at.Role, got)
		}
	}
	after, err := director.LoadJoinInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if after.ID != ji.ID || !after.NotAfter.After(ji.NotAfter.Add(-time.Second)) {
		t.Errorf("join info after re-issue: %+v, before %+v", after, ji)
	}
}
