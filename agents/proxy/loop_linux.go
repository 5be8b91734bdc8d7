//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

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
	// loop's epoll set with EPOLLEXCLUSIVE: a connection wakes one loop.
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
		pools: map[*backend][]*bconn{}, tick: tick, done: make(chan struct{})}
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
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c := l.newConn(fd, sa)
		if err := l.addFD(fd, c); err != nil {
			unix.Close(fd)
			l.free = append(l.free, c)
			continue
		}
		l.s.active.Add(1)
		c.step()
	}
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
	c.ip, c.remote = sockaddrString(sa)
	c.enterHead(true)
	return c
}

func sockaddrString(sa unix.Sockaddr) (ip, remote string) {
	var ap netip.AddrPort
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		ap = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		ap = netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	default:
		return "-", "-"
	}
	return ap.Addr().String(), ap.String()
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

// headComplete reports whether b holds a whole request head as
// readRequest reads it (up to two empty lines, the request line, header
// lines, an empty line), or enough for readRequest to refuse it.
func headComplete(b []byte) bool {
	i := 0
	for n := 0; ; n++ {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return false
		}
		empty := j == 0 || j == 1 && b[i] == '\r'
		i += j + 1
		if !empty {
			break
		}
		if n >= 2 {
			return true // readRequest refuses a third empty line
		}
	}
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return false
		}
		if j == 0 || j == 1 && b[i] == '\r' {
			return true
		}
		i += j + 1
	}
}

// respHeadComplete reports whether b holds a whole response head after
// any 1xx interim answers (readResponseHead skips those).
func respHeadComplete(b []byte) bool {
	for {
		i := 0
		status := b
		for {
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				return false
			}
			if j == 0 || j == 1 && b[i] == '\r' {
				i += j + 1
				break
			}
			i += j + 1
		}
		if len(status) < 12 || status[9] != '1' {
			return true
		}
		b = b[i:]
	}
}

// lconn is a client connection served by a loop.
type lconn struct {
	l      *evloop
	fd     int
	rd     fdReader
	br     *bufio.Reader
	out    []byte
	outOff int
	wready bool
	closed bool
	state  int
	first  bool

	req    request
	log    []byte
	stamp  stamp
	ip     string
	remote string

	// rdl bounds the wait for the client's bytes (idle, head, body),
	// wdl each stall of output to it; unix ns, 0 for none.
	rdl     int64
	rdlHead bool
	wdl     int64
	// linger: after the answer, shut the write side and read what the
	// client still sends for a while before closing (closing with
	// unread bytes would reset the connection, and the client could
	// lose the answer; net/http and nginx linger too).
	linger bool

	// The request being served.
	start    time.Time
	o        outcome
	tg       Target
	ms       []*member
	exclude  *backend
	b        *backend // counted in b.outstanding
	be       *bconn
	sendLeft int64
	sent     time.Time
	rh       respHead
	keep     bool
	framing  int
	bodyLeft int64
	ck       chunkReader
}

func (c *lconn) pending() int { return len(c.out) - c.outOff }

func (c *lconn) onEvent(ev uint32) {
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.rd.ready = true
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.rd.hup = true
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.wready = true
	}
	c.step()
}

// step moves the connection on as far as its sockets allow. Output is
// written when the connection has to wait (so a response head and body
// leave in one write), and again while writing lets it move on.
func (c *lconn) step() {
	for !c.closed {
		if c.advance() {
			continue
		}
		if c.closed || c.pending() == 0 {
			return
		}
		before := c.pending()
		if !c.flush() || c.pending() == before {
			return
		}
	}
}

// advance runs the current state; false when it waits.
func (c *lconn) advance() bool {
	switch c.state {
	case csHead:
		return c.pending() < outHigh && c.readHead()
	case csSend:
		return c.send()
	case csRespHead:
		return c.respHead()
	case csRespBody:
		return c.respBody()
	case csClose:
		if c.pending() > 0 {
			return false
		}
		if c.linger {
			c.startLinger()
			return true
		}
		c.close()
	case csLinger:
		c.drainLinger()
	}
	return false
}

