package engine

import "testing"

// Which events hold a SyncPath of p.
func TestTreeCacheSyncPathRelevance(t *testing.T) {
	for _, tc := range []struct {
		q, p      string
		ancestors bool
		want      bool
	}{
		{"/a/b", "/a/b", false, true},
		{"/a/b/c", "/a/b", false, true},
		{"/a/bc", "/a/b", false, false},
		{"/a", "/a/b", false, false},
		{"/a", "/a/b", true, true},
		{"/a/c", "/a/b", true, false},
		{"/ab", "/a/b", true, false},
	} {
		if got := relevant(tc.q, tc.p, tc.ancestors); got != tc.want {
			t.Errorf("event on %s for %s (ancestors %v): %v, want %v", tc.q, tc.p, tc.ancestors, got, tc.want)
		}
	}
}
