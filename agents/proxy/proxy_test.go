package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"paddock/engine"
)

const otherID = "fedcba9876543210fedcba9876543210"

func TestRoutingByHostAndHeader(t *testing.T) {
	es := newTestBackend(t, "es-1")
	kb := newTestBackend(t, "kb-1")
	p := startProxy(t, nil)
	kbBackend := engine.Backend{InstanceID: "kb-1", Kind: engine.KindKibana, Zone: "z1", Address: kb.addr()}
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("es-1", "z1", "a1", es.addr()), kbBackend)}, nil)
	c := newClient()
	cases := []struct {
		name, host string
		hdr        map[string]string
		backend    string
	}{
		{"host", testID + ".localhost", nil, "es-1"},
		{"host with port", testID + ".localhost:9200", nil, "es-1"},
		{"header", "127.0.0.1", map[string]string{HeaderCluster: testID}, "es-1"},
		{"kibana host", testID + ".kb.localhost", nil, "kb-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := get(t, c, p.HTTPAddr(), tc.host, "/", tc.hdr)
			if err != nil {
				t.Fatal(err)
			}
			if a.code != 200 || a.backend != tc.backend {
				t.Fatalf("got %d from %q (%s), want 200 from %s", a.code, a.backend, a.body, tc.backend)
			}
			var got struct{ Host, Xff, Proto string }
			if err := json.Unmarshal([]byte(a.body), &got); err != nil {
				t.Fatalf("body %q: %v", a.body, err)
			}
			if got.Host != tc.host || got.Xff != "127.0.0.1" || got.Proto != "http" {
				t.Fatalf("backend saw host %q xff %q proto %q; want host %q, xff 127.0.0.1, proto http", got.Host, got.Xff, got.Proto, tc.host)
			}
		})
	}
}

func TestForwardingBodies(t *testing.T) {
	es := newTestBackend(t, "es-1")
	p := startProxy(t, nil)
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("es-1", "z1", "a1", es.addr()))}, nil)
	c := newClient()
	host := testID + ".localhost"
	big := bytes.Repeat([]byte("paddock!"), 1<<17) // 1 MiB
	t.Run("post with length", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.HTTPAddr()+"/echo", bytes.NewReader(big))
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(b, big) || resp.Header.Get("X-Got-Length") != fmt.Sprint(len(big)) {
			t.Fatalf("echo: %d bytes back (want %d), backend saw length %s", len(b), len(big), resp.Header.Get("X-Got-Length"))
		}
	})
	t.Run("post chunked", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.HTTPAddr()+"/echo", io.MultiReader(bytes.NewReader(big[:1000]), bytes.NewReader(big[1000:5000])))
		req.Host = host
		req.ContentLength = -1
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(b, big[:5000]) {
			t.Fatalf("chunked echo returned %d bytes, want 5000", len(b))
		}
	})
	t.Run("chunked response", func(t *testing.T) {
		a, err := get(t, c, p.HTTPAddr(), host, "/stream", nil)
		if err != nil || a.body != "part-0;part-1;part-2;part-3;part-4;" {
			t.Fatalf("stream: %q, %v", a.body, err)
		}
	})
	t.Run("large response", func(t *testing.T) {
		a, err := get(t, c, p.HTTPAddr(), host, "/big", nil)
		if err != nil || len(a.body) != 3<<20 {
			t.Fatalf("big: %d bytes, %v", len(a.body), err)
		}
	})
	t.Run("head", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodHead, "http://"+p.HTTPAddr()+"/", nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "es-1" {
			t.Fatalf("HEAD: %d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("keep-alive reuse", func(t *testing.T) {
		before := es.active.Load()
		for i := 0; i < 50; i++ {
			if a, err := get(t, c, p.HTTPAddr(), host, "/", nil); err != nil || a.code != 200 {
				t.Fatalf("request %d: %v %d", i, err, a.code)
			}
		}
		if after := es.active.Load(); after > before+1 {
			t.Fatalf("50 sequential requests opened %d backend connections, want them reused", after-before)
		}
	})
}

