package director

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestTokenText: `paddock token create` and `token list` say whether a
// token is persistent or when it expires, and who used it last.
func TestTokenText(t *testing.T) {
	t.Parallel()
	exp := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		rec      TokenRecord
		describe string
		row      string
	}{
		{"ephemeral", TokenRecord{ID: "t1", Roles: []string{"proxy"}, ExpiresAt: exp},
			"token t1 for roles [proxy], expires 2026-01-02T03:04:05Z", "t1  [proxy]  ephemeral   2026-01-02T03:04:05Z  0     -"},
		{"persistent", TokenRecord{ID: "t2", Roles: []string{"allocator"}, Persistent: true, Uses: 3, LastHost: "h1"},
			"token t2 for roles [allocator], persistent (revoke with `paddock token revoke t2`)", "t2  [allocator]  persistent  -     3     h1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.SplitN(tc.rec.Describe(), "\n", 2)[0]; got != tc.describe {
				t.Errorf("Describe = %q, want %q", got, tc.describe)
			}
			var b bytes.Buffer
			if err := WriteTokens(&b, []TokenRecord{tc.rec}); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			if len(lines) != 2 || strings.Join(strings.Fields(lines[1]), " ") != strings.Join(strings.Fields(tc.row), " ") {
				t.Errorf("table:\n%s\nwant a row like %q", b.String(), tc.row)
			}
		})
	}
}
