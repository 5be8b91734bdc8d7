//go:build linux

package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// The event-loop front end of the plain listener, in nginx's model: a
// few loops (one per core by default), each an epoll instance serving
// its client connections and its own keep-alive pools of backend
// connections, with no goroutine, no lock and no timer per request.
// Sockets are registered once, edge-triggered, and read or written only
// when the loop knows they are ready, so a request costs one read and
// one write on each side (response head and body leave in one write).
// Deadlines are coarse: each loop sweeps its connections a few times
// per second, as nginx's timer tree would.
//
// Requests the loop does not serve itself are handed over, with their
// connection, to the goroutine-per-connection server (server.go), which
// serves the connection from then on over the same parser and
// forwarding code: HTTP/1.0 clients, Expect: 100-continue, chunked
// request bodies, paused routes (the request waits for the switch),
// backends behind allocator tunnels (mutual TLS), backends named by
// host name, and heads larger than the loop's buffer. Every handover
// is counted (paddock_proxy_loop_handoffs_total).

// errWouldBlock: the socket has nothing more to read for now.
var errWouldBlock = errors.New("would block")

// outHigh bounds what a connection buffers for a peer that does not
// read: past it the loop stops reading the other side (backpressure).
const outHigh = 256 << 10

const loopBufSize = 16 << 10

// Client connection states.
const (
	csHead     = iota // waiting for a request head
	csSend            // sending the request to a backend
	csRespHead        // waiting for the response head
	csRespBody        // passing the response body
	csClose           // writing the last bytes, then closing
	csLinger          // answered with an error: reading what the client still sends, then closing
)

// Response body framings.
const (
	bodyLength = iota
	bodyChunked
	bodyEOF
)

type loopServer struct {
	p  *Proxy
	gs *server // adopts the connections the loops hand over
	// lnfd is the listening socket (a duplicate of p.httpLn's), in every
	// loop's epoll set (EPOLLEXCLUSIVE, which only helps a loop blocked
	// in epoll_wait; ours wait in Go's poller, so every loop wakes, and
	// leastLoaded spreads what one accepts).
	lnfd   int
	loops  []*evloop
	active atomic.Int64 // client connections on the loops
	idle   chan struct{}
}

type pollee interface{ onEvent(ev uint32) }

type evloop struct {
	s      *loopServer
	p      *Proxy
	idx    int
	epfd   int
	file   *os.File // epfd, in Go's poller
	wakefd int
	fds    []pollee // by descriptor
	events []unix.EpollEvent

	mu      sync.Mutex
	tasks   []func()
	running []func()
	woken   bool
	dead    bool // stopped: post refuses

	// pools are this loop's idle keep-alive connections per backend.
	pools map[*backend][]*bconn
	free  []*lconn
	rr    uint32
	now   time.Time
	tick  time.Duration
	sweep time.Time
	// conns counts the client connections the loop serves or was handed
	// to serve (read by the other loops to balance); gauge shows it.
	conns atomic.Int64
	gauge prometheus.Gauge
	// acceptOff: accepting paused after running out of descriptors.
	acceptOff   bool
	acceptAgain time.Time
	stopping    bool
	exit        bool
	done        chan struct{}
}

// newLoopServer starts n loops on the listener ln (a *net.TCPListener).
func newLoopServer(p *Proxy, ln net.Listener, n int, gs *server) (*loopServer, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("event loop: listener %T is not TCP", ln)
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil, err
	}
	lnfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { lnfd, derr = unix.Dup(int(fd)) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("event loop: duplicating the listener: %w", derr)
	}
	unix.CloseOnExec(lnfd)
	if err := unix.SetNonblock(lnfd, true); err != nil {
		unix.Close(lnfd)
		return nil, err
	}
	s := &loopServer{p: p, gs: gs, lnfd: lnfd, idle: make(chan struct{}, 1)}
	tick := loopTick(&p.cfg)
	for i := 0; i < n; i++ {
		l, err := newEvloop(s, i, tick)
		if err != nil {
			s.closeLoops()
			unix.Close(lnfd)
			return nil, err
		}
		s.loops = append(s.loops, l)
	}
	return s, nil
}