// flush writes pending output; false when the connection failed.
func (c *lconn) flush() bool {
	if c.pending() == 0 {
		return true
	}
	before := c.outOff
	if err := writeOut(c.fd, &c.out, &c.outOff, &c.wready); err != nil {
		if c.state == csSend || c.state == csRespHead || c.state == csRespBody {
			c.exchangeFailed(&exchangeError{err: err, client: true}, c.rh.status)
		}
		c.close()
		return false
	}
	switch {
	case c.pending() == 0:
		c.wdl = 0
	case c.outOff != before || c.wdl == 0:
		c.wdl = c.l.now.Add(c.l.p.cfg.WriteTimeout).UnixNano()
	}
	return true
}

func (c *lconn) enterHead(first bool) {
	c.state = csHead
	c.first = first
	wait := c.l.p.cfg.IdleTimeout
	if first {
		wait = c.l.p.cfg.ReadHeaderTimeout
	}
	c.rdl = c.l.now.Add(wait).UnixNano()
	c.rdlHead = first
	if c.l.stopping && c.br.Buffered() == 0 {
		c.state = csClose
	}
}

// readHead waits for a whole request head and serves it.
func (c *lconn) readHead() bool {
	cfg := &c.l.p.cfg
	for {
		n := c.br.Buffered()
		buf, _ := c.br.Peek(n)
		if headComplete(buf) {
			break
		}
		if n > 0 && !c.rdlHead {
			c.rdl = c.l.now.Add(cfg.ReadHeaderTimeout).UnixNano()
			c.rdlHead = true
		}
		if n >= cfg.MaxHeaderBytes {
			c.start = c.l.now
			c.badHead(errHeadTooLarge)
			return true
		}
		if n == c.br.Size() {
			c.detach("large-head", false)
			return false
		}
		if _, err := c.br.Peek(n + 1); err != nil {
			if err != errWouldBlock {
				c.close() // closed, or failed, before a whole head
			}
			return false
		}
	}
	c.start = c.l.now
	if err := readRequest(c.br, &c.req, cfg.MaxHeaderBytes); err != nil {
		var he *headError
		if !errors.As(err, &he) {
			he = errBadRequest("malformed request head").(*headError)
		}
		c.badHead(he)
		return true
	}
	c.rdl, c.rdlHead = 0, false
	c.dispatch()
	return true
}

// startLinger shuts the write side and reads the rest for up to a
// second.
func (c *lconn) startLinger() {
	_ = unix.Shutdown(c.fd, unix.SHUT_WR)
	c.state = csLinger
	c.rdl = c.l.now.Add(time.Second).UnixNano()
	c.br.Reset(&c.rd)
}

func (c *lconn) drainLinger() {
	var buf [4 << 10]byte
	for i := 0; i < 16; i++ {
		if _, err := c.rd.Read(buf[:]); err != nil {
			if err != errWouldBlock {
				c.close()
			}
			return
		}
	}
	c.close() // more than 64 KiB: enough
}

func (c *lconn) badHead(he *headError) {
	p := c.l.p
	c.out = appendError(c.out, &reply{he.status, "illegal_argument_exception", he.msg, true}, false)
	c.state = csClose
	c.linger = true
	c.wdl = c.l.now.Add(time.Second).UnixNano()
	p.unknown.inc(he.status)
	if p.access != nil {
		p.writeAccess(&c.log, &c.stamp, outcome{code: he.status, err: he.msg}, time.Since(c.start), "-", nil, c.remote)
	}
}

// dispatch serves the request parsed into c.req.
func (c *lconn) dispatch() {
	p := c.l.p
	r := &c.req
	c.o = outcome{}
	switch {
	case r.minor == 0:
		c.detach("http/1.0", true)
		return
	case r.expect:
		c.detach("expect", true)
		return
	case r.chunked:
		c.detach("chunked-body", true)
		return
	}
	rt, tg, a := p.resolve(p.tbl.Load(), r, &c.o)
	if a != nil {
		c.answer(a)
		return
	}
	if rt.paused {
		c.detach("paused", true)
		return
	}
	c.tg, c.ms, c.exclude = tg, rt.members(tg.Kind), nil
	c.attempt()
}

