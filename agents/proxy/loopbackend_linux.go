//go:build linux

package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The event loop's backend connections: per-loop keep-alive pools,
// non-blocking connects, and TLS clients for the allocators' node tunnels
// (handshake on a goroutine, then crypto/tls over the loop's buffers).

// bconn is a backend connection of a loop.
type bconn struct {
	l          *evloop
	fd         int
	b          *backend
	rd         fdReader
	br         *bufio.Reader
	out        []byte
	outOff     int
	wready     bool
	connecting bool
	connErr    error
	closed     bool
	owner      *lconn
	// tc is the TLS client of a tunnel backend (nil for plain ones),
	// over mc; scratch holds plaintext to encrypt, plain what was
	// queued before the handshake ended.
	tc      *tls.Conn
	mc      *memConn
	scratch []byte
	plain   []byte
	reused  bool
	got     int   // reads that brought bytes in the current exchange
	idleAt  int64 // unix ns
	dl      int64
}

func (be *bconn) pending() int { return len(be.out) - be.outOff }

func (be *bconn) onEvent(ev uint32) {
	noteEvents(ev, &be.rd, &be.wready)
	if be.connecting && ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		be.connecting = false
		if errno, err := unix.GetsockoptInt(be.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || errno != 0 {
			if err == nil {
				err = syscall.Errno(errno)
			}
			be.connErr = &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(be.b.ap), Err: os.NewSyscallError("connect", err)}
		} else if be.owner != nil {
			be.dl = be.l.now.Add(be.l.p.cfg.UpstreamTimeout).UnixNano()
		}
	}
	if be.owner != nil {
		be.owner.step()
		return
	}
	if be.closed || !be.rd.ready {
		return
	}
	// Idle in the pool: the backend closed it, or sent what nobody asked.
	if _, err := be.br.Peek(1); err != errWouldBlock {
		be.l.unpool(be)
		be.close()
	}
}

// getConn takes an idle connection of the loop's pool or dials one.
func (l *evloop) getConn(b *backend) (*bconn, error) {
	idle := l.pools[b]
	if n := len(idle); n > 0 {
		be := idle[n-1]
		idle[n-1] = nil
		l.pools[b] = idle[:n-1]
		be.reused, be.got = true, 0
		return be, nil
	}
	return l.dial(b)
}

// dial connects to b: a non-blocking connect from the loop to a plain
// backend at an IP address; otherwise (a host name to resolve, or a TLS
// handshake to make: the allocators' node tunnels) a goroutine dials as
// the goroutine front end does, and the connection joins the loop when
// ready.
func (l *evloop) dial(b *backend) (*bconn, error) {
	if b.tls || !b.ap.IsValid() {
		return l.dialAsync(b), nil
	}
	return l.connect(b)
}

// dialAsync dials b on a goroutine; the connection is connecting until
// the loop adopts its descriptor (ConnectTimeout bounds the dial and the
// handshake each).
func (l *evloop) dialAsync(b *backend) *bconn {
	be := &bconn{l: l, fd: -1, b: b, connecting: true}
	be.dl = l.now.Add(2 * l.p.cfg.ConnectTimeout).UnixNano()
	pool := l.p.pool
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), pool.dialer.Timeout)
		nc, err := pool.dialer.DialContext(ctx, "tcp", b.addr)
		cancel()
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		var tlc *tls.Conn
		var mc *memConn
		if err == nil && b.tls {
			mc = &memConn{nc: nc, laddr: nc.LocalAddr(), raddr: nc.RemoteAddr()}
			tlc = tls.Client(mc, pool.tlsFor(b))
			hctx, cancel := context.WithTimeout(context.Background(), pool.dialer.Timeout)
			err = tlc.HandshakeContext(hctx)
			cancel()
		}
		fd := -1
		if err == nil {
			fd, err = dupConn(nc)
		}
		if nc != nil {
			nc.Close()
		}
		if !l.post(func() { be.dialed(fd, tlc, mc, err) }) && fd >= 0 {
			unix.Close(fd) // the loop stopped meanwhile
		}
	}()
	return be
}

// dupConn duplicates a connection's descriptor (non-blocking, as Go
// made it) for the loop.
func dupConn(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("connection %T has no descriptor", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.Dup(int(s)) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, os.NewSyscallError("dup", derr)
	}
	unix.CloseOnExec(fd)
	return fd, unix.SetNonblock(fd, true)
}

// dialed adopts the descriptor of an asynchronous dial (on the loop).
func (be *bconn) dialed(fd int, tc *tls.Conn, mc *memConn, err error) {
	if err == nil && be.closed {
		unix.Close(fd) // given up meanwhile (timeout, client gone)
		return
	}
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		if be.closed {
			return
		}
		be.connecting = false
		be.connErr = err
	} else {
		be.fd = fd
		be.rd = fdReader{fd: fd, ready: true}
		be.wready = true
		if tc != nil {
			be.tc, be.mc = tc, mc
			mc.be = be
			mc.nc = nil // from now on the loop's socket
			be.br = bufio.NewReaderSize(tlsReader{tc}, loopBufSize)
			if len(be.plain) > 0 {
				_, _ = tc.Write(be.plain)
				be.plain = nil
			}
		} else {
			be.br = bufio.NewReaderSize(&be.rd, loopBufSize)
		}
		if err := be.l.addFD(fd, be); err != nil {
			unix.Close(fd)
			be.fd = -1
			be.connErr = err
		}
		be.connecting = false
		if be.owner != nil && be.connErr == nil {
			be.dl = be.l.now.Add(be.l.p.cfg.UpstreamTimeout).UnixNano()
		}
	}
	if be.owner != nil {
		be.owner.step()
	} else {
		be.close()
	}
}

