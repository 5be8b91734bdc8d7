//go:build linux

package proxy

import (
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawFile writes to a regular file with raw write(2) calls, outside the
// runtime's system call bookkeeping, as nginx's worker writes its log.
// A write that goes through the runtime marks its P as in a system
// call; the runtime's sysmon, finding one there, hands the P to another
// thread and goes back to polling every 20 µs. The access log's 64 KiB
// flush every few hundred requests kept sysmon polling and switching
// threads on the proxy's core (7-15x more of its nanosleeps per request
// with the access log on than off). A write into the page cache is
// short; a disk that throttles it stalls the writer's thread, and with
// it the loop that filled the buffer, as it stalls an nginx worker.
type rawFile struct {
	f  *os.File
	fd int
}

// logFileWriter is w for the access log's buffered writer: a raw
// writer when w is a regular file.
func logFileWriter(f *os.File) io.Writer {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return f
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return f
	}
	fd := -1
	if err := rc.Control(func(d uintptr) { fd = int(d) }); err != nil || fd < 0 {
		return f
	}
	return &rawFile{f: f, fd: fd}
}

func (r *rawFile) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		p := b[done:]
		n, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(r.fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			// Not a regular file after all: let the runtime wait.
			m, err := r.f.Write(p)
			return done + m, err
		case e != 0:
			return done, &os.PathError{Op: "write", Path: r.f.Name(), Err: e}
		case n == 0:
			return done, io.ErrShortWrite
		}
		done += int(n)
	}
	return done, nil
}