func TestErrorAnswers(t *testing.T) {
	p := startProxy(t, func(c *Config) { c.UpstreamTimeout = 300 * time.Millisecond })
	healthy := newTestBackend(t, "ok")
	p.setTable(map[string]engine.Route{
		testID:  liveRoute(testID, 1, esBackend("dead-1", "z1", "a1", deadAddr(t)), esBackend("dead-2", "z2", "a2", deadAddr(t))),
		otherID: liveRoute(otherID, 1, esBackend("hole", "z1", "a1", blackhole(t))),
		"empty": liveRoute("empty", 1),
		"fine":  liveRoute("fine", 1, esBackend("ok", "z1", "a1", healthy.addr())),
	}, nil)
	c := newClient()
	cases := []struct {
		name, host string
		code       int
		typ        string
		reason     string
	}{
		{"unknown id", "abcdef.localhost", 404, "resource_not_found_exception", "deployment [abcdef] not found"},
		{"not our domain", "example.org", 404, "illegal_argument_exception", "example.org"},
		{"malformed host", "a_b.localhost", 400, "illegal_argument_exception", "a_b.localhost"},
		{"all backends down", testID + ".localhost", 503, "no_shard_available_action_exception", "no healthy elasticsearch node for deployment [" + testID + "]"},
		{"still down", testID + ".localhost", 503, "no_shard_available_action_exception", "dead-1"},
		{"no backends", "empty.localhost", 503, "no_shard_available_action_exception", "has no elasticsearch node yet"},
		{"backend never answers", otherID + ".localhost", 504, "timeout_exception", "did not answer within 300ms"},
		{"healthy deployment unaffected", "fine.localhost", 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			a, err := get(t, c, p.HTTPAddr(), tc.host, "/", nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("answer took %s: the proxy must not hang", d)
			}
			if a.code != tc.code {
				t.Fatalf("code %d (%s), want %d", a.code, a.body, tc.code)
			}
			if tc.typ == "" {
				return
			}
			var e struct {
				Error struct {
					Type, Reason string
					RootCause    []struct{ Type, Reason string } `json:"root_cause"`
				}
				Status int
			}
			if err := json.Unmarshal([]byte(a.body), &e); err != nil {
				t.Fatalf("error body is not Elasticsearch-shaped JSON: %q: %v", a.body, err)
			}
			if e.Error.Type != tc.typ || e.Status != tc.code || len(e.Error.RootCause) != 1 || !strings.Contains(e.Error.Reason, tc.reason) {
				t.Fatalf("error %+v, want type %s status %d reason containing %q", e, tc.typ, tc.code, tc.reason)
			}
		})
	}
}

func TestBackendComesBack(t *testing.T) {
	p := startProxy(t, nil)
	// Reserve an address, route to it while nothing listens, then listen.
	addr := deadAddr(t)
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("es-1", "z1", "a1", addr))}, nil)
	c := newClient()
	if a, _ := get(t, c, p.HTTPAddr(), testID+".localhost", "/", nil); a.code != 503 {
		t.Fatalf("with nothing listening: %d, want 503", a.code)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s (picked outside the ephemeral range, so nothing else should hold it): %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Backend", "back") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	waitFor(t, 10*time.Second, "the probe to bring the backend back", func() bool {
		a, _ := get(t, c, p.HTTPAddr(), testID+".localhost", "/", nil)
		return a.code == 200 && a.backend == "back"
	})
}

