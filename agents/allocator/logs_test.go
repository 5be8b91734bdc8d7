package allocator_test

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"paddock/agents/allocator"
	"paddock/engine"
	"paddock/engine/testenv"
	"paddock/stunnel"
)

// readLogs reads a log through the allocator's tunnel as role.
func readLogs(t *testing.T, lc *allocator.LogClient, tunnel, iid string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rc, err := lc.Logs(ctx, tunnel, iid, engine.LogOptions{Tail: 1000})
	if err != nil {
		t.Fatalf("logs of %s: %v", iid, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read logs of %s: %v", iid, err)
	}
	return string(b)
}

// TestNodeLogs, on Docker: a node's log reaches an admin-role client
// through the allocator's tunnel (never the Docker socket); proxies may
// not read logs and the admin role may not reach nodes; after a `docker
// kill` and the allocator's restart the first run's lines are still
// there, and after the container is replaced (a restart asked with a new
// generation) the previous container's tail comes first.
func TestNodeLogs(t *testing.T) {
	pki := newTestPKI(t)
	f := dockerFixture(t, 2048, func(cfg *allocator.Config) {
		cfg.TunnelLoader = pki.loader("allocator", "host-1")
		cfg.TunnelListen = "127.0.0.1:0"
	})
	cli, cons, ctx, id := f.cli, f.cons, f.ctx, f.id
	in := engine.Instance{ID: "i-" + engine.RandomToken(4), DeploymentID: engine.NewID(), Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 128}
	assign(t, cons, id, in)
	st := waitStatus(t, cons, id, in.ID, 90*time.Second, "running, healthy, behind the tunnel", func(s engine.InstanceStatus) bool {
		return runningHealthy(s) && s.TunnelAddr != ""
	})
	lc, err := allocator.NewLogClient(pki.loader("admin", "api-1"), logger())
	if err != nil {
		t.Fatal(err)
	}
	first := readLogs(t, lc, st.TunnelAddr, in.ID)
	if strings.Count(first, "node serving") != 1 || !strings.Contains(first, in.ID) {
		t.Fatalf("log of a fresh node: want one \"node serving\" line naming %s, got:\n%s", in.ID, first)
	}

	t.Run("proxy certificate may not read logs", func(t *testing.T) {
		proxy := pki.tunnelClient("proxy")
		if code, body, err := getVia(func(ctx context.Context) (net.Conn, error) {
			return proxy.DialSNI(ctx, st.TunnelAddr, stunnel.BackendSNI(allocator.LogsBackend))
		}, "/logs/"+in.ID); err == nil {
			t.Fatalf("a proxy read logs: %d %q", code, body)
		}
	})
	t.Run("admin certificate may not reach nodes", func(t *testing.T) {
		admin := pki.tunnelClient("admin")
		if code, body, err := getVia(func(ctx context.Context) (net.Conn, error) {
			return admin.DialSNI(ctx, st.TunnelAddr, stunnel.BackendSNI(in.ID))
		}, "/"); err == nil {
			t.Fatalf("the admin role reached a node: %d %q", code, body)
		}
	})

	// docker kill: the allocator starts the same container again; the
	// first run's lines stay.
	ci, ok := containerOf(t, cli, id, in.ID)
	if !ok {
		t.Fatal("container not found")
	}
	if err := cli.ContainerKill(ctx, ci.ID, "KILL"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, cons, id, in.ID, 90*time.Second, "restarted after docker kill", func(s engine.InstanceStatus) bool {
		return runningHealthy(s) && s.Restarts >= 1
	})
	var again string
	waitLogs := func(what string, cond func(string) bool) {
		testenv.EventuallyDetail(t, 30*time.Second, what, func() (bool, string) {
			again = readLogs(t, lc, st.TunnelAddr, in.ID)
			return cond(again), "log is:\n" + again
		})
	}
	waitLogs("both runs in the log after docker kill", func(s string) bool { return strings.Count(s, "node serving") >= 2 })
	if !strings.HasPrefix(again, strings.SplitAfter(first, "\n")[0]) {
		t.Fatalf("the first run's first line is gone after the restart:\nbefore:\n%s\nafter:\n%s", first, again)
	}

	// A new generation replaces the container: its tail is kept.
	in.Generation++
	if _, err := cons.Set(ctx, engine.InstancePath(id, in.ID), in, engine.AnyVersion); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, cons, id, in.ID, 90*time.Second, "recreated at generation 1", func(s engine.InstanceStatus) bool {
		return runningHealthy(s) && s.Generation == 1
	})
	waitLogs("the previous container's tail, then the new one", func(s string) bool {
		return strings.HasPrefix(s, "--- previous container ") && strings.Contains(s, "--- current container ") &&
			strings.Count(s, "node serving") >= 3
	})
	if nc, _ := containerOf(t, cli, id, in.ID); nc.ID == ci.ID {
		t.Fatalf("container %s was not replaced", ci.ID)
	}
}
