//go:build linux

package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"paddock/engine"
)

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// TestLoopHandoffs: the event loop serves the common requests itself and
// hands the connection to the goroutine server exactly for the cases it
// leaves to it, which are then served right.
func TestLoopHandoffs(t *testing.T) {
	es := newTestBackend(t, "es-1")
	p := startProxy(t, func(c *Config) { c.PauseTimeout = 100 * time.Millisecond; c.MaxHeaderBytes = 64 << 10 })
	paused := liveRoute("paused-1", 1, esBackend("es-1", "z1", "a1", es.addr()))
	paused.State = engine.RoutePaused
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("es-1", "z1", "a1", es.addr())), "paused-1": paused}, nil)
	host := testID + ".localhost"
	get := "GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
	cases := []struct {
		name   string
		send   string
		codes  []int
		reason string // "" for none
	}{
		{"get", get, []int{200}, ""},
		{"post with length", "POST /echo HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 5\r\n\r\nhello", []int{200}, ""},
		{"pipelined", get + get + get, []int{200, 200, 200}, ""},
		{"unknown deployment", "GET / HTTP/1.1\r\nHost: nope.localhost\r\n\r\n" + get, []int{404, 200}, ""},
		{"h2c upgrade is ignored", "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n", []int{200}, ""},
		{"websocket upgrade", "GET / HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", []int{501}, ""},
		{"http/1.0", "GET / HTTP/1.0\r\nHost: " + host + "\r\n\r\n", []int{200}, "http/1.0"},
		{"expect", "POST /echo HTTP/1.1\r\nHost: " + host + "\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", []int{200}, "expect"},
		{"chunked body", "POST /echo HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", []int{200}, "chunked-body"},
		{"paused route", "GET / HTTP/1.1\r\nHost: paused-1.localhost\r\n\r\n", []int{503}, "paused"},
		{"head larger than the loop's buffer", "GET / HTTP/1.1\r\nHost: " + host + "\r\n" + strings.Repeat("X-Big: "+strings.Repeat("b", 7<<10)+"\r\n", 3) + "\r\n", []int{200}, "large-head"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]float64{}
			for _, r := range []string{"http/1.0", "expect", "chunked-body", "paused", "large-head"} {
				before[r] = counterValue(p.met.handoffs.WithLabelValues(r))
			}
			nc, err := net.Dial("tcp", p.HTTPAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			go io.WriteString(nc, tc.send)
			br := bufio.NewReader(nc)
			for i, want := range tc.codes {
				resp, err := http.ReadResponse(br, nil)
				if err == nil && resp.StatusCode == 100 {
					resp, err = http.ReadResponse(br, nil)
				}
				if err != nil {
					t.Fatalf("response %d: %v", i, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Fatalf("response %d: %d, want %d", i, resp.StatusCode, want)
				}
			}
			for r, b := range before {
				got := counterValue(p.met.handoffs.WithLabelValues(r)) - b
				want := 0.0
				if r == tc.reason {
					want = 1
				}
				if got != want {
					t.Errorf("handoffs for %s: %v, want %v", r, got, want)
				}
			}
		})
	}
}

// TestLoopServesTunnelBackends: requests to backends behind an
// allocator's node tunnel (mutual TLS) stay on the loop, on kept-alive
// connections.
func TestLoopServesTunnelBackends(t *testing.T) {
	pki := newTestPKI(t)
	nt := startNodeTunnel(t, pki.loader("allocator", "a1"), map[string]string{"i-one": startNode(t, "i-one", "dep-one")})
	p := startProxy(t, func(c *Config) { c.BackendLoader = pki.loader("proxy", "p1") })
	p.setTable(map[string]engine.Route{"dep-one": liveRoute("dep-one", 1, tunnelBackend("i-one", nt.addr))}, nil)
	c := newClient()
	for i := range 20 {
		if code, cluster, err := clusterOf(t, c, p, "dep-one"); err != nil || code != 200 || cluster != "dep-one" {
			t.Fatalf("request %d through the tunnel: %d %q %v", i, code, cluster, err)
		}
	}
	if n := nt.admitted("proxy/p1"); n != 1 {
		t.Errorf("tunnel admitted %d connections for 20 sequential requests, want 1 (kept alive)", n)
	}
	for _, r := range []string{"http/1.0", "expect", "chunked-body", "paused", "large-head"} {
		if v := counterValue(p.met.handoffs.WithLabelValues(r)); v != 0 {
			t.Errorf("%v connections handed over (%s), want the loop to serve them", v, r)
		}
	}
}

