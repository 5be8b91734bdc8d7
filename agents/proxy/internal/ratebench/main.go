// Command ratebench sends HTTP/1.1 GETs at a fixed rate (open loop) over
// keep-alive connections and reports latency percentiles measured from
// each request's scheduled time, so a stall is not hidden by the
// requests it delays (coordinated omission). scripts/bench-proxy.sh uses
// it for latency at half of saturation, which wrk cannot do.
//
// With -target given several times it measures added latency on a busy
// machine: every target gets the same schedule (the same rate, the same
// connections, each request sent at the same scheduled instant to all
// targets), and besides each target's own percentiles it reports the
// distribution of the per-request differences to the first target
// (normally the backend itself): target latency minus the first
// target's latency for the same scheduled instant. A stall of the whole
// machine (the client, the backend, the run queue) delays both requests
// of a pair and cancels out; what is left is what the path through the
// proxy added at that moment.
//
// It is a benchmark tool of the proxy package, not part of paddock.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9200", "host:port to send to")
	host := flag.String("host", "localhost", "Host header")
	path := flag.String("path", "/", "request path")
	rate := flag.Float64("rate", 1000, "requests per second, in total")
	conns := flag.Int("conns", 16, "keep-alive connections")
	dur := flag.Duration("duration", 10*time.Second, "measured duration")
	warm := flag.Duration("warmup", 2*time.Second, "unmeasured warm-up")
	var targets []target
	flag.Func("target", "name=host:port[/Host header]: measure several targets at once on one schedule and report "+
		"the differences to the first (repeat the flag; replaces -addr and -host)", func(v string) error {
		t, err := parseTarget(v)
		if err == nil {
			targets = append(targets, t)
		}
		return err
	})
	flag.Parse()
	if len(targets) > 0 {
		if err := runPaired(targets, *path, *rate, *conns, *warm, *dur, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "ratebench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*addr, *host, *path, *rate, *conns, *warm, *dur); err != nil {
		fmt.Fprintln(os.Stderr, "ratebench:", err)
		os.Exit(1)
	}
}

func run(addr, host, path string, rate float64, conns int, warm, dur time.Duration) error {
	if rate <= 0 || conns <= 0 {
		return errors.New("rate and conns must be positive")
	}
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: ratebench\r\n\r\n")
	interval := time.Duration(float64(time.Second) * float64(conns) / rate)
	start := time.Now().Add(100 * time.Millisecond)
	measureFrom := start.Add(warm)
	end := measureFrom.Add(dur)
	var mu sync.Mutex
	var lat []time.Duration
	var errs int
	var firstErr error
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			local := make([]time.Duration, 0, int(float64(dur)/float64(interval))+16)
			nerr := 0
			var ferr error
			var nc net.Conn
			var br *bufio.Reader
			next := start.Add(interval * time.Duration(i) / time.Duration(conns))
			for next.Before(end) {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				if nc == nil {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						nerr++
						ferr = err
						next = next.Add(interval)
						continue
					}
					nc, br = c, bufio.NewReaderSize(c, 16<<10)
				}
				err := roundTrip(nc, br, req)
				done := time.Now()
				if err != nil {
					nc.Close()
					nc = nil
					if !next.Before(measureFrom) {
						nerr++
						ferr = err
					}
				} else if !next.Before(measureFrom) {
					local = append(local, done.Sub(next))
				}
				next = next.Add(interval)
			}
			if nc != nil {
				nc.Close()
			}
			mu.Lock()
			lat = append(lat, local...)
			errs += nerr
			if firstErr == nil {
				firstErr = ferr
			}
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if len(lat) == 0 {
		return fmt.Errorf("no successful request (%d errors, first: %v)", errs, firstErr)
	}
	slices.Sort(lat)
	q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	fmt.Printf("rate %.0f/s achieved %.0f/s requests %d errors %d p50 %s p90 %s p99 %s p99.9 %s max %s\n",
		rate, float64(len(lat))/dur.Seconds(), len(lat), errs, us(q(.5)), us(q(.9)), us(q(.99)), us(q(.999)), us(lat[len(lat)-1]))
	if firstErr != nil {
		fmt.Printf("first error: %v\n", firstErr)
	}
	return nil
}

func us(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e3, 'f', 0, 64) + "us" }

// roundTrip sends one request and reads a Content-Length or chunked answer.
func roundTrip(nc net.Conn, br *bufio.Reader, req []byte) error {
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(req); err != nil {
		return err
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(line) < 12 || line[9] != '2' {
		return fmt.Errorf("status %q", bytes.TrimSpace(line))
	}
	cl := -1
	chunked := false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok {
			switch {
			case bytes.EqualFold(k, []byte("Content-Length")):
				cl, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
			case bytes.EqualFold(k, []byte("Transfer-Encoding")):
				chunked = true
			}
		}
	}
	switch {
	case cl >= 0:
		_, err = br.Discard(cl)
	case chunked:
		for {
			line, err = br.ReadSlice('\n')
			if err != nil {
				return err
			}
			n, perr := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
			if perr != nil {
				return perr
			}
			if n == 0 {
				_, err = br.ReadSlice('\n')
				return err
			}
			if _, err = br.Discard(int(n) + 2); err != nil {
				return err
			}
		}
	default:
		return io.ErrUnexpectedEOF
	}
	return err
}
