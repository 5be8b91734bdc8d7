package platform

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestWaitFor: the one wait of up, on the fake clock of synctest: it
// returns as soon as the condition holds, says what was not seen (and
// the last reason) when --start-timeout passes, and a failing service
// ends it at once with that service's error.
func TestWaitFor(t *testing.T) {
	t.Parallel()
	boom := errors.New("proxy: listen: address already in use")
	for _, tc := range []struct {
		name    string
		holdsAt time.Duration // the condition holds from then on (0: never)
		failAt  time.Duration // a service fails then (0: never)
		want    string
		took    time.Duration
	}{
		{"holds at once", time.Nanosecond, 0, "", 0},
		{"holds after a while", 5 * time.Second, 0, "", 5 * time.Second},
		{"never holds", 0, 0, "the proxy did not register within --start-timeout (last: not yet)", 3 * time.Minute},
		{"a service fails", 0, 10 * time.Second, boom.Error(), 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				defer cancel()
				start := time.Now()
				errc := make(chan error, 1)
				if tc.failAt > 0 {
					time.AfterFunc(tc.failAt, func() { errc <- boom })
				}
				err := waitFor(ctx, "the proxy did not register", errc, func(context.Context) error {
					if tc.holdsAt > 0 && time.Since(start) >= tc.holdsAt-time.Nanosecond {
						return nil
					}
					return errors.New("not yet")
				})
				took := time.Since(start)
				if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
					t.Fatalf("waitFor = %v, want %q", err, tc.want)
				}
				// Backing off to 1 s at most: within a second of the event.
				if took < tc.took || took > tc.took+time.Second {
					t.Errorf("took %s, want %s (+1s)", took, tc.took)
				}
			})
		})
	}
}

// TestFollow: the console side of up follows up.json until ready, a
// failure, or a supervisor that exited (no pid lock for 5 s).
func TestFollow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		st   *Status
		want string
	}{
		{"ready", &Status{Step: "ready", Ready: true}, ""},
		{"failed", &Status{Step: "starting the proxy", Error: "proxy: boom"}, "paddock up failed: proxy: boom"},
		{"supervisor gone", &Status{Step: "starting ZooKeeper"}, "the platform supervisor exited before it was ready"},
		{"nothing written", nil, "the platform supervisor exited before it was ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if tc.st != nil {
				b, _ := json.Marshal(tc.st)
				if err := os.WriteFile(filepath.Join(dir, StatusFile), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			synctest.Test(t, func(t *testing.T) {
				_, err := Follow(context.Background(), dir, time.Minute, io.Discard)
				if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
					t.Fatalf("Follow = %v, want %q", err, tc.want)
				}
			})
		})
	}
}
