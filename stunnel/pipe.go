package stunnel

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const bufSize = 64 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

type closeWriter interface{ CloseWrite() error }

// Pipe forwards a<->b until both directions end, idle passes without a
// byte (0: never) or kill is closed, then closes both; in counts a->b
// bytes, out b->a. Embedders that open their own connections (an
// allocator's egress for its nodes) forward with it.
func Pipe(a, b net.Conn, idle time.Duration, in, out prometheus.Counter, kill <-chan struct{}) {
	pipe(a, b, idle, in, out, kill)
}

// pipe forwards a↔b until both directions end, the idle timeout passes,
// or kill is closed. in counts a→b bytes, out b→a.
func pipe(a, b net.Conn, idle time.Duration, in, out prometheus.Counter, kill <-chan struct{}) {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); copyCount(b, a, in, &last) }()
	go func() { defer wg.Done(); copyCount(a, b, out, &last) }()
	go func() { wg.Wait(); close(done) }()

	var tick <-chan time.Time
	if idle > 0 {
		t := time.NewTicker(idle / 4)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-done:
			a.Close()
			b.Close()
			return
		case <-kill:
			a.Close()
			b.Close()
			<-done
			return
		case now := <-tick:
			if now.Sub(time.Unix(0, last.Load())) >= idle {
				a.Close()
				b.Close()
				<-done
				return
			}
		}
	}
}

func copyCount(dst, src net.Conn, c prometheus.Counter, last *atomic.Int64) {
	bp := bufPool.Get().(*[]byte)
	buf := *bp
	defer bufPool.Put(bp)
	var pending int
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
			pending += n
			if pending >= 1<<20 {
				c.Add(float64(pending))
				pending = 0
			}
			last.Store(time.Now().UnixNano())
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				// Half-close: tell the other side no more data comes.
				if cw, ok := dst.(closeWriter); ok {
					cw.CloseWrite()
					break
				}
			}
			// Hard error: end both directions.
			dst.Close()
			src.Close()
			break
		}
	}
	c.Add(float64(pending))
}
