package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// target is one endpoint of a paired run.
type target struct {
	name, addr, host string
}

// parseTarget reads name=host:port[/Host header].
func parseTarget(v string) (target, error) {
	name, rest, ok := strings.Cut(v, "=")
	if !ok || name == "" || rest == "" {
		return target{}, fmt.Errorf("target %q: want name=host:port[/Host header]", v)
	}
	addr, host, _ := strings.Cut(rest, "/")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return target{}, fmt.Errorf("target %q: %w", v, err)
	}
	if host == "" {
		host = "localhost"
	}
	return target{name: name, addr: addr, host: host}, nil
}

// Slots of a paired run's latency table.
const (
	notMeasured = time.Duration(-1 << 62) // warm-up, or after the end
	failed      = time.Duration(-1<<62 + 1)
	// unsent: the run's time was over before the request's turn came
	// (the target fell so far behind that the client stopped waiting).
	unsent = time.Duration(-1<<62 + 2)
)

// pairedResult holds, per target, the latency of every scheduled
// request (connection c, tick k at lat[c*ticks+k]).
type pairedResult struct {
	targets []target
	ticks   int
	conns   int
	lat     [][]time.Duration
	errs    []int
	first   []error
}

// runPaired sends, on conns connections per target, one request per
// interval to every target at the same scheduled instant, then reports
// each target's latency and the per-request differences to the first.
func runPaired(targets []target, path string, rate float64, conns int, warm, dur time.Duration, w io.Writer) error {
	if rate <= 0 || conns <= 0 {
		return errors.New("rate and conns must be positive")
	}
	res := measurePaired(targets, path, rate, conns, warm, dur)
	return res.report(w, dur)
}

func measurePaired(targets []target, path string, rate float64, conns int, warm, dur time.Duration) *pairedResult {
	interval := time.Duration(float64(time.Second) * float64(conns) / rate)
	start := time.Now().Add(100 * time.Millisecond)
	measureFrom := start.Add(warm)
	end := measureFrom.Add(dur)
	ticks := int((warm+dur)/interval) + 2
	res := &pairedResult{targets: targets, ticks: ticks, conns: conns,
		lat: make([][]time.Duration, len(targets)), errs: make([]int, len(targets)), first: make([]error, len(targets))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for j, t := range targets {
		res.lat[j] = make([]time.Duration, conns*ticks)
		for i := range res.lat[j] {
			res.lat[j][i] = notMeasured
		}
		req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + t.host + "\r\nUser-Agent: ratebench\r\n\r\n")
		for c := 0; c < conns; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lat := res.lat[j][c*ticks : (c+1)*ticks]
				var nc net.Conn
				var br *bufio.Reader
				nerr := 0
				var ferr error
				// The same offsets for every target: connection c of each
				// target sends at the same instants.
				first := start.Add(interval * time.Duration(c) / time.Duration(conns))
				for k := 0; k < ticks; k++ {
					next := first.Add(interval * time.Duration(k))
					if !next.Before(end) {
						break
					}
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
					measured := !next.Before(measureFrom)
					if time.Since(end) > time.Second {
						for ; k < ticks && first.Add(interval*time.Duration(k)).Before(end); k++ {
							if !first.Add(interval * time.Duration(k)).Before(measureFrom) {
								lat[k] = unsent
							}
						}
						break
					}
					if nc == nil {
						c, err := net.Dial("tcp", t.addr)
						if err != nil {
							if measured {
								nerr++
								ferr = err
								lat[k] = failed
							}
							continue
						}
						nc, br = c, bufio.NewReaderSize(c, 16<<10)
					}
					err := roundTrip(nc, br, req)
					done := time.Now()
					switch {
					case err != nil:
						nc.Close()
						nc = nil
						if measured {
							nerr++
							ferr = err
							lat[k] = failed
						}
					case measured:
						lat[k] = done.Sub(next)
					}
				}
				if nc != nil {
					nc.Close()
				}
				mu.Lock()
				res.errs[j] += nerr
				if res.first[j] == nil {
					res.first[j] = ferr
				}
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return res
}

// quantiles of a sorted slice.
func quantiles(s []time.Duration) (p50, p99, p999, max time.Duration) {
	q := func(f float64) time.Duration { return s[min(len(s)-1, int(f*float64(len(s))))] }
	return q(.5), q(.99), q(.999), s[len(s)-1]
}

// report prints one line per target (its latency), then one per target
// after the first (the differences to the first, over the scheduled
// instants both answered).
func (r *pairedResult) report(w io.Writer, dur time.Duration) error {
	for j, t := range r.targets {
		var ok []time.Duration
		late := 0
		for _, d := range r.lat[j] {
			switch {
			case d >= 0:
				ok = append(ok, d)
			case d == unsent:
				late++
			}
		}
		if len(ok) == 0 {
			return fmt.Errorf("target %s: no successful request (%d errors, first: %v)", t.name, r.errs[j], r.first[j])
		}
		slices.Sort(ok)
		p50, p99, p999, mx := quantiles(ok)
		fmt.Fprintf(w, "%-12s achieved %.0f/s requests %d errors %d unsent %d latency p50 %s p99 %s p99.9 %s max %s\n",
			t.name, float64(len(ok))/dur.Seconds(), len(ok), r.errs[j], late, us(p50), us(p99), us(p999), us(mx))
		if late > 0 {
			fmt.Fprintf(w, "%-12s WARNING: %d requests were still unsent a second after the end (the target fell behind the rate): its figures and its pairs are flattering; lower -rate\n", t.name, late)
		}
	}
	for j := 1; j < len(r.targets); j++ {
		diffs := r.diffs(j)
		if len(diffs) == 0 {
			return fmt.Errorf("target %s: no request answered by both it and %s", r.targets[j].name, r.targets[0].name)
		}
		p50, p99, p999, mx := quantiles(diffs)
		fmt.Fprintf(w, "%-12s added to %s, per request pair (%d pairs): p50 %s p99 %s p99.9 %s max %s\n",
			r.targets[j].name, r.targets[0].name, len(diffs), us(p50), us(p99), us(p999), us(mx))
	}
	return nil
}

// diffs are target j's latencies minus the first target's, for every
// scheduled instant both answered, sorted.
func (r *pairedResult) diffs(j int) []time.Duration {
	var d []time.Duration
	for i, x := range r.lat[j] {
		if y := r.lat[0][i]; x >= 0 && y >= 0 {
			d = append(d, x-y)
		}
	}
	slices.Sort(d)
	return d
}
