//go:build linux

package proxy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestLogFileWriter: a regular file is written with raw system calls
// (every byte of writes larger than the log's buffer lands, appended);
// anything else keeps the *os.File.
func TestLogFileWriter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 13<<10) // 208 KiB
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *os.File
		raw  bool
	}{
		{name: "regular file", raw: true, open: func(t *testing.T) *os.File {
			f, err := os.OpenFile(filepath.Join(dir, "a.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}},
		{name: "pipe", open: func(t *testing.T) *os.File {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close(); w.Close() })
			return w
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.open(t)
			w := logFileWriter(f)
			if _, raw := w.(*rawFile); raw != tc.raw {
				t.Fatalf("writer %T, want raw: %v", w, tc.raw)
			}
			if !tc.raw {
				return
			}
			for i := 0; i < 2; i++ {
				n, err := w.Write(big)
				if err != nil || n != len(big) {
					t.Fatalf("write %d: n %d, err %v; want %d", i, n, err, len(big))
				}
			}
			f.Close()
			if b, _ := os.ReadFile(f.Name()); !bytes.Equal(b, append(append([]byte(nil), big...), big...)) {
				t.Errorf("file holds %d bytes, want the two writes (%d)", len(b), 2*len(big))
			}
		})
	}
}
