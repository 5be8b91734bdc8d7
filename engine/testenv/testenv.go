// Package testenv holds the one rule every integration test follows when
// a real component it needs (the Docker engine, a ZooKeeper server) is
// missing: under CI=true the test fails, elsewhere it skips with the
// reason. It owns that rule, the Docker probe, and the way tests wait
// (Eventually, Wait, Pause): on a condition with a deadline, never a
// bare sleep.
package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
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
	EventuallyDetail(t, d, what, func() (bool, string) { return cond(), "" })
}

// EventuallyDetail is Eventually for a condition that can say what it
// saw last: the failure names it.
func EventuallyDetail(t testing.TB, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	if last, ok := Wait(d, cond); !ok {
		if last != "" {
			t.Fatalf("timed out after %s waiting for %s (last: %s)", d, what, last)
		}
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

// Wait polls cond (every 10 ms, backing off to 100 ms) until it holds
// or d has passed, and returns cond's last detail and whether it held:
// Eventually for callers without a testing.TB (testscript commands,
// benchmarks that report rather than fail).
func Wait(d time.Duration, cond func() (bool, string)) (last string, ok bool) {
	return poll(d, 10*time.Millisecond, 100*time.Millisecond, cond)
}

// WaitEvery is Wait at a fixed interval: for conditions that are
// expensive to check (a docker or HTTP call), or a benchmark that times
// the wait and needs its resolution.
func WaitEvery(d, every time.Duration, cond func() (bool, string)) (last string, ok bool) {
	return poll(d, every, every, cond)
}

func poll(d, first, ceiling time.Duration, cond func() (bool, string)) (last string, ok bool) {
	deadline := time.Now().Add(d)
	interval := first
	for {
		held, detail := cond()
		if held {
			return detail, true
		}
		last = detail
		if !time.Now().Before(deadline) {
			return last, false
		}
		time.Sleep(min(interval, time.Until(deadline)+time.Millisecond))
		interval = min(interval*2, ceiling)
	}
}

// Pause waits d, or less if ctx ends first, and says whether the whole
// d passed: the pacing of a load loop (a writer's back-off after a
// failed request), which must stop when its test does.
func Pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// CleanupDocker removes, when the test ends, every container (with its
// volumes), volume and network whose label key has value: what the
// test created, labelled as every test labels what it creates.
func CleanupDocker(t testing.TB, cli *client.Client, key, value string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		f := filters.NewArgs(filters.Arg("label", key+"="+value))
		// Sweep until nothing is left: a remove can fail while the engine
		// is busy with the same object (an allocator releasing its
		// network lock container as the test ends left one behind).
		left, ok := WaitEvery(30*time.Second, 200*time.Millisecond, func() (bool, string) {
			n := 0
			cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
			for _, c := range cs {
				if cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}) != nil {
					n++
				}
			}
			vs, verr := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
			for _, v := range vs.Volumes {
				if cli.VolumeRemove(ctx, v.Name, true) != nil {
					n++
				}
			}
			ns, nerr := cli.NetworkList(ctx, network.ListOptions{Filters: f})
			for _, nw := range ns {
				if cli.NetworkRemove(ctx, nw.ID) != nil {
					n++
				}
			}
			if err != nil || verr != nil || nerr != nil {
				return false, fmt.Sprintf("list: %v %v %v", err, verr, nerr)
			}
			return n == 0, fmt.Sprintf("%d objects not removed", n)
		})
		if !ok {
			t.Logf("docker cleanup of %s=%s: %s", key, value, left)
		}
	})
}