// loopTick is the period of the deadline sweep: a quarter of the
// shortest timeout, between 5 ms and 250 ms.
func loopTick(c *Config) time.Duration {
	d := min(c.ReadHeaderTimeout, c.UpstreamTimeout, c.BackendIdleTimeout, c.ConnectTimeout, c.IdleTimeout) / 4
	return min(max(d, 5*time.Millisecond), 250*time.Millisecond)
}

func newEvloop(s *loopServer, idx int, tick time.Duration) (*evloop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("event loop: epoll: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("event loop: epoll: %w", err)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("event loop: eventfd: %w", err)
	}
	l := &evloop{s: s, p: s.p, idx: idx, epfd: epfd, file: os.NewFile(uintptr(epfd), "epoll"), wakefd: wfd, events: make([]unix.EpollEvent, 128),
		pools: map[*backend][]*bconn{}, tick: tick, done: make(chan struct{}), gauge: s.p.met.loopConns.WithLabelValues(strconv.Itoa(idx))}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wfd)}); err != nil {
		l.closeFDs()
		return nil, err
	}
	if err := l.listen(true); err != nil {
		l.closeFDs()
		return nil, fmt.Errorf("event loop: watching the listener: %w", err)
	}
	return l, nil
}

func (l *evloop) listen(on bool) error {
	if on {
		return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.s.lnfd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(l.s.lnfd)})
	}
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.s.lnfd, nil)
}

func (l *evloop) closeFDs() {
	unix.Close(l.wakefd)
	l.file.Close() // epfd
}

func (s *loopServer) closeLoops() {
	for _, l := range s.loops {
		l.closeFDs()
	}
}

// serve runs the loops until shutdown.
func (s *loopServer) serve() error {
	var wg sync.WaitGroup
	for _, l := range s.loops {
		wg.Add(1)
		go func() { defer wg.Done(); l.run() }()
	}
	wg.Wait()
	return nil
}