// attempt sends the request to a backend.
func (c *lconn) attempt() {
	l := c.l
	c.o.attempts++
	l.rr++
	m := pick(c.ms, l.rr, c.exclude)
	if m == nil {
		c.answer(noBackend(&c.req, c.tg, c.ms, &c.o))
		return
	}
	c.o.upstream = m.b.addr
	c.b = m.b
	m.b.outstanding.Add(1)
	be, err := l.getConn(m.b)
	if err != nil {
		c.connectFailed(err)
		return
	}
	c.startSend(be)
}

func (c *lconn) startSend(be *bconn) {
	l := c.l
	r := &c.req
	c.be = be
	be.owner = c
	if !be.b.tls {
		be.out = appendRequestHead(be.out, r, c.ip, false)
	} else {
		be.scratch = appendRequestHead(be.scratch[:0], r, c.ip, false)
		be.queue(be.scratch)
	}
	c.sendLeft = max(r.contentLength, 0)
	if c.sendLeft > 0 && int64(c.br.Buffered()) < c.sendLeft {
		c.rdl = l.now.Add(l.p.cfg.ReadTimeout).UnixNano()
	}
	if !be.connecting {
		be.dl = l.now.Add(l.p.cfg.UpstreamTimeout).UnixNano()
	}
	c.state = csSend
}

// send passes the request body to the backend and flushes.
func (c *lconn) send() bool {
	be := c.be
	for c.sendLeft > 0 {
		if be.pending() > outHigh {
			if !c.beFlush() {
				return true
			}
			if be.pending() > outHigh {
				return false
			}
		}
		n := c.br.Buffered()
		if n == 0 {
			if _, err := c.br.Peek(1); err != nil {
				if err == errWouldBlock {
					c.beFlush()
					return false
				}
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				c.exchangeFailed(&exchangeError{err: fmt.Errorf("reading the request body: %w", err), client: true}, 0)
				return true
			}
			continue
		}
		k := int(min(int64(n), c.sendLeft))
		b, _ := c.br.Peek(k)
		be.queue(b)
		c.br.Discard(k)
		c.sendLeft -= int64(k)
	}
	if !c.beFlush() {
		return true
	}
	if be.connecting || be.pending() > 0 {
		return false
	}
	c.rdl = 0
	c.sent = c.l.now
	be.dl = c.l.now.Add(c.l.p.cfg.UpstreamTimeout).UnixNano()
	c.state = csRespHead
	return true
}

// beFlush writes the backend's pending bytes; false when the exchange
// failed (and was dealt with).
func (c *lconn) beFlush() bool {
	be := c.be
	if be.connErr != nil {
		c.connectFailed(be.connErr)
		return false
	}
	if be.connecting {
		return true
	}
	before := be.outOff
	if err := writeOut(be.fd, &be.out, &be.outOff, &be.wready); err != nil {
		if be.reused && be.got == 0 {
			c.stale(err)
		} else {
			c.exchangeFailed(c.l.p.upstreamFailed(be.b, err), 0)
		}
		return false
	}
	if be.outOff != before {
		be.dl = c.l.now.Add(c.l.p.cfg.UpstreamTimeout).UnixNano()
	}
	return true
}

