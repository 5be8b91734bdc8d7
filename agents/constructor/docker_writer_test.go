package constructor

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paddock/agents/proxy"
	"paddock/engine"
	"paddock/engine/testenv"
	"paddock/stunnel"
)

// startTestProxy runs a real proxy on the harness's ZooKeeper until the
// test ends and returns its HTTP address. With a loader it reaches the
// nodes through the allocators' node tunnels, else directly.
func startTestProxy(t *testing.T, h *harness, loader *stunnel.Loader) string {
	t.Helper()
	cfg := proxy.Config{ID: "p1", HTTPAddr: "127.0.0.1:0", BackendLoader: loader, Store: h.p.Connect(t, engine.RoleProxy),
		Logger: quiet(), Registry: prometheus.NewRegistry()}
	px, err := proxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = px.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return px.HTTPAddr()
}

// proxyWriter writes numbered documents through a real proxy, as a
// client of the deployment would, and keeps the acknowledged ones with
// when each was acknowledged.
type proxyWriter struct {
	addr, dep, user string
	client          *http.Client

	mu    sync.Mutex
	acked []string
	at    []time.Time
	fails atomic.Int64
}

func newProxyWriter(addr, dep, user string) *proxyWriter {
	return &proxyWriter{addr: addr, dep: dep, user: user, client: &http.Client{Timeout: 40 * time.Second}}
}

// start runs the writer until the test ends or the returned stop is
// called (which waits for the write in flight).
func (w *proxyWriter) start(t *testing.T) (stop func()) { return runBackground(t, w.run) }

func (w *proxyWriter) run(ctx context.Context) {
	for n := 0; ctx.Err() == nil; {
		doc := fmt.Sprintf("doc-%d", n)
		req, _ := http.NewRequestWithContext(ctx, "PUT", "http://"+w.addr+"/logs/_doc/"+doc, strings.NewReader(fmt.Sprintf(`{"n":%d}`, n)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Found-Cluster", w.dep)
		name, pass, _ := strings.Cut(w.user, ":")
		req.SetBasicAuth(name, pass)
		resp, err := w.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode >= 300 {
			w.fails.Add(1)
			testenv.Pause(ctx, 20*time.Millisecond)
			continue
		}
		w.mu.Lock()
		w.acked, w.at = append(w.acked, doc), append(w.at, time.Now())
		w.mu.Unlock()
		n++
	}
}

func (w *proxyWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// ackedDocs is a copy of the acknowledged documents' ids.
func (w *proxyWriter) ackedDocs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked)
}

// firstAckAfter is when the first write acknowledged after t was.
func (w *proxyWriter) firstAckAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := sort.Search(len(w.at), func(i int) bool { return w.at[i].After(t) })
	if i == len(w.at) {
		return time.Time{}, false
	}
	return w.at[i], true
}
