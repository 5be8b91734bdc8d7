// Package zktest runs real ZooKeeper servers for integration tests: one
// standalone server or ensemble per package run (started from TestMain),
// with a fresh paddock tree and fresh role credentials per test.
//
// When ZooKeeper cannot be started, tests skip, except under CI=true
// where they fail.
package zktest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/testenv"
	"paddock/engine/zkserver"
)

// Env is a ZooKeeper shared by one package's tests.
type Env struct {
	Cluster       *zkserver.Cluster
	Dir           string
	SuperPassword string
	startErr      error
}

// Start launches a server (servers=1) or an ensemble in a temp dir.
func Start(servers int) (*Env, error) { return StartHeap(servers, 192) }

// StartHeap is Start with heapMB of JVM heap per server (benchmarks that
// hold 100,000 znodes and their watches need more than tests).
func StartHeap(servers, heapMB int) (*Env, error) {
	dir, err := os.MkdirTemp("", "paddock-zk-")
	if err != nil {
		return nil, err
	}
	env := &Env{Dir: dir, SuperPassword: engine.RandomToken(12)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := zkserver.Start(ctx, zkserver.Config{Dir: dir, Servers: servers, SuperPassword: env.SuperPassword, HeapMB: heapMB})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	env.Cluster = c
	return env, nil
}

// Main starts ZooKeeper for a package's tests, runs them and stops it.
// Use it from TestMain: os.Exit(zktest.Main(m, 1, &env)).
func Main(m *testing.M, servers int, env **Env) int {
	e, err := Start(servers)
	if err != nil {
		if testenv.CI() {
			fmt.Fprintf(os.Stderr, "zktest: cannot start ZooKeeper under CI: %v\n", err)
			return 1
		}
		*env = &Env{startErr: err}
		return m.Run()
	}
	*env = e
	code := m.Run()
	e.Stop()
	return code
}

// Need skips (or fails under CI=true) a test when ZooKeeper is missing.
func (e *Env) Need(t testing.TB) {
	t.Helper()
	if e == nil || e.Cluster == nil {
		var err error
		if e != nil {
			err = e.startErr
		}
		testenv.Unavailable(t, "ZooKeeper", err)
	}
}

// Stop kills the servers and removes their data.
func (e *Env) Stop() {
	if e.Cluster != nil {
		e.Cluster.Stop()
	}
	if e.Dir != "" {
		os.RemoveAll(e.Dir)
	}
}

// Servers is the connection string.
func (e *Env) Servers() string { return e.Cluster.ConnectString() }

// Mntr returns the numeric figures of server id's mntr four-letter word
// (zk_ prefix dropped): request counts, latencies, znode and watch
// counts, for benchmarks.
func (e *Env) Mntr(id int) (map[string]float64, error) {
	n := e.Cluster.Node(id)
	if n == nil {
		return nil, fmt.Errorf("no ZooKeeper server %d", id)
	}
	out, err := zkserver.FourLetter(fmt.Sprintf("127.0.0.1:%d", n.ClientPort), "mntr", 5*time.Second)
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			m[strings.TrimPrefix(k, "zk_")] = f
		}
	}
	return m, nil
}

// Super connects as ZooKeeper's super user (bypasses ACLs).
func (e *Env) Super(t testing.TB) *engine.Store {
	t.Helper()
	return e.connect(t, engine.RoleAdmin, engine.Credential{User: "super", Password: e.SuperPassword}, nil)
}

func (e *Env) connect(t testing.TB, role engine.Role, c engine.Credential, own *engine.Credential) *engine.Store {
	t.Helper()
	return ConnectTo(t, e.Servers(), role, c, own)
}

// ConnectTo opens a store at servers (a Partition's address, say) with a
// short session timeout, closed at the end of the test.
func ConnectTo(t testing.TB, servers string, role engine.Role, c engine.Credential, own *engine.Credential) *engine.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := engine.Connect(ctx, engine.Options{Servers: servers, Role: role, Credential: c, Own: own,
		SessionTimeout: 4 * time.Second, ConnectTimeout: 20 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(s.Close)
	return s
}

// Platform is a fresh paddock tree with its role credentials.
type Platform struct {
	env   *Env
	Creds engine.CredentialSet
	Admin *engine.Store
}

// Fresh wipes /paddock and bootstraps a new platform with new role
// credentials and the given zones.
func (e *Env) Fresh(t testing.TB, zones ...string) *Platform {
	t.Helper()
	e.Need(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	su := e.Super(t)
	if err := su.DeleteTree(ctx, engine.Root); err != nil {
		t.Fatalf("wipe %s: %v", engine.Root, err)
	}
	su.Close()
	creds := engine.GenerateCredentials()
	p := &Platform{env: e, Creds: creds}
	p.Admin = p.Connect(t, engine.RoleAdmin)
	cfg := engine.DefaultPlatformConfig()
	cfg.Identities = creds.Identities()
	if err := engine.Bootstrap(ctx, p.Admin, cfg, zones); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	return p
}

// Connect opens a store authenticated as role.
func (p *Platform) Connect(t testing.TB, role engine.Role) *engine.Store {
	t.Helper()
	return p.env.connect(t, role, p.Creds[role], nil)
}

// ConnectVia opens a store of role through servers (e.g. a Partition).
func (p *Platform) ConnectVia(t testing.TB, servers string, role engine.Role) *engine.Store {
	t.Helper()
	return ConnectTo(t, servers, role, p.Creds[role], nil)
}

// ConnectAllocator opens a store as the allocator role plus its own
// identity allocator-<id>.
func (p *Platform) ConnectAllocator(t testing.TB, id string, own engine.Credential) *engine.Store {
	t.Helper()
	return p.env.connect(t, engine.RoleAllocator, p.Creds[engine.RoleAllocator], &own)
}
