package director

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestTokenExpiry: an ephemeral token lives exactly its TTL on the
// clock (synctest's fake one: an hour passes at once); a persistent one
// never expires.
func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		ttl        time.Duration
		persistent bool
		after      time.Duration
		expired    bool
	}{
		{"fresh", time.Hour, false, 0, false},
		{"at the last instant", time.Hour, false, time.Hour, false},
		{"just after", time.Hour, false, time.Hour + time.Nanosecond, true},
		{"long after", 15 * time.Minute, false, 24 * time.Hour, true},
		{"persistent", 0, true, 365 * 24 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				rec := TokenRecord{Persistent: tc.persistent, CreatedAt: time.Now()}
				if !tc.persistent {
					rec.ExpiresAt = time.Now().Add(tc.ttl)
				}
				time.Sleep(tc.after)
				if got := rec.Expired(time.Now()); got != tc.expired {
					t.Errorf("Expired after %s = %v, want %v", tc.after, got, tc.expired)
				}
			})
		})
	}
}
