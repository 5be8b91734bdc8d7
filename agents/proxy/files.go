package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"paddock/agents/agentkit"
	"paddock/stunnel"
)

// What the proxy opens from names the operator gives (the proxy
// command's --id, --access-log and --backend-* flags).

// DefaultID is the proxy id of this host: proxy-<hostname>.
func DefaultID() string {
	host, _ := os.Hostname()
	return "proxy-" + host
}

// OpenAccessLog opens the access log name: "" is none (a nil writer),
// "-" is stderr, anything else a file appended to. Lines are buffered
// (NewBufferedWriter); close flushes them and closes the file.
func OpenAccessLog(name string, stderr io.Writer) (w io.Writer, close func(), err error) {
	if name == "" {
		return nil, func() {}, nil
	}
	out, closeFile := stderr, func() {}
	if name != "-" {
		f, err := os.OpenFile(name, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("access log %s: %w (choose another path with --access-log, or \"\" to turn it off)", name, err)
		}
		out, closeFile = logFileWriter(f), func() { f.Close() }
	}
	bw := NewBufferedWriter(out, 200*time.Millisecond)
	return bw, func() { bw.Close(); closeFile() }, nil
}

// BackendFiles loads a proxy certificate managed outside paddock
// (benchmarks, an external PKI) for the allocators' node tunnels and
// keeps reloading it until ctx ends. No files give a nil loader; some
// but not all of certFile, keyFile and caFile is a ConfigError.
func BackendFiles(ctx context.Context, certFile, keyFile, caFile, crlFile string, log *slog.Logger) (*stunnel.Loader, error) {
	if certFile == "" && keyFile == "" && caFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, agentkit.ConfigErrorf("--backend-cert, --backend-key and --backend-ca go together")
	}
	l, err := stunnel.NewFileLoader(certFile, keyFile, caFile, crlFile)
	if err != nil {
		return nil, fmt.Errorf("proxy certificate for the allocator tunnels: %w (check --backend-cert/--backend-key/--backend-ca)", err)
	}
	go l.WatchReload(ctx, time.Minute, log)
	return l, nil
}