// shutdown stops accepting, closes idle connections, lets active ones
// finish their request (answered with Connection: close) until ctx
// ends, then closes the rest and stops the loops.
func (s *loopServer) shutdown(ctx context.Context) {
	for _, l := range s.loops {
		l.post(func() {
			l.stopping = true
			_ = l.listen(false)
			l.closeIdle()
		})
	}
	for s.active.Load() > 0 {
		select {
		case <-s.idle:
		case <-ctx.Done():
			for _, l := range s.loops {
				l.post(l.closeAll)
			}
			for s.active.Load() > 0 {
				<-s.idle
			}
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, l := range s.loops {
		l.post(func() { l.exit = true })
	}
	for _, l := range s.loops {
		<-l.done
	}
	unix.Close(s.lnfd)
}

// post runs f on the loop; false when the loop has stopped.
func (l *evloop) post(f func()) bool {
	l.mu.Lock()
	if l.dead {
		l.mu.Unlock()
		return false
	}
	l.tasks = append(l.tasks, f)
	wake := !l.woken
	l.woken = true
	l.mu.Unlock()
	if wake {
		var one = [8]byte{1}
		_, _ = unix.Write(l.wakefd, one[:])
	}
	return true
}

func (l *evloop) runTasks() {
	var b [8]byte
	_, _ = unix.Read(l.wakefd, b[:])
	l.mu.Lock()
	l.running, l.tasks = l.tasks, l.running[:0]
	l.woken = false
	l.mu.Unlock()
	for i, f := range l.running {
		f()
		l.running[i] = nil
	}
}

// run serves the loop's sockets until exit. It does not block a thread
// in epoll_wait: the loop's epoll descriptor is itself in Go's poller,
// so when nothing is ready the goroutine parks there (its thread and P
// go to other work, and the runtime's sysmon, which would otherwise
// wake every 20 µs to take the P of a thread blocked in a system call,
// stays asleep). When ready, the loop takes its events with a
// non-blocking epoll_wait, and reads and writes its non-blocking
// sockets with raw system calls.
func (l *evloop) run() {
	defer close(l.done)
	defer l.release()
	rc, err := l.file.SyscallConn()
	if err != nil {
		l.p.log.Error("event loop: cannot wait on its epoll descriptor; the loop stops", "loop", l.idx, "err", err)
		return
	}
	l.now = time.Now()
	l.sweep = l.now.Add(l.tick)
	_ = l.file.SetReadDeadline(l.sweep)
	var werr error
	wait := func(uintptr) bool {
		for batches := 0; !l.exit && batches < 64; batches++ {
			n, err := epollWaitNow(l.epfd, l.events)
			if err != nil {
				if err == syscall.EINTR {
					continue
				}
				werr = err
				return true
			}
			l.now = time.Now()
			if n == 0 {
				return !l.now.Before(l.sweep) // park until ready (or the sweep)
			}
			l.handle(n)
			if !l.now.Before(l.sweep) {
				return true
			}
		}
		return true // let other goroutines run now and then
	}
	for !l.exit {
		err := rc.Read(wait)
		if werr != nil {
			l.p.log.Error("event loop: epoll_wait failed; the loop stops", "loop", l.idx, "err", werr)
			return
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			l.p.log.Error("event loop: waiting on its epoll descriptor failed; the loop stops", "loop", l.idx, "err", err)
			return
		}
		l.now = time.Now()
		if !l.now.Before(l.sweep) {
			l.sweepTimers()
			l.sweep = l.now.Add(l.tick)
			_ = l.file.SetReadDeadline(l.sweep)
		}
		runtime.Gosched()
	}
}

func (l *evloop) handle(n int) {
	for i := 0; i < n; i++ {
		ev := &l.events[i]
		switch fd := int(ev.Fd); fd {
		case l.s.lnfd:
			l.accept()
		case l.wakefd:
			l.runTasks()
		default:
			if fd < len(l.fds) && l.fds[fd] != nil {
				l.fds[fd].onEvent(ev.Events)
			}
		}
	}
}

// epollWaitNow takes the ready events without waiting.
func epollWaitNow(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawRead and rawWrite are read(2) and write(2) on non-blocking sockets
// without the runtime's system call bookkeeping (they never block).
func rawRead(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func rawWrite(fd int, b []byte) (int, error) {
	n, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// release closes what the loop still holds when it stops.
func (l *evloop) release() {
	l.mu.Lock()
	l.dead = true
	l.mu.Unlock()
	l.runTasks() // dials that finished meanwhile close their sockets
	l.closeAll()
	for _, x := range l.fds {
		if be, ok := x.(*bconn); ok {
			be.close()
		}
	}
	l.closeFDs()
}

func (l *evloop) set(fd int, x pollee) {
	for fd >= len(l.fds) {
		l.fds = append(l.fds, make([]pollee, max(64, len(l.fds)))...)
	}
	l.fds[fd] = x
}

// addFD registers a socket: edge-triggered, for reads, writes and the
// peer's close.
func (l *evloop) addFD(fd int, x pollee) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return err
	}
	l.set(fd, x)
	return nil
}

func (l *evloop) accept() {
	for i := 0; i < 64; i++ {
		fd, sa, err := unix.Accept4(l.s.lnfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch err {
			case unix.EAGAIN, unix.ECONNABORTED, unix.EINTR:
				if err == unix.EAGAIN {
					return
				}
				continue
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				l.p.log.Warn("accept failed; pausing accepts for 100ms", "err", err, "loop", l.idx)
				if l.listen(false) == nil {
					l.acceptOff = true
					l.acceptAgain = l.now.Add(100 * time.Millisecond)
				}
				return
			default:
				l.p.log.Error("accept failed", "err", err, "loop", l.idx)
				return
			}
		}
		if l.stopping {
			unix.Close(fd)
			continue
		}
		if dst := l.s.leastLoaded(l); dst != l {
			dst.addConns(1)
			if dst.post(func() { dst.adopt(fd, sa) }) {
				continue
			}
			dst.addConns(-1) // that loop stopped: serve it here
		}
		l.addConns(1)
		l.adopt(fd, sa)
	}
}

// leastLoaded is the loop that should serve a connection accepted by l:
// l itself unless another loop serves fewer connections. Every loop is
// woken by a new connection (they wait in Go's poller, not in
// epoll_wait, so EPOLLEXCLUSIVE cannot pick one), and the first to run
// accepts the whole backlog: without this, a burst of connections (a
// client opening its pool) all landed on one loop and the other cores
// stayed idle (measured: 32 of 32 wrk connections on one of two loops).
func (s *loopServer) leastLoaded(l *evloop) *evloop {
	best, n := l, l.conns.Load()
	for _, o := range s.loops {
		if m := o.conns.Load(); m < n {
			best, n = o, m
		}
	}
	return best
}

func (l *evloop) addConns(d int64) {
	l.conns.Add(d)
	l.gauge.Add(float64(d))
}

// adopt serves an accepted connection on l (counted in l.conns by the
// caller).
func (l *evloop) adopt(fd int, sa unix.Sockaddr) {
	if l.stopping {
		unix.Close(fd)
		l.addConns(-1)
		return
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	c := l.newConn(fd, sa)
	if err := l.addFD(fd, c); err != nil {
		unix.Close(fd)
		l.free = append(l.free, c)
		l.addConns(-1)
		return
	}
	l.s.active.Add(1)
	c.step()
}

func (l *evloop) newConn(fd int, sa unix.Sockaddr) *lconn {
	var c *lconn
	if n := len(l.free); n > 0 {
		c = l.free[n-1]
		l.free = l.free[:n-1]
	} else {
		c = &lconn{l: l}
		c.br = bufio.NewReaderSize(&c.rd, loopBufSize)
	}
	c.fd = fd
	c.rd = fdReader{fd: fd, ready: true}
	c.br.Reset(&c.rd)
	c.wready = true
	c.closed = false
	c.out, c.outOff = c.out[:0], 0
	c.ip, c.remote, c.peer = sockaddrString(sa)
	c.needPP = l.p.cfg.ProxyProtocol
	c.enterHead(true)
	return c
}

func sockaddrString(sa unix.Sockaddr) (ip, remote string, peer netip.Addr) {
	var ap netip.AddrPort
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		ap = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		ap = netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	default:
		return "-", "-", netip.Addr{}
	}
	return ap.Addr().String(), ap.String(), ap.Addr()
}

func (l *evloop) closeIdle() {
	for _, x := range l.fds {
		if c, ok := x.(*lconn); ok && c.state == csHead && c.br.Buffered() == 0 && c.pending() == 0 {
			c.close()
		}
	}
}

func (l *evloop) closeAll() {
	for _, x := range l.fds {
		if c, ok := x.(*lconn); ok {
			c.close()
		}
	}
}

// sweepTimers applies the deadlines, closes backend connections idle
// too long (or whose backend was drained), and resumes accepting.
func (l *evloop) sweepTimers() {
	now := l.now.UnixNano()
	idleMax := int64(l.p.cfg.BackendIdleTimeout)
	for _, x := range l.fds {
		switch v := x.(type) {
		case *lconn:
			v.timers(now)
		case *bconn:
			if v.owner == nil {
				if now-v.idleAt > idleMax || v.b.gone.Load() {
					l.unpool(v)
					v.close()
				}
			} else if v.dl > 0 && now > v.dl {
				v.owner.backendTimeout()
			}
		}
	}
	if l.stopping {
		l.closeIdle()
	}
	if l.acceptOff && !l.stopping && !l.now.Before(l.acceptAgain) {
		if l.listen(true) == nil {
			l.acceptOff = false
		}
	}
}

// fdReader reads a non-blocking socket for a bufio.Reader: errWouldBlock
// when the loop knows it holds nothing more.
type fdReader struct {
	fd    int
	ready bool // readable as far as the loop knows (edge-triggered)
	hup   bool // the peer closed or the socket failed: read to the end
}

func (r *fdReader) Read(b []byte) (int, error) {
	if !r.ready {
		return 0, errWouldBlock
	}
	for {
		n, err := rawRead(r.fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			r.ready = false
			return 0, errWouldBlock
		case err != nil:
			return 0, os.NewSyscallError("read", err)
		case n == 0:
			return 0, io.EOF
		}
		if n < len(b) && !r.hup {
			r.ready = false // a short read drained the socket
		}
		return n, nil
	}
}

// noteEvents records what epoll reported on a socket (edge-triggered:
// the flags stay until a read or write finds the socket drained or
// full).
func noteEvents(ev uint32, rd *fdReader, wready *bool) {
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		rd.ready = true
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		rd.hup = true
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		*wready = true
	}
}

// writeOut writes out[*off:] while the socket takes it.
func writeOut(fd int, out *[]byte, off *int, ready *bool) error {
	for *off < len(*out) {
		if !*ready {
			return nil
		}
		n, err := rawWrite(fd, (*out)[*off:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			*ready = false
			return nil
		case err != nil:
			return os.NewSyscallError("write", err)
		}
		*off += n
	}
	*out, *off = (*out)[:0], 0
	return nil
}