// respHead waits for the response head and starts the client's answer.
func (c *lconn) respHead() bool {
	be := c.be
	p := c.l.p
	for {
		n := be.br.Buffered()
		buf, _ := be.br.Peek(n)
		if respHeadComplete(buf) {
			break
		}
		if n == be.br.Size() {
			c.exchangeFailed(p.upstreamFailed(be.b, errors.New("response head from backend larger than 16 KiB")), 0)
			return true
		}
		if _, err := be.br.Peek(n + 1); err != nil {
			if err == errWouldBlock {
				return false
			}
			if n == 0 && be.reused {
				c.stale(err)
				return true
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			c.exchangeFailed(p.upstreamFailed(be.b, err), 0)
			return true
		}
		be.got++
	}
	rh, out, err := readResponseHead(be.br, c.out)
	if err != nil {
		c.out = out[:len(c.out)]
		c.exchangeFailed(p.upstreamFailed(be.b, err), 0)
		return true
	}
	p.met.upstream.Observe(c.l.now.Sub(c.sent).Seconds())
	c.rh = rh
	var noBody bool
	c.out, c.keep, noBody = p.frameResponse(out, &c.req, &c.rh)
	if noBody {
		c.finish(!rh.close)
		return true
	}
	switch {
	case rh.contentLength >= 0 && !rh.chunked:
		c.framing, c.bodyLeft = bodyLength, rh.contentLength
	case rh.chunked:
		c.framing = bodyChunked
		c.ck = chunkReader{}
	default:
		c.framing = bodyEOF
	}
	c.state = csRespBody
	return true
}

// respBody passes the response body to the client.
func (c *lconn) respBody() bool {
	be := c.be
	had := len(c.out)
	defer func() {
		if c.be == be && len(c.out) != had {
			// Bytes came: UpstreamTimeout bounds each stall, not the body.
			be.dl = c.l.now.Add(c.l.p.cfg.UpstreamTimeout).UnixNano()
		}
	}()
	for {
		if c.pending() > outHigh {
			return false // the client reads first (step flushes)
		}
		var done bool
		var err error
		switch c.framing {
		case bodyLength:
			if c.bodyLeft == 0 {
				done = true
				break
			}
			if n := be.br.Buffered(); n > 0 {
				k := int(min(int64(n), c.bodyLeft))
				b, _ := be.br.Peek(k)
				c.out = append(c.out, b...)
				be.br.Discard(k)
				c.bodyLeft -= int64(k)
				continue
			}
			if _, err = be.br.Peek(1); err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
		case bodyChunked:
			done, err = c.ck.pass(be.br, &c.out)
		case bodyEOF:
			if n := be.br.Buffered(); n > 0 {
				b, _ := be.br.Peek(n)
				c.out = append(c.out, b...)
				be.br.Discard(n)
				continue
			}
			if _, err = be.br.Peek(1); err == io.EOF {
				c.rh.close = true
				done, err = true, nil
			}
		}
		if done {
			c.finish(!c.rh.close)
			return true
		}
		switch err {
		case nil:
			continue
		case errWouldBlock:
			return false
		}
		c.l.p.met.upErrors.WithLabelValues("body").Inc()
		c.exchangeFailed(&exchangeError{err: srcError{err}, started: true}, c.rh.status)
		return true
	}
}

// stale: a pooled connection failed before any answer (the backend
// closed it while idle); a request without body goes again on a fresh
// connection.
func (c *lconn) stale(err error) {
	p := c.l.p
	p.met.upErrors.WithLabelValues("stale").Inc()
	b := c.b
	c.be.owner = nil
	c.be.close()
	c.be = nil
	if c.req.hasBody() {
		c.exchangeFailed(&exchangeError{err: fmt.Errorf("%w (%v); the request body cannot be sent twice: retry the request", errStale, err)}, 0)
		return
	}
	be, err := c.l.dial(b)
	if err != nil {
		c.connectFailed(err)
		return
	}
	c.startSend(be)
}

func (c *lconn) connectFailed(err error) {
	c.l.p.connectFailed(c.b, err)
	c.exchangeFailed(&exchangeError{err: err, connect: true}, 0)
}

// backendTimeout: the backend's deadline passed.
func (c *lconn) backendTimeout() {
	be := c.be
	p := c.l.p
	switch {
	case be.connecting:
		c.connectFailed(fmt.Errorf("dial tcp %s: %w", be.b.addr, os.ErrDeadlineExceeded))
	case c.state == csRespBody:
		p.met.upErrors.WithLabelValues("body").Inc()
		c.exchangeFailed(&exchangeError{err: srcError{os.ErrDeadlineExceeded}, started: true}, c.rh.status)
	default:
		c.exchangeFailed(p.upstreamFailed(be.b, os.ErrDeadlineExceeded), 0)
	}
	c.step()
}

// exchangeFailed ends a failed exchange: retry, an answer, or closing.
func (c *lconn) exchangeFailed(xe *exchangeError, code int) {
	p := c.l.p
	if c.be != nil {
		c.be.owner = nil
		c.be.close()
		c.be = nil
	}
	b := c.b
	if b != nil {
		b.outstanding.Add(-1)
		c.b = nil
	}
	if b == nil {
		b = &backend{}
	}
	retry, a := p.afterFailure(&c.req, c.tg, c.ms, b, xe, code, &c.o)
	switch {
	case retry:
		c.exclude = b
		c.attempt()
	case a == nil:
		c.record()
		c.state = csClose
		if xe.client {
			c.out, c.outOff = c.out[:0], 0
		}
	default:
		c.answer(a)
	}
}

// answer gives the client one of the proxy's own answers.
func (c *lconn) answer(a *reply) {
	c.out = appendError(c.out, a, c.req.method == "HEAD")
	c.keep = !a.close
	c.linger = a.close
	c.finish(false)
}

// finish ends the request: the backend connection back to the pool (or
// closed), metrics, the access log line, then the next request.
func (c *lconn) finish(reusable bool) {
	if be := c.be; be != nil {
		c.be = nil
		be.owner = nil
		be.dl = 0
		if reusable && be.br.Buffered() == 0 {
			c.l.putConn(be)
		} else {
			be.close()
		}
	}
	if c.b != nil {
		c.b.outstanding.Add(-1)
		c.b = nil
	}
	if c.o.code == 0 {
		c.o.code = c.rh.status
	}
	c.record()
	c.rh = respHead{}
	if !c.keep || c.l.stopping {
		c.state = csClose
		return
	}
	c.enterHead(false)
}

func (c *lconn) record() {
	p := c.l.p
	if c.o.rm != nil {
		c.o.rm.inc(c.o.code)
	} else {
		p.unknown.inc(c.o.code)
	}
	if p.access != nil {
		p.writeAccess(&c.log, &c.stamp, c.o, time.Since(c.start), c.req.method, c.req.path(), c.remote)
	}
}

// timers applies the client's deadlines.
func (c *lconn) timers(now int64) {
	if c.wdl > 0 && now > c.wdl {
		c.close() // the client does not read its answers
		return
	}
	if c.rdl == 0 || now <= c.rdl {
		return
	}
	c.rdl = 0
	switch c.state {
	case csLinger:
		c.close()
	case csHead:
		if c.br.Buffered() > 0 {
			c.out = append(c.out, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"...)
			c.state = csClose
			c.linger = true
			c.wdl = c.l.now.Add(time.Second).UnixNano()
			c.step()
			return
		}
		c.close()
	case csSend:
		c.exchangeFailed(&exchangeError{err: fmt.Errorf("reading the request body: %w", os.ErrDeadlineExceeded), client: true}, 0)
		c.step()
	}
}

// detach hands the connection over to the goroutine-per-connection
// server, with the request just parsed when parsed is set.
func (c *lconn) detach(reason string, parsed bool) {
	l := c.l
	l.p.met.handoffs.WithLabelValues(reason).Inc()
	var req request
	if parsed {
		req = c.req
		c.req = request{}
	}
	buffered := bytes.Clone(c.peekAll())
	out := bytes.Clone(c.out[c.outOff:])
	fd := c.fd
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	l.fds[fd] = nil
	c.closed = true
	f := os.NewFile(uintptr(fd), "client")
	nc, err := net.FileConn(f) // a duplicate, in Go's poller
	f.Close()
	c.release()
	if err != nil {
		l.p.log.Warn("event loop: handing a connection over failed; closing it", "err", err, "client", c.remote)
		return
	}
	if !parsed {
		// The head is still in buffered: the server parses it.
		l.s.gs.adoptUnparsed(nc, buffered, out)
		return
	}
	l.s.gs.adopt(nc, buffered, out, &req)
}

func (c *lconn) peekAll() []byte {
	b, _ := c.br.Peek(c.br.Buffered())
	return b
}

func (c *lconn) close() {
	if c.closed {
		return
	}
	c.closed = true
	if c.be != nil {
		c.be.owner = nil
		c.be.close()
		c.be = nil
	}
	if c.b != nil {
		c.b.outstanding.Add(-1)
		c.b = nil
	}
	c.l.fds[c.fd] = nil
	unix.Close(c.fd)
	c.release()
}

// release returns a closed (or handed over) connection to the free list.
func (c *lconn) release() {
	l := c.l
	c.br.Reset(&c.rd)
	c.out, c.outOff = c.out[:0], 0
	if cap(c.out) > 64<<10 {
		c.out = nil
	}
	if cap(c.req.buf) > 64<<10 {
		c.req = request{}
	}
	c.ms, c.exclude, c.o = nil, nil, outcome{}
	c.wdl, c.rdl = 0, 0
	c.linger = false
	if len(l.free) < 1024 {
		l.free = append(l.free, c)
	}
	if l.s.active.Add(-1) == 0 {
		select {
		case l.s.idle <- struct{}{}:
		default:
		}
	}
}

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
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		be.rd.ready = true
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		be.rd.hup = true
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		be.wready = true
	}
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

// chunkReader passes a chunked body through verbatim, resuming where
// the bytes at hand end (copyChunked's non-blocking twin).
type chunkReader struct {
	left    int64 // bytes of the current chunk still to pass
	inData  bool  // within a chunk's data (or its CRLF when left == 0)
	trailer bool  // after the last chunk: trailer lines up to an empty one
}

// pass moves what br holds to out; done at the end of the body.
func (k *chunkReader) pass(br *bufio.Reader, out *[]byte) (bool, error) {
	for {
		if k.inData {
			if k.left > 0 {
				n := br.Buffered()
				if n == 0 {
					if _, err := br.Peek(1); err != nil {
						return false, eofUnexpected(err)
					}
					continue
				}
				m := int(min(int64(n), k.left))
				b, _ := br.Peek(m)
				*out = append(*out, b...)
				br.Discard(m)
				k.left -= int64(m)
				continue
			}
			line, err := chunkLine(br)
			if err != nil {
				return false, err
			}
			if len(line) != 0 {
				return false, errors.New("malformed chunk end")
			}
			*out = append(*out, crlf...)
			k.inData = false
			continue
		}
		line, err := chunkLine(br)
		if err != nil {
			return false, err
		}
		if k.trailer {
			if len(line) > 0 && !validTrailer(line) {
				return false, errors.New("malformed trailer line")
			}
			*out = append(append(*out, line...), crlf...)
			if len(line) == 0 {
				return true, nil
			}
			continue
		}
		n, err := parseChunkSize(line)
		if err != nil {
			return false, err
		}
		if n == 0 {
			*out = append(*out, lastChunk...)
			k.trailer = true
			continue
		}
		*out = strconv16(*out, n)
		k.left, k.inData = n, true
	}
}

func strconv16(out []byte, n int64) []byte {
	var hb [20]byte
	i := len(hb)
	for {
		i--
		hb[i] = hexDigit[n&0xf]
		n >>= 4
		if n == 0 {
			break
		}
	}
	return append(append(out, hb[i:]...), crlf...)
}

// chunkLine returns a whole line of br without its end, or
// errWouldBlock when it has not all arrived (nothing is consumed then).
func chunkLine(br *bufio.Reader) ([]byte, error) {
	for {
		b, _ := br.Peek(br.Buffered())
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return crlfLine(br)
		}
		if len(b) >= 4<<10 {
			return nil, errors.New("chunk line longer than 4 KiB")
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			return nil, eofUnexpected(err)
		}
	}
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
