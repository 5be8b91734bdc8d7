package stunnel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateCA(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir string)
		created bool
		wantErr string
	}{
		{"fresh", func(*testing.T, string) {}, true, ""},
		{"existing", func(t *testing.T, dir string) { mustCA(t, dir) }, false, ""},
		{"key missing", func(t *testing.T, dir string) { mustCA(t, dir); os.Remove(filepath.Join(dir, "ca.key")) }, false, "incomplete"},
		{"certificate missing", func(t *testing.T, dir string) { mustCA(t, dir); os.Remove(filepath.Join(dir, "ca.pem")) }, false, "incomplete"},
		{"key readable by others", func(t *testing.T, dir string) { mustCA(t, dir); os.Chmod(filepath.Join(dir, "ca.key"), 0o644) }, false, "readable by others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "ca")
			tc.prepare(t, dir)
			before, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
			ca, created, err := LoadOrCreateCA(dir, "test CA")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if after, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); string(after) != string(before) {
					t.Fatal("a refused CA was re-created")
				}
				return
			}
			if err != nil || ca == nil || created != tc.created {
				t.Fatalf("LoadOrCreateCA = %v, created %v, err %v; want created %v", ca, created, err, tc.created)
			}
		})
	}
}

func mustCA(t *testing.T, dir string) {
	t.Helper()
	if _, _, err := LoadOrCreateCA(dir, "test CA"); err != nil {
		t.Fatal(err)
	}
}
