// Package testenv holds the one rule every integration test follows when
// a real component it needs (the Docker engine, a ZooKeeper server) is
// missing: under CI=true the test fails, elsewhere it skips with the
// reason. It owns that rule and the Docker probe, nothing else.
package testenv

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// CI reports whether the tests run under CI (CI=true), where every real
// component must be present.
func CI() bool { return os.Getenv("CI") == "true" }

// Unavailable ends the test because what is missing: Fatal under CI,
// Skip elsewhere.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if CI() {
		t.Fatalf("%s unavailable under CI: %v", what, err)
	}
	t.Skipf("%s unavailable: %v (run scripts/setup.sh)", what, err)
}

// Docker returns a client of the local Docker engine, closed at the end
// of the test, after checking that the engine answers.
func Docker(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = cli.Ping(ctx)
		cancel()
	}
	if err != nil {
		Unavailable(t, "Docker engine", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Eventually polls cond (every 10 ms, backing off to 100 ms) until it
// holds, or fails the test after d naming what it waited for: the one
// way tests wait on a condition, never a bare sleep.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	interval := 10 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(interval)
		interval = min(interval*2, 100*time.Millisecond)
	}
}
