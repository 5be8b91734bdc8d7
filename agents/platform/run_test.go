package platform

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"paddock/agents/allocator"
	"paddock/engine/testenv"
	"paddock/engine/zkserver"
)

// testConfig is an in-process platform of sim allocators on free ports,
// its ZooKeeper stopped at the end of the test.
func testConfig(t *testing.T) Config {
	t.Helper()
	if err := zkserver.Check(zkserver.Config{}); err != nil {
		testenv.Unavailable(t, "ZooKeeper (Java and Debian's jars)", err)
	}
	dir := t.TempDir()
	t.Cleanup(func() {
		Down(context.Background(), DownConfig{StateDir: dir, Wait: time.Minute, Out: io.Discard, Err: io.Discard})
	})
	cfg := Defaults()
	cfg.StateDir, cfg.Zones, cfg.Runtime = dir, 2, allocator.RuntimeSim
	cfg.ZKPort, cfg.APIPort, cfg.ProxyPort, cfg.ProxyHTTPSPort = 0, 0, 0, 0
	cfg.DirectorTunnelAddr, cfg.DirectorEnrollAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.StartTimeout, cfg.Version, cfg.Logger = time.Minute, "test", slog.New(slog.DiscardHandler)
	return cfg
}

// TestRunServesThenStops: up comes up (ready, where everything listens
// recorded) and, when ctx ends, takes the shutdown path: services
// stopped, pid lock released, up.json saying so.
func TestRunServesThenStops(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan Status, 1)
	cfg.OnReady = func(st Status) { ready <- st }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	var st Status
	select {
	case st = <-ready:
	case err := <-done:
		t.Fatalf("Run ended before ready: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("not ready within 2 minutes")
	}
	if st.APIURL == "" || st.ProxyURL == "" || st.Tunnel == "" || len(st.Services) < 6 {
		t.Fatalf("ready status lacks addresses: %+v", st)
	}
	if _, ok := RunningPid(cfg.StateDir); !ok {
		t.Fatal("no pid lock while serving")
	}
	// A second Run on the same state dir says where the first listens.
	err := Run(ctx, cfg)
	if up, ok := err.(*AlreadyUpError); !ok || up.Status.APIURL != st.APIURL {
		t.Fatalf("second Run = %v, want AlreadyUpError naming %s", err, st.APIURL)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after ctx ended: %v", err)
		}
	case <-time.After(stopGrace + 10*time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
	assertStopped(t, cfg.StateDir, "")
}

// TestRunFailureTakesShutdownPath: a phase that fails once services run
// (the director's tunnel port is taken) returns the error after the
// shutdown path: nothing left holding the lock, the error recorded.
func TestRunFailureTakesShutdownPath(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg.DirectorTunnelAddr = taken.Addr().String()
	err = Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "director") {
		t.Fatalf("Run = %v, want the director's failure", err)
	}
	assertStopped(t, cfg.StateDir, "director")
}

func assertStopped(t *testing.T, dir, wantErr string) {
	t.Helper()
	if pid, ok := RunningPid(dir); ok {
		t.Fatalf("pid lock still held (pid %d) after Run returned", pid)
	}
	st, err := ReadStatus(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Stopping || st.Ready || st.Step != "stopped" {
		t.Errorf("status after Run: stopping %v ready %v step %q", st.Stopping, st.Ready, st.Step)
	}
	if wantErr != "" && !strings.Contains(st.Error, wantErr) || wantErr == "" && st.Error != "" {
		t.Errorf("status error %q, want %q", st.Error, wantErr)
	}
	for _, s := range st.Services {
		if s.Kind != "zookeeper" && (s.State == "running" || s.State == "starting") {
			t.Errorf("service %s still %s after Run returned", s.Name, s.State)
		}
	}
}