// closer accepts connections, reads the request and closes without an
// answer (a node dying mid-request).
func closer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 4096))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func TestRetryOnAnotherBackend(t *testing.T) {
	cases := []struct {
		name string
		bad  func(*testing.T) string
	}{
		{"cannot connect", deadAddr},
		{"connection closed before the answer", closer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			live := newTestBackend(t, "live")
			p := startProxy(t, func(c *Config) { c.ProbeInterval = time.Hour })
			p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1,
				esBackend("bad", "z1", "a1", tc.bad(t)), esBackend("live", "z2", "a2", live.addr()))}, nil)
			c := newClient()
			for i := 0; i < 20; i++ {
				a, err := get(t, c, p.HTTPAddr(), testID+".localhost", "/", nil)
				if err != nil || a.code != 200 || a.backend != "live" {
					t.Fatalf("request %d: %d from %q, %v; a GET that fails before any answer must be retried on another backend", i, a.code, a.backend, err)
				}
			}
			// A POST is not retried: the client hears about it.
			req, _ := http.NewRequest(http.MethodPost, "http://"+p.HTTPAddr()+"/echo", strings.NewReader("x"))
			req.Host = testID + ".localhost"
			seenBad := false
			for i := 0; i < 20 && !seenBad; i++ {
				req.Body = io.NopCloser(strings.NewReader("x"))
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				seenBad = resp.StatusCode >= 500
			}
			if tc.name == "connection closed before the answer" && !seenBad {
				t.Fatalf("POSTs to a backend that drops them never failed: were they sent twice?")
			}
		})
	}
}

func TestZonesDownAreAvoided(t *testing.T) {
	z1 := newTestBackend(t, "z1")
	z2 := newTestBackend(t, "z2")
	p := startProxy(t, nil)
	route := map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("z1", "zone-1", "a1", z1.addr()), esBackend("z2", "zone-2", "a2", z2.addr()))}
	p.setTable(route, map[string]AllocatorView{"a1": {Zone: "zone-1", Alive: true}, "a2": {Zone: "zone-2", Alive: false}})
	c := newClient()
	for i := 0; i < 30; i++ {
		if a, err := get(t, c, p.HTTPAddr(), testID+".localhost", "/", nil); err != nil || a.backend != "z1" {
			t.Fatalf("request %d went to %q (%v) while zone-2 is down", i, a.backend, err)
		}
	}
	// The only zone left up is down too: the proxy falls back rather
	// than refuse traffic it can serve.
	p.setTable(route, map[string]AllocatorView{"a1": {Zone: "zone-1"}, "a2": {Zone: "zone-2"}})
	if a, err := get(t, c, p.HTTPAddr(), testID+".localhost", "/", nil); err != nil || a.code != 200 {
		t.Fatalf("every zone down: %d %v, want the request served by a backend that answers", a.code, err)
	}
}

func TestSlowAndOversizedClients(t *testing.T) {
	es := newTestBackend(t, "es-1")
	p := startProxy(t, func(c *Config) {
		c.ReadHeaderTimeout = 300 * time.Millisecond
		c.MaxHeaderBytes = 4 << 10
	})
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("es-1", "z1", "a1", es.addr()))}, nil)
	t.Run("oversized header", func(t *testing.T) {
		a, err := get(t, newClient(), p.HTTPAddr(), testID+".localhost", "/", map[string]string{"X-Big": strings.Repeat("x", 16<<10)})
		if err != nil || a.code != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("oversized header: %d %v, want 431", a.code, err)
		}
	})
	t.Run("slow second request", func(t *testing.T) {
		nc, err := net.Dial("tcp", p.HTTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		br := bufio.NewReader(nc)
		fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s.localhost\r\n\r\n", testID)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("first request: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s.loc", testID)
		start := time.Now()
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, br)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("a keep-alive client stalling mid-head was cut after %s, want the header timeout", d)
		}
	})
	t.Run("slowloris", func(t *testing.T) {
		var conns []net.Conn
		for i := 0; i < 20; i++ {
			nc, err := net.Dial("tcp", p.HTTPAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s.localhost\r\nX-Slow: ", testID)
			conns = append(conns, nc)
		}
		// Others are served meanwhile.
		if a, err := get(t, newClient(), p.HTTPAddr(), testID+".localhost", "/", nil); err != nil || a.code != 200 {
			t.Fatalf("served beside slow clients: %d %v", a.code, err)
		}
		for _, nc := range conns {
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := bufio.NewReader(nc).ReadByte()
			if err == nil {
				continue // net/http may answer 408 before closing
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("a client that never finishes its header was not cut off")
			}
		}
	})
}

