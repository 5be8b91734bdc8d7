package tunnel

import (
	"errors"
	"strings"
	"testing"
	"time"

	"paddock/agents/agentkit"
	"paddock/stunnel"
)

// TestFileOptions: a tunnel end needs its certificate, key and CA and
// at least one admitted peer; each omission is the operator's to fix
// and says which flag.
func TestFileOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files, err := stunnel.IssueFromDir(dir, "test CA", stunnel.Leaf{Identity: stunnel.Identity{Role: "proxy", ID: "p1"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ok := Files{Cert: files.Cert, Key: files.Key, CA: files.CA}
	for _, tc := range []struct {
		name  string
		files Files
		allow []string
		want  string // "" for success
	}{
		{"complete", ok, []string{"role:allocator"}, ""},
		{"no certificate", Files{Key: ok.Key, CA: ok.CA}, []string{"*"}, "--cert is required"},
		{"no CA", Files{Cert: ok.Cert, Key: ok.Key}, []string{"*"}, "--ca is required"},
		{"nobody admitted", ok, nil, "--allow is required"},
		{"malformed allow", ok, []string{"team:x"}, "team:x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := FileOptions("t", tc.files, tc.allow)
			if tc.want == "" {
				if err != nil || o.Loader == nil || o.Loader.Current().Identity.String() != "proxy/p1" || o.Name != "t" {
					t.Fatalf("options %+v, err %v", o, err)
				}
				return
			}
			var ce *agentkit.ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a ConfigError saying %q", err, tc.want)
			}
		})
	}
}
