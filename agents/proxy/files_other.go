//go:build !linux

package proxy

import (
	"io"
	"os"
)

// logFileWriter is w for the access log's buffered writer (Linux writes
// regular files with raw system calls, files_linux.go).
func logFileWriter(f *os.File) io.Writer { return f }
