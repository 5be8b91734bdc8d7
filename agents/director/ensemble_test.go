package director

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/testenv"
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

	// Host 2 grows the ensemble with the library call; host 3 runs as a
	// secondary director (its own ZooKeeper server and tunnel).
	host2 := t.TempDir()
	if _, err := Join(ctx, addrs.Enroll, tok.String(), []string{"director"}, host2); err != nil {
		t.Fatal(err)
	}
	self2, err := NewLoopbackServer(0)
	if err != nil {
		t.Fatal(err)
	}
	z2, st2, err := GrowEnsemble(ctx, host2, filepath.Join(host2, "zk"), self2, super)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(z2.Stop)
	if z2.Server.ID != 2 || st2.Voters != 2 {
		t.Fatalf("after growth to 2: server id %d, %+v", z2.Server.ID, st2)
	}

	host3 := t.TempDir()
	if _, err := Join(ctx, addrs.Enroll, tok.String(), []string{"director"}, host3); err != nil {
		t.Fatal(err)
	}
	self3, err := NewLoopbackServer(0)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(ctx)
	sready := make(chan Addrs, 1)
	sdone := make(chan error, 1)
	go func() {
		sdone <- RunSecondary(sctx, SecondaryConfig{StateDir: host3, ZKDir: filepath.Join(host3, "zk"), Server: self3,
			SuperPassword: super, TunnelAddr: "127.0.0.1:0", Logger: quiet(), Ready: func(a Addrs) { sready <- a }})
	}()
	var sec Addrs
	select {
	case sec = <-sready:
	case err := <-sdone:
		t.Fatalf("secondary director: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("secondary director not ready within 2m")
	}
	var stopOnce sync.Once
	var stopErr error
	stopSecondary := func() error {
		stopOnce.Do(func() {
			scancel()
			select {
			case stopErr = <-sdone:
			case <-time.After(90 * time.Second):
				stopErr = fmt.Errorf("secondary director did not stop")
			}
		})
		return stopErr
	}
	defer stopSecondary()
	self3.ID = 3
	servers := []ZKServer{s1, z2.Server, self3}

	// The allocator host reaches ZooKeeper through the secondary's tunnel.
	at, err := NewAgentTLS(alloc, "allocator", nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	as, err := engine.Connect(ctx, engine.Options{Servers: sec.Tunnel, Dialer: at.Dialer(), Role: engine.RoleAllocator,
		Credential: creds[engine.RoleAllocator], ConnectTimeout: 30 * time.Second, Logger: quiet()})
	if err != nil {
		t.Fatalf("ZooKeeper through the secondary director's tunnel: %v", err)
	}
	if _, _, err := as.Platform(ctx); err != nil {
		t.Fatal(err)
	}
	as.Close()

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
	testenv.Eventually(t, 60*time.Second, "a write after losing server 1", func() bool {
		return admin2.Create(ctx, engine.ZonePath("zone-after-kill"), engine.Zone{Name: "zone-after-kill"}) == nil
	})
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

	// Stopping the secondary director removes its server: one voter left.
	if err := stopSecondary(); err != nil {
		t.Fatalf("secondary director: %v", err)
	}
	last, err := engine.Connect(ctx, engine.Options{Servers: z2.Server.Client, Role: engine.RoleAdmin, Credential: creds[engine.RoleAdmin], Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer last.Close()
	st, err = Ensemble(ctx, last.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if st.Voters != 1 || st.Members[0].ID != 2 {
		t.Fatalf("after the secondary stopped: %+v, want server 2 alone", st)
	}
}