// queue adds request bytes for the backend (encrypted first on a TLS
// connection: memConn appends the records to out).
func (be *bconn) queue(p []byte) {
	switch {
	case !be.b.tls:
		be.out = append(be.out, p...)
	case be.tc == nil: // handshake under way
		be.plain = append(be.plain, p...)
	default:
		_, _ = be.tc.Write(p)
	}
}

// memConn is the transport under a loop's TLS client: during the
// handshake (on a goroutine) the dialed connection itself; then the
// loop's non-blocking socket, with reads that would block failing with
// a temporary error (crypto/tls keeps its record state and the next
// read resumes) and writes appended to the connection's output.
type memConn struct {
	nc           net.Conn
	be           *bconn
	laddr, raddr net.Addr
}

// errTLSWouldBlock is errWouldBlock as crypto/tls must see it:
// temporary, so that the connection is not failed.
var errTLSWouldBlock = &wouldBlockError{}

type wouldBlockError struct{}

func (*wouldBlockError) Error() string   { return "would block" }
func (*wouldBlockError) Timeout() bool   { return true }
func (*wouldBlockError) Temporary() bool { return true }

func (m *memConn) Read(b []byte) (int, error) {
	if m.nc != nil {
		return m.nc.Read(b)
	}
	n, err := m.be.rd.Read(b)
	if err == errWouldBlock {
		return n, errTLSWouldBlock
	}
	return n, err
}

func (m *memConn) Write(b []byte) (int, error) {
	if m.nc != nil {
		return m.nc.Write(b)
	}
	m.be.out = append(m.be.out, b...)
	return len(b), nil
}

func (m *memConn) Close() error {
	if m.nc != nil {
		return m.nc.Close()
	}
	return nil
}

func (m *memConn) LocalAddr() net.Addr  { return m.laddr }
func (m *memConn) RemoteAddr() net.Addr { return m.raddr }

func (m *memConn) SetDeadline(t time.Time) error {
	if m.nc != nil {
		return m.nc.SetDeadline(t)
	}
	return nil
}

func (m *memConn) SetReadDeadline(t time.Time) error {
	if m.nc != nil {
		return m.nc.SetReadDeadline(t)
	}
	return nil
}

func (m *memConn) SetWriteDeadline(t time.Time) error {
	if m.nc != nil {
		return m.nc.SetWriteDeadline(t)
	}
	return nil
}

// tlsReader reads a loop's TLS connection for a bufio.Reader.
type tlsReader struct{ tc *tls.Conn }

func (r tlsReader) Read(b []byte) (int, error) {
	n, err := r.tc.Read(b)
	if err != nil {
		var wb *wouldBlockError
		if errors.As(err, &wb) {
			return n, errWouldBlock
		}
	}
	return n, err
}

// connect starts a non-blocking connect to b.
func (l *evloop) connect(b *backend) (*bconn, error) {
	family := unix.AF_INET
	var sa unix.Sockaddr
	if a := b.ap.Addr(); a.Is4() || a.Is4In6() {
		sa = &unix.SockaddrInet4{Port: int(b.ap.Port()), Addr: a.Unmap().As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(b.ap.Port()), Addr: a.As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(b.ap), Err: os.NewSyscallError("socket", err)}
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 30)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 30)
	connecting := false
	if err := unix.Connect(fd, sa); err != nil {
		if err != unix.EINPROGRESS {
			unix.Close(fd)
			return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(b.ap), Err: os.NewSyscallError("connect", err)}
		}
		connecting = true
	}
	be := &bconn{l: l, fd: fd, b: b, connecting: connecting, wready: !connecting}
	be.rd = fdReader{fd: fd}
	be.br = bufio.NewReaderSize(&be.rd, loopBufSize)
	if connecting {
		be.dl = l.now.Add(l.p.cfg.ConnectTimeout).UnixNano()
	}
	if err := l.addFD(fd, be); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return be, nil
}

// putConn pools a connection after a complete exchange.
func (l *evloop) putConn(be *bconn) {
	idle := l.pools[be.b]
	if be.b.gone.Load() || be.rd.hup || len(idle) >= l.p.cfg.MaxIdlePerBackend || l.stopping {
		be.close()
		return
	}
	be.idleAt = l.now.UnixNano()
	be.out, be.outOff = be.out[:0], 0
	l.pools[be.b] = append(idle, be)
}

func (l *evloop) unpool(be *bconn) {
	idle := l.pools[be.b]
	for i, x := range idle {
		if x == be {
			l.pools[be.b] = append(idle[:i], idle[i+1:]...)
			if len(l.pools[be.b]) == 0 {
				delete(l.pools, be.b)
			}
			return
		}
	}
}

func (be *bconn) close() {
	if be.closed {
		return
	}
	be.closed = true
	if be.fd >= 0 {
		be.l.fds[be.fd] = nil
		unix.Close(be.fd)
	}
}
