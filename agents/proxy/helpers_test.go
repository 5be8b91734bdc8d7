package proxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"paddock/engine/freeport"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/testenv"
)

// testBackend is a real HTTP server on loopback that counts what it
// serves and names itself in each answer.
type testBackend struct {
	name   string
	srv    *httptest.Server
	hits   atomic.Int64
	active atomic.Int64 // open connections
}

func newTestBackend(t *testing.T, name string) *testBackend {
	t.Helper()
	tb := &testBackend{name: name}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		tb.hits.Add(1)
		w.Header().Set("X-Backend", name)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"name":%q,"host":%q,"xff":%q,"proto":%q}`, name, r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		tb.hits.Add(1)
		w.Header().Set("X-Backend", name)
		b, _ := io.ReadAll(r.Body) // Go's server is not full duplex: read first
		w.Header().Set("X-Got-Length", fmt.Sprint(r.ContentLength))
		w.Write(b)
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		tb.hits.Add(1)
		w.Header().Set("X-Backend", name)
		for i := 0; i < 5; i++ {
			fmt.Fprintf(w, "part-%d;", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		tb.hits.Add(1)
		w.Header().Set("Content-Length", fmt.Sprint(3<<20))
		chunk := []byte(strings.Repeat("0123456789abcdef", 4096))
		for i := 0; i < (3<<20)/len(chunk); i++ {
			w.Write(chunk)
		}
	})
	tb.srv = httptest.NewUnstartedServer(mux)
	tb.srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			tb.active.Add(1)
		case http.StateClosed, http.StateHijacked:
			tb.active.Add(-1)
		}
	}
	tb.srv.Start()
	t.Cleanup(tb.close)
	return tb
}

func (tb *testBackend) addr() string { return tb.srv.Listener.Addr().String() }

func (tb *testBackend) close() {
	tb.srv.CloseClientConnections()
	tb.srv.Close()
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	p, err := freeport.One("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

// blackhole accepts connections and never answers.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startProxy runs a proxy on a free port until the test ends.
func startProxy(t *testing.T, mut func(*Config)) *Proxy {
	t.Helper()
	cfg := Config{HTTPAddr: "127.0.0.1:0", Logger: quietLogger(), ProbeInterval: 50 * time.Millisecond, ShutdownGrace: 2 * time.Second}
	if mut != nil {
		mut(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("proxy Serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("proxy did not stop within 15s of its context ending")
		}
	})
	return p
}

// setTable installs routes and allocators as if read from ZooKeeper.
func (p *Proxy) setTable(routes map[string]engine.Route, allocs map[string]AllocatorView) {
	if allocs == nil {
		allocs = map[string]AllocatorView{}
	}
	p.mu.Lock()
	p.snap = Snapshot{Routes: routes, Allocators: allocs, Source: "zookeeper"}
	p.installLocked()
	p.mu.Unlock()
	p.requestSave()
}

func esBackend(id, zone, alloc, addr string) engine.Backend {
	return engine.Backend{InstanceID: id, Kind: engine.KindElasticsearch, Zone: zone, Allocator: alloc, Address: addr}
}

func liveRoute(id string, gen int64, bes ...engine.Backend) engine.Route {
	return engine.Route{DeploymentID: id, State: engine.RouteLive, Backends: bes, Generation: gen}
}

// client is an HTTP client with its own keep-alive pool.
func newClient() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
}

type answer struct {
	code    int
	body    string
	backend string
	header  http.Header
	close   bool // the answer said Connection: close
}

func get(t testing.TB, c *http.Client, proxyAddr, host, path string, hdr map[string]string) (answer, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+proxyAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{code: resp.StatusCode, body: string(b), backend: resp.Header.Get("X-Backend"), header: resp.Header, close: resp.Close}, nil
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, d, what, cond)
}

// load sends GETs from n clients until stop is closed and counts results.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string
	byBackend  map[string]int64
	wg         sync.WaitGroup
	stop       chan struct{}
}

func startLoad(t *testing.T, n int, proxyAddr func() string, host string) *load {
	l := &load{stop: make(chan struct{}), byBackend: map[string]int64{}}
	for i := 0; i < n; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := newClient()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				a, err := get(t, c, proxyAddr(), host, "/", nil)
				l.mu.Lock()
				if err != nil || a.code != http.StatusOK {
					l.failed.Add(1)
					if len(l.failures) < 10 {
						l.failures = append(l.failures, fmt.Sprintf("%d %v %s", a.code, err, a.body))
					}
				} else {
					l.ok.Add(1)
					l.byBackend[a.backend]++
				}
				l.mu.Unlock()
				select { // pace: about one request per 2 ms per client
				case <-l.stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
	}
	return l
}

func (l *load) finish(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	if l.failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed; first: %v", l.failed.Load(), l.failed.Load()+l.ok.Load(), l.failures)
	}
	if l.ok.Load() == 0 {
		t.Fatalf("no request succeeded")
	}
}

func (l *load) count(backend string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byBackend[backend]
}

func contextWithCancel() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func (p *Proxy) backendsOutstanding() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int64
	for _, b := range p.backends {
		n += b.outstanding.Load()
	}
	return n
}
