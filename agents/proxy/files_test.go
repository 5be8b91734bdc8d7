package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"paddock/agents/agentkit"
)

// TestOpenAccessLog: "" logs nothing, "-" logs to stderr, a name
// appends to that file; every line is out once closed.
func TestOpenAccessLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "access.log")
	if err := os.WriteFile(file, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, log, stderr, file string
		wantErr                 bool
	}{
		{name: "off", log: ""},
		{name: "stderr", log: "-", stderr: "line\n"},
		{name: "file", log: file, file: "old\nline\n"},
		{name: "unwritable", log: filepath.Join(dir, "missing", "access.log"), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			w, closeLog, err := OpenAccessLog(tc.log, &stderr)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if (w == nil) != (tc.log == "") {
				t.Fatalf("writer %v for %q", w, tc.log)
			}
			if w != nil {
				io.WriteString(w, "line\n")
			}
			closeLog()
			if stderr.String() != tc.stderr {
				t.Errorf("stderr = %q, want %q", stderr.String(), tc.stderr)
			}
			if tc.file != "" {
				if b, _ := os.ReadFile(file); string(b) != tc.file {
					t.Errorf("file = %q, want %q", b, tc.file)
				}
			}
		})
	}
}

// TestBackendFilesTogether: the backend certificate's files are all
// given or none; some of them is the operator's mistake.
func TestBackendFilesTogether(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name          string
		cert, key, ca string
		configErr     bool
	}{
		{name: "none"},
		{name: "cert only", cert: "p.crt", configErr: true},
		{name: "no CA", cert: "p.crt", key: "p.key", configErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := BackendFiles(context.Background(), tc.cert, tc.key, tc.ca, "", log)
			var ce *agentkit.ConfigError
			if errors.As(err, &ce) != tc.configErr || (err != nil && !tc.configErr) || l != nil {
				t.Errorf("loader %v, err %v; want a ConfigError: %v", l, err, tc.configErr)
			}
		})
	}
}
