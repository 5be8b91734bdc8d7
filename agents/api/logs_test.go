package api

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/service/servicetest"
)

// fakeLogs stands in for the allocators' log endpoints.
type fakeLogs struct {
	mu           sync.Mutex
	tunnel, inst string
	opts         engine.LogOptions
}

func (f *fakeLogs) Logs(_ context.Context, tunnel, instance string, o engine.LogOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tunnel, f.inst, f.opts = tunnel, instance, o
	return io.NopCloser(strings.NewReader("line one of " + instance + "\nline two\n")), nil
}

// TestLogsEndpoint: GET /deployments/{id}/logs streams the log of the
// instance asked for (by id prefix, or the first Elasticsearch instance),
// from the allocator's tunnel address in the instance's status, with the
// query's options; bad queries are 400 naming the field, an unknown
// instance 404 listing them, and an API without the allocators'
// certificate says 503 what it lacks.
func TestLogsEndpoint(t *testing.T) {
	f := newFixture(t, "zone-1", "zone-2")
	a1 := servicetest.AddAllocator(t, f.p, "a1", "zone-1", 4096)
	servicetest.AddAllocator(t, f.p, "a2", "zone-2", 4096)
	var cr service.CreateResult
	f.want(f.do(admin, "POST", "/deployments", createBody("logs", 1024, 2)), 201).decode(t, &cr)
	id := cr.Deployment.ID
	es1 := engine.PlacedInstance{ID: "aaaa1111" + strings.Repeat("0", 24), Kind: engine.KindElasticsearch, Allocator: "a1", Zone: "zone-1", SizeMB: 1024}
	es2 := engine.PlacedInstance{ID: "bbbb2222" + strings.Repeat("0", 24), Kind: engine.KindElasticsearch, Allocator: "a2", Zone: "zone-2", SizeMB: 1024}
	f.finishPlan(t, id, engine.PlanSuccess, []engine.PlacedInstance{es2, es1})
	if err := a1.Store.Create(f.ctx, engine.StatusPath("a1", es1.ID), engine.InstanceStatus{ID: es1.ID, TunnelAddr: "127.0.0.1:9400", UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	// Without the allocators' certificate: 503 saying so.
	eb := f.want(f.do(service.RolePlatformViewer, "GET", "/deployments/"+id+"/logs", nil), 503).errBody(t)
	if eb.Errors[0].Code != "logs.unavailable" {
		t.Fatalf("logs without a log client: %+v", eb)
	}

	fl := &fakeLogs{}
	svc := service.New(f.p.Admin, service.WithLogger(slog.New(slog.DiscardHandler)), service.WithNodeLogs(fl))
	h, err := NewHandler(svc, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f.url = srv.URL

	a := f.do(service.RolePlatformViewer, "GET", "/deployments/"+id+"/logs?tail=50&since=10m&follow=true", nil)
	if a.status != 200 {
		t.Fatalf("logs: %d %s", a.status, a.body)
	}
	if got := string(a.body); got != "line one of "+es1.ID+"\nline two\n" || a.hdr.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("default instance log: %q (%s)", got, a.hdr.Get("Content-Type"))
	}
	fl.mu.Lock()
	if fl.tunnel != "127.0.0.1:9400" || fl.inst != es1.ID || fl.opts != (engine.LogOptions{Tail: 50, Since: 10 * time.Minute, Follow: true}) {
		t.Fatalf("asked the allocator for %q %q %+v", fl.tunnel, fl.inst, fl.opts)
	}
	fl.mu.Unlock()
	if a := f.do(service.RolePlatformViewer, "GET", "/deployments/"+id+"/logs?instance=bbbb", nil); a.status != 200 {
		t.Fatalf("logs by prefix: %d %s", a.status, a.body)
	}
	fl.mu.Lock()
	if fl.inst != es2.ID {
		t.Fatalf("instance by prefix: asked for %q", fl.inst)
	}
	fl.mu.Unlock()

	for _, c := range []struct {
		query, field string
		status       int
	}{{"?tail=many", "tail", 400}, {"?since=yesterday", "since", 400}, {"?tail=0&since=-5m", "since", 400}} {
		eb := f.want(f.do(admin, "GET", "/deployments/"+id+"/logs"+c.query, nil), c.status).errBody(t)
		if len(eb.Errors[0].Fields) == 0 || eb.Errors[0].Fields[0].Field != c.field {
			t.Fatalf("%s: %+v", c.query, eb)
		}
	}
	eb = f.want(f.do(admin, "GET", "/deployments/"+id+"/logs?instance=cccc", nil), 404).errBody(t)
	if !strings.Contains(eb.Errors[0].Message, es1.ID) {
		t.Fatalf("unknown instance: %+v", eb)
	}
	f.want(f.do("", "GET", "/deployments/"+id+"/logs", nil), 401)
}
