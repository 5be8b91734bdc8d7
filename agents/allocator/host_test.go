package allocator

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDefaultID: whatever the host is called, the default id is one the
// allocator accepts.
func TestDefaultID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ host, want string }{
		{"db-1.example.org", "alloc-db-1.example.org"},
		{"my host", "alloc-my-host"},
		{"höst", "alloc-h-st"},
		{"", "alloc-host"},
	} {
		t.Run(tc.host, func(t *testing.T) {
			id := "alloc-" + hostPart(tc.host)
			if id != tc.want || !idPattern.MatchString(id) {
				t.Errorf("id of host %q = %q, want %q (valid: %v)", tc.host, id, tc.want, idPattern.MatchString(id))
			}
		})
	}
	if id := DefaultID(); !idPattern.MatchString(id) {
		t.Errorf("DefaultID() = %q is not a valid id", id)
	}
}

// TestBuildImagesRefusesUnusableBinaries: a file that is no static ELF
// binary is refused before Docker is asked for anything, saying how to
// get one.
func TestBuildImagesRefusesUnusableBinaries(t *testing.T) {
	t.Parallel()
	notELF := filepath.Join(t.TempDir(), "paddock")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, binary, want string }{{"not an ELF file", notELF, "read " + notELF}}
	if static, err := IsStaticBinary("/bin/sh"); err == nil && !static {
		cases = append(cases, struct{ name, binary, want string }{"dynamically linked", "/bin/sh", "CGO_ENABLED=0"})
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			built, err := BuildImages(context.Background(), tc.binary, DefaultImageRepo, []string{"8.15.0"}, io.Discard, log)
			if err == nil || !strings.Contains(err.Error(), tc.want) || len(built) != 0 {
				t.Errorf("built %v, err %v; want no image and an error naming %q", built, err, tc.want)
			}
		})
	}
}