// TestTwoLoopsUnderLoad: two loops, concurrent keep-alive clients and a
// pipelining one whose answers must come back in order.
func TestTwoLoopsUnderLoad(t *testing.T) {
	es := newTestBackend(t, "es-1")
	p := startProxy(t, func(c *Config) { c.EventLoops = 2 })
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("es-1", "z1", "a1", es.addr()))}, nil)
	host := testID + ".localhost"
	l := startLoad(t, 16, p.HTTPAddr, host)
	nc, err := net.Dial("tcp", p.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	var reqs strings.Builder
	for i := range 50 {
		body := fmt.Sprintf("request-%02d", i)
		fmt.Fprintf(&reqs, "POST /echo HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s", host, len(body), body)
	}
	go io.WriteString(nc, reqs.String())
	br := bufio.NewReader(nc)
	for i := range 50 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("pipelined response %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("request-%02d", i); string(b) != want {
			t.Fatalf("pipelined response %d: %q, want %q (out of order?)", i, b, want)
		}
	}
	waitFor(t, 10*time.Second, "load served", func() bool { return l.ok.Load() > 200 })
	l.finish(t)
}

// TestSlowReaderOfALargeResponse: a client that reads a large answer
// slowly gets all of it (the loop stops reading the backend while the
// client's bytes wait, and resumes as the client reads).
func TestSlowReaderOfALargeResponse(t *testing.T) {
	es := newTestBackend(t, "es-1")
	p := startProxy(t, nil)
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("es-1", "z1", "a1", es.addr()))}, nil)
	nc, err := net.Dial("tcp", p.HTTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.(*net.TCPConn).SetReadBuffer(16 << 10)
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(nc, "GET /big HTTP/1.1\r\nHost: %s.localhost\r\n\r\nGET / HTTP/1.1\r\nHost: %s.localhost\r\n\r\n", testID, testID)
	br := bufio.NewReaderSize(nc, 4<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	total := 0
	for {
		n, err := resp.Body.Read(buf)
		total += n
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", total, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if total != 3<<20 {
		t.Fatalf("read %d bytes, want %d", total, 3<<20)
	}
	next, err := http.ReadResponse(br, nil)
	if err != nil || next.StatusCode != 200 {
		t.Fatalf("request after the large answer: %v", err)
	}
}

// TestLoopsShareABurstOfConnections: connections opened all at once (a
// client filling its pool) are spread over the loops, not all served by
// the loop that woke first, and the per-loop gauge follows them.
func TestLoopsShareABurstOfConnections(t *testing.T) {
	es := newTestBackend(t, "es-1")
	p := startProxy(t, func(c *Config) { c.EventLoops = 2 })
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("es-1", "z1", "a1", es.addr()))}, nil)
	const n = 32
	var conns []net.Conn
	for range n {
		nc, err := net.Dial("tcp", p.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		conns = append(conns, nc)
	}
	// Every connection served one request (so each has been accepted).
	for i, nc := range conns {
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s.localhost\r\n\r\n", testID)
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d: %v", i, err)
		}
		resp.Body.Close()
	}
	gauge := func(loop string) float64 {
		var m dto.Metric
		if err := p.met.loopConns.WithLabelValues(loop).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetGauge().GetValue()
	}
	a, b := gauge("0"), gauge("1")
	if a+b != n || a < n/2-2 || b < n/2-2 {
		t.Fatalf("loops serve %v and %v of %d connections opened at once, want about half each", a, b, n)
	}
	for _, nc := range conns {
		nc.Close()
	}
	waitFor(t, 10*time.Second, "the loops' gauges back to 0", func() bool { return gauge("0") == 0 && gauge("1") == 0 })
}
