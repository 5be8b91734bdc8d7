package director

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock/engine"
)

func TestParseZKConfig(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    []string
		version string
		wantErr bool
	}{
		{"three servers", "server.1=127.0.0.1:1:2:participant;0.0.0.0:2181\nserver.3=h3:5:6:observer;h3:2183\nserver.2=h2:3:4:participant;127.0.0.1:2182\nversion=100000003",
			[]string{"server.1=127.0.0.1:1:2:participant;127.0.0.1:2181", "server.2=h2:3:4:participant;127.0.0.1:2182", "server.3=h3:5:6:observer;h3:2183"}, "100000003", false},
		{"no role means participant", "server.7=h:1:2;h:3", []string{"server.7=h:1:2:participant;h:3"}, "", false},
		{"bad id", "server.x=h:1:2;h:3", nil, "", true},
		{"bad quorum address", "server.1=h:1;h:3", nil, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, v, err := ParseZKConfig(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			var lines []string
			for _, s := range got {
				lines = append(lines, s.Line())
			}
			if strings.Join(lines, "|") != strings.Join(tc.want, "|") || v != tc.version {
				t.Fatalf("got %v version %q, want %v version %q", lines, v, tc.want, tc.version)
			}
		})
	}
}

// TestEnsembleGrowsThroughDirector starts one reconfig-enabled ZooKeeper
// with a director beside it, has two more hosts join with the director
// role and grow the ensemble to three, kills the first server and checks
// the platform keeps working, then shrinks the dead server away.
func TestEnsembleGrowsThroughDirector(t *testing.T) {
	env.Need(t) // Java and Debian's ZooKeeper are needed, as for env
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	super := engine.RandomToken(8)
	s1, err := NewLoopbackServer(1)
	if err != nil {
		t.Fatal(err)
	}
	z1, err := StartZKServer(ctx, ZKServerConfig{Dir: filepath.Join(t.TempDir(), "zk1"), Self: s1, SuperPassword: super})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(z1.Stop)

	creds := engine.GenerateCredentials()
	admin, err := engine.Connect(ctx, engine.Options{Servers: s1.Client, Role: engine.RoleAdmin, Credential: creds[engine.RoleAdmin], Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.DefaultPlatformConfig()
	cfg.Identities = creds.Identities()
	if err := engine.Bootstrap(ctx, admin, cfg, []string{"zone-1"}); err != nil {
		t.Fatal(err)
	}
	admin.Close()

	ready := make(chan Addrs, 1)
	dctx, dcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(dctx, Config{ID: "d1", StateDir: t.TempDir(), SuperPassword: super,
			Store:       engine.Options{Servers: s1.Client, Credential: creds[engine.RoleDirector], Logger: quiet()},
			Credentials: creds, ZooKeeper: s1.Client, TunnelAddr: "127.0.0.1:0", EnrollAddr: "127.0.0.1:0",
			Logger: quiet(), Ready: func(a Addrs) { ready <- a }})
	}()
	t.Cleanup(func() { dcancel(); <-done })
	var addrs Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("director: %v", err)
	}
	ds, err := engine.Connect(ctx, engine.Options{Servers: s1.Client, Role: engine.RoleDirector, Credential: creds[engine.RoleDirector], Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	tok, _, err := CreateToken(ctx, ds, []string{"director", "allocator"}, time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}

	// A host with only the allocator role may not touch the ensemble.
	alloc := t.TempDir()
	if _, err := Join(ctx, addrs.Enroll, tok.String(), []string{"allocator"}, alloc); err != nil {
		t.Fatal(err)
	}
	if _, err := ShrinkEnsemble(ctx, alloc, 1); err == nil {
		t.Fatal("an allocator changed the ensemble")
	}

	var servers = []ZKServer{s1}
	for i := 2; i <= 3; i++ {
		host := t.TempDir()
		if _, err := Join(ctx, addrs.Enroll, tok.String(), []string{"director"}, host); err != nil {
			t.Fatal(err)
		}
		self, err := NewLoopbackServer(0)
		if err != nil {
			t.Fatal(err)
		}
		z, st, err := GrowEnsemble(ctx, host, filepath.Join(host, "zk"), self, super)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(z.Stop)
		servers = append(servers, z.Server)
		if z.Server.ID != i || st.Voters != i {
			t.Fatalf("after growth %d: server id %d, %d voters (%+v)", i, z.Server.ID, st.Voters, st)
		}
	}
	st, err := EnsembleOf(ctx, t.TempDir()) // no join info: refused
	if err == nil {
		t.Fatalf("ensemble status without a director certificate: %+v", st)
	}
	st, err = Ensemble(ctx, ds.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if st.Voters != 3 || st.Up != 3 || !st.Quorum || st.Leader == 0 {
		t.Fatalf("ensemble = %+v, want 3 voters up with a leader", st)
	}

	// Kill the first server; the platform keeps working on the others.
	z1.Stop()
	all := servers[0].Client + "," + servers[1].Client + "," + servers[2].Client
	admin2, err := engine.Connect(ctx, engine.Options{Servers: all, Role: engine.RoleAdmin, Credential: creds[engine.RoleAdmin],
		ConnectTimeout: 30 * time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer admin2.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := admin2.Create(ctx, engine.ZonePath("zone-after-kill"), engine.Zone{Name: "zone-after-kill"})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("write after losing server 1: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	st, err = Ensemble(ctx, admin2.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if st.Up != 2 || !st.Quorum {
		t.Fatalf("after the kill: %+v, want 2 of 3 up with quorum", st)
	}

	// Shrink the dead server away (super user on the survivors).
	conn := admin2.Conn()
	if err := conn.AddAuth("digest", []byte("super:"+super)); err != nil {
		t.Fatal(err)
	}
	if err := RemoveServer(ctx, conn, 1); err != nil {
		t.Fatal(err)
	}
	st, err = Ensemble(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if st.Voters != 2 || !st.Quorum {
		t.Fatalf("after removing server 1: %+v", st)
	}
}
