package director

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestWriteAtomicConcurrent: agents of one host share the state dir and
// write the same file (ca.crl) at once; each write has a temporary file
// of its own, so none fails and the file is always one whole version.
func TestWriteAtomicConcurrent(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "ca.crl")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := writeAtomic(file, []byte(fmt.Sprintf("version %02d", i)), 0o644); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	b, err := os.ReadFile(file)
	if err != nil || len(b) != len("version 00") {
		t.Fatalf("file = %q, %v", b, err)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".ca.crl.*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
