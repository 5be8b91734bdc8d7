package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock/engine"
)

// TestRawProtocol drives the front end with hand-written requests.
func TestRawProtocol(t *testing.T) {
	es := newTestBackend(t, "es-1")
	p := startProxy(t, nil)
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("es-1", "z1", "a1", es.addr()))}, nil)
	host := testID + ".localhost"
	cases := []struct {
		name  string
		send  string
		codes []int // one per expected response, in order
		body  string
		close bool // the proxy closes after the answers
	}{
		{"pipelined", "GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\nGET /echo HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 3\r\n\r\nabc", []int{200, 200}, "abc", false},
		{"http/1.0", "GET /echo HTTP/1.0\r\nHost: " + host + "\r\nContent-Length: 2\r\n\r\nhi", []int{200}, "hi", true},
		{"http/1.0 keep-alive", "GET / HTTP/1.0\r\nHost: " + host + "\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\nHost: " + host + "\r\n\r\n", []int{200, 200}, "", true},
		{"expect continue", "POST /echo HTTP/1.1\r\nHost: " + host + "\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody", []int{200}, "body", false},
		{"chunked request", "POST /echo HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", []int{200}, "abcde", false},
		{"connection close", "GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n", []int{200}, "", true},
		{"malformed request line", "GARBAGE\r\n\r\n", []int{400}, "", true},
		{"bad version", "GET / HTTP/2.0\r\nHost: " + host + "\r\n\r\n", []int{505}, "", true},
		{"missing host", "GET / HTTP/1.1\r\n\r\n", []int{400}, "", true},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", []int{400}, "", true},
		{"smuggling: length and chunked", "POST /echo HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []int{400}, "", true},
		{"conflicting lengths", "POST /echo HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", []int{400}, "", true},
		{"unknown coding", "POST /echo HTTP/1.1\r\nHost: " + host + "\r\nTransfer-Encoding: gzip\r\n\r\n", []int{501}, "", true},
		{"header folding", "GET / HTTP/1.1\r\nHost: " + host + "\r\nX-A: 1\r\n  folded\r\n\r\n", []int{400}, "", true},
		{"space in header name", "GET / HTTP/1.1\r\nHost: " + host + "\r\nX A: 1\r\n\r\n", []int{400}, "", true},
		{"unknown id keeps the connection", "GET / HTTP/1.1\r\nHost: nope.localhost\r\n\r\nGET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n", []int{404, 200}, "", false},
		{"error with unread body closes", "POST / HTTP/1.1\r\nHost: nope.localhost\r\nContent-Length: 5\r\n\r\nhello", []int{404}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", p.HTTPAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(nc, tc.send); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(nc)
			var last string
			for i, want := range tc.codes {
				resp, err := http.ReadResponse(br, nil)
				if err == nil && resp.StatusCode == 100 {
					resp, err = http.ReadResponse(br, nil) // interim answer first
				}
				if err != nil {
					t.Fatalf("response %d: %v", i, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Fatalf("response %d: %d %q, want %d", i, resp.StatusCode, b, want)
				}
				last = string(b)
			}
			if tc.body != "" && last != tc.body {
				t.Fatalf("last body %q, want %q", last, tc.body)
			}
			if !tc.close {
				return
			}
			nc.SetReadDeadline(time.Now().Add(3 * time.Second))
			if n, err := br.Read(make([]byte, 1)); err == nil || n > 0 {
				t.Fatalf("connection still open after a response that closes it (%d, %v)", n, err)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	es := newTestBackend(t, "es-1")
	var mu sync.Mutex
	var buf bytes.Buffer
	p := startProxy(t, func(c *Config) { c.ID = "p-log"; c.AccessLog = lockedWriter{&mu, &buf} })
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("es-1", "z1", "a1", es.addr()))}, nil)
	c := newClient()
	get(t, c, p.HTTPAddr(), testID+".localhost", "/_search%22%0A\xff?q=1", nil)
	get(t, c, p.HTTPAddr(), "nope.localhost", "/", nil)
	mu.Lock()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	mu.Unlock()
	if len(lines) != 2 {
		t.Fatalf("want 2 access log lines, got %d: %q", len(lines), lines)
	}
	type line struct {
		Time       time.Time
		Msg, Proxy string
		Deployment string
		Method     string
		Path       string
		Status     int
		Upstream   string
		DurationUS *int64 `json:"duration_us"`
		Client     string
	}
	var l [2]line
	for i := range lines {
		if err := json.Unmarshal([]byte(lines[i]), &l[i]); err != nil {
			t.Fatalf("line %d is not JSON: %q: %v", i, lines[i], err)
		}
	}
	if l[0].Deployment != testID || l[0].Status != 200 || l[0].Upstream != es.addr() || l[0].Method != "GET" ||
		l[0].Proxy != "p-log" || l[0].DurationUS == nil || l[0].Time.IsZero() || !strings.HasPrefix(l[0].Path, "/_search") {
		t.Fatalf("first line %+v", l[0])
	}
	if l[1].Status != 404 || l[1].Deployment != "_unknown" {
		t.Fatalf("second line %+v, want a 404 of an unknown deployment", l[1])
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	release := make(chan struct{})
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		fmt.Fprint(w, "done")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go slow.Serve(ln)
	t.Cleanup(func() { slow.Close() })
	cfg := Config{HTTPAddr: "127.0.0.1:0", Logger: quietLogger(), ShutdownGrace: 10 * time.Second}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.setTable(map[string]engine.Route{testID: liveRoute(testID, 1, esBackend("s", "z1", "a1", ln.Addr().String()))}, nil)
	ctx, cancel := contextWithCancel()
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	res := make(chan answer, 1)
	go func() {
		a, err := get(t, newClient(), p.HTTPAddr(), testID+".localhost", "/", nil)
		if err != nil {
			a.body = err.Error()
		}
		res <- a
	}()
	waitFor(t, 5*time.Second, "the request in flight", func() bool { return p.backendsOutstanding() == 1 })
	cancel()
	time.Sleep(50 * time.Millisecond)
	close(release)
	a := <-res
	if a.code != 200 || a.body != "done" {
		t.Fatalf("request in flight at shutdown: %d %q, want it finished", a.code, a.body)
	}
	if !a.close {
		t.Fatalf("answer during shutdown without Connection: close: %v", a.header)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := net.DialTimeout("tcp", p.HTTPAddr(), time.Second); err == nil {
		t.Fatalf("listener still open after shutdown")
	}
}
