package client_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"paddock/agents/api"
	"paddock/agents/api/client"
	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/service/servicetest"
	"paddock/engine/zktest"
)

var env *zktest.Env

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestMain(m *testing.M) { os.Exit(zktest.Main(m, 1, &env)) }

func TestOutcome(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name string
		plan engine.Plan
		ok   bool
	}{
		{"last step success", engine.Plan{Status: engine.PlanSuccess, Steps: []engine.PlanStep{{Status: engine.PlanError}, {Status: engine.PlanSuccess}}}, true},
		{"last step error despite plan status", engine.Plan{Status: engine.PlanSuccess, Steps: []engine.PlanStep{{Status: engine.PlanSuccess}, {Status: engine.PlanError, Message: "boom"}}}, false},
		{"rolled back", engine.Plan{Status: engine.PlanRolledBack, Steps: []engine.PlanStep{{Status: engine.PlanError, Ended: &now}}}, false},
		{"no steps, success", engine.Plan{Status: engine.PlanSuccess}, true},
		{"no steps, cancelled", engine.Plan{Status: engine.PlanCancelled}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := client.Outcome(tc.plan)
			if (err == nil) != tc.ok {
				t.Fatalf("Outcome = %v, want ok=%v", err, tc.ok)
			}
			var pf *client.PlanFailedError
			if !tc.ok && !errors.As(err, &pf) {
				t.Fatalf("not a PlanFailedError: %v", err)
			}
		})
	}
}

// TestClientAgainstAPI: the client against the real API over real
// ZooKeeper: typed answers with their raw JSON, typed errors, and Track
// following plans to success and to failure.
func TestClientAgainstAPI(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	servicetest.AddAllocator(t, p, "a1", "zone-1", 4096)
	log := slog.New(slog.DiscardHandler)
	svc := service.New(p.Admin, service.WithLogger(log))
	h, err := api.NewHandler(svc, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, key, err := svc.CreateAPIKey(ctx, "t", service.RolePlatformAdmin)
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(srv.URL, key)
	// afterRead runs once after the next activity read (Track's poll):
	// the test's stand-in for the constructor acts on what Track saw.
	var afterRead atomic.Pointer[func()]
	setAfterRead := func(f func()) { afterRead.Store(&f) }
	c.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil && strings.HasSuffix(r.URL.Path, "/activity") {
			if f := afterRead.Swap(nil); f != nil {
				go (*f)()
			}
		}
		return resp, err
	})}

	res, raw, err := c.CreateDeployment(ctx, api.CreateDeploymentBody{Name: "c", Spec: engine.DeploymentSpec{Elasticsearch: engine.Topology{SizeMB: 1024}}})
	if err != nil || !res.Created || !strings.Contains(string(raw), res.Deployment.ID) {
		t.Fatalf("create: %+v %s %v", res, raw, err)
	}
	id := res.Deployment.ID
	_, _, err = c.GetDeployment(ctx, engine.NewID())
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code() != "deployment.not_found" || client.StatusOf(err) != 404 {
		t.Fatalf("404: %#v", err)
	}
	bad := client.New(srv.URL, "nope")
	if _, _, err := bad.ListDeployments(ctx, false); client.StatusOf(err) != 401 {
		t.Fatalf("bad key: %v", err)
	}
	if _, _, err := client.New("http://127.0.0.1:1", key).ListDeployments(ctx, false); err == nil || !strings.Contains(err.Error(), "cannot reach the API") {
		t.Fatalf("unreachable: %v", err)
	}

	// Track to success: the "constructor" finishes the plan once Track
	// has read it pending.
	var steps []string
	setAfterRead(func() {
		servicetest.FinishPlan(t, p, id, engine.PlanSuccess, []engine.PlacedInstance{{ID: "i1", Kind: engine.KindElasticsearch, Allocator: "a1", Zone: "zone-1", SizeMB: 1024, Version: "8.18.0"}})
	})
	plan, err := c.Track(ctx, id, res.PlanID, 50*time.Millisecond, func(st engine.PlanStep) { steps = append(steps, st.Name+" "+st.Status) })
	if err != nil || plan.ID != res.PlanID || len(steps) == 0 || steps[len(steps)-1] != "done success" {
		t.Fatalf("track success: %+v %v %v", plan, steps, err)
	}
	// ChangeSpec writes the changed spec over the version it read.
	cr, _, err := c.ChangeSpec(ctx, id, func(s *engine.DeploymentSpec) { s.Elasticsearch.SizeMB = 2048 })
	if err != nil || cr.PlanID == "" {
		t.Fatalf("change spec: %+v %v", cr, err)
	}
	if d, _, err := c.GetDeployment(ctx, id); err != nil || d.DesiredSpec().Elasticsearch.SizeMB != 2048 {
		t.Fatalf("after change spec: %+v %v", d.DesiredSpec(), err)
	}
	servicetest.FinishPlan(t, p, id, engine.PlanSuccess, []engine.PlacedInstance{{ID: "i1", Kind: engine.KindElasticsearch, Allocator: "a1", Zone: "zone-1", SizeMB: 2048, Version: "8.18.0"}})
	// Track to failure: a non-nil PlanFailedError.
	pr, _, err := c.RestartDeployment(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	setAfterRead(func() { servicetest.FinishPlan(t, p, id, engine.PlanError, nil) })
	_, err = c.Track(ctx, id, pr.PlanID, 50*time.Millisecond, nil)
	var pf *client.PlanFailedError
	if !errors.As(err, &pf) || pf.Status != engine.PlanError {
		t.Fatalf("track failure: %v", err)
	}
	// Tracking ends with ctx.
	pr, _, err = c.RestartDeployment(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	tctx, tcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer tcancel()
	if _, err := c.Track(tctx, id, pr.PlanID, 50*time.Millisecond, nil); err == nil || !strings.Contains(err.Error(), "stopped tracking") {
		t.Fatalf("track with ended ctx: %v", err)
	}
}