func TestPauseSwitchResume(t *testing.T) {
	oldB := newTestBackend(t, "old")
	newB := newTestBackend(t, "new")
	p := startProxy(t, nil)
	routes := func(state string, gen int64, b *testBackend) map[string]engine.Route {
		r := liveRoute(testID, gen, esBackend(b.name, "z1", "a1", b.addr()))
		r.State = state
		return map[string]engine.Route{testID: r}
	}
	p.setTable(routes(engine.RouteLive, 1, oldB), nil)
	l := startLoad(t, 8, p.HTTPAddr, testID+".localhost")
	waitFor(t, 10*time.Second, "traffic on the old backend", func() bool { return l.count("old") > 50 })
	p.setTable(routes(engine.RoutePaused, 1, oldB), nil)
	waitFor(t, 10*time.Second, "requests held on the paused route", func() bool {
		return testutilGauge(p.met.held) > 0
	})
	time.Sleep(100 * time.Millisecond) // hold a while: held requests must wait, not fail
	p.setTable(routes(engine.RoutePaused, 2, newB), nil)
	p.setTable(routes(engine.RouteLive, 2, newB), nil)
	hitsOld := oldB.hits.Load()
	waitFor(t, 10*time.Second, "traffic on the new backend", func() bool { return l.count("new") > 50 })
	l.finish(t)
	if got := oldB.hits.Load(); got != hitsOld {
		t.Fatalf("the old backend got %d requests after the switch", got-hitsOld)
	}
	waitFor(t, 10*time.Second, "connections to the old backend drained", func() bool { return oldB.active.Load() == 0 })
}

func TestPauseTimeout(t *testing.T) {
	es := newTestBackend(t, "es-1")
	p := startProxy(t, func(c *Config) { c.PauseTimeout = 200 * time.Millisecond })
	r := liveRoute(testID, 1, esBackend("es-1", "z1", "a1", es.addr()))
	r.State = engine.RoutePaused
	p.setTable(map[string]engine.Route{testID: r}, nil)
	a, err := get(t, newClient(), p.HTTPAddr(), testID+".localhost", "/", nil)
	if err != nil || a.code != 503 || !strings.Contains(a.body, "paused longer than 200ms") {
		t.Fatalf("paused past the bound: %d %q %v, want 503 naming the bound", a.code, a.body, err)
	}
}

func TestIdleBackendConnectionsExpire(t *testing.T) {
	es := newTestBackend(t, "es-1")
	p := startProxy(t, func(c *Config) { c.BackendIdleTimeout = 200 * time.Millisecond })
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("es-1", "z1", "a1", es.addr()))}, nil)
	if a, err := get(t, newClient(), p.HTTPAddr(), testID+".localhost", "/", nil); err != nil || a.code != 200 {
		t.Fatalf("%d %v", a.code, err)
	}
	waitFor(t, 10*time.Second, "the idle backend connection closed", func() bool { return es.active.Load() == 0 })
}

// A response or an upload that lasts longer than UpstreamTimeout is
// fine as long as bytes keep flowing: the timeout bounds each wait.
func TestLongStreamsOutliveUpstreamTimeout(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "got %d", n)
			return
		}
		for i := 0; i < 8; i++ {
			fmt.Fprintf(w, "tick-%d;", i)
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	}))
	t.Cleanup(slow.Close)
	p := startProxy(t, func(c *Config) { c.UpstreamTimeout = 300 * time.Millisecond })
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("s", "z1", "a1", slow.Listener.Addr().String()))}, nil)
	c := newClient()
	a, err := get(t, c, p.HTTPAddr(), testID+".localhost", "/", nil)
	if err != nil || a.code != 200 || a.body != "tick-0;tick-1;tick-2;tick-3;tick-4;tick-5;tick-6;tick-7;" {
		t.Fatalf("slow stream: %d %q %v", a.code, a.body, err)
	}
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 8; i++ {
			pw.Write([]byte("0123456789"))
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.HTTPAddr()+"/", pr)
	req.Host = testID + ".localhost"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "got 80" {
		t.Fatalf("slow upload: %d %q", resp.StatusCode, b)
	}
}
