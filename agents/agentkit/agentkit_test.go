package agentkit

import (
	"encoding/json"
	"testing"
)

// TestHealthBodyIsJSON: check messages with quotes, control characters
// and non-ASCII survive as JSON (Go's %q escapes are not JSON's).
func TestHealthBodyIsJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		checks map[string]string
	}{
		{"ok", map[string]string{"zookeeper": ""}},
		{"quotes and newline", map[string]string{"zookeeper": "cannot connect: \"x\"\nretrying"}},
		{"control and non-ASCII", map[string]string{"docker": "\x01 bad \u00e9\u2028"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(healthBody("degraded", tc.checks))
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Status string
				Checks map[string]string
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("not JSON: %v: %s", err, b)
			}
			for k, v := range tc.checks {
				if want := orOK(v); got.Checks[k] != want {
					t.Errorf("check %s = %q, want %q", k, got.Checks[k], want)
				}
			}
		})
	}
}
