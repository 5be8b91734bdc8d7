package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/service/servicetest"
	"paddock/engine/testenv"
	"paddock/engine/zktest"
)

// fixture is a live API over a fresh platform: real ZooKeeper, the real
// service layer, an HTTP server on a free port, and one key per role.
type fixture struct {
	t     testing.TB
	p     *zktest.Platform
	svc   *service.Service
	url   string
	keys  map[string]string // role → key
	reg   *prometheus.Registry
	ctx   context.Context
	close func()
}

func newFixture(t *testing.T, zones ...string) *fixture { return newFixtureTB(t, zones...) }

func newFixtureTB(t testing.TB, zones ...string) *fixture {
	t.Helper()
	p := env.Fresh(t, zones...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	log := slog.New(slog.DiscardHandler)
	// As Run does: reads served from the watch cache where it may.
	cache := service.NewCache(p.Admin)
	go func() { _ = cache.Run(ctx) }()
	if err := cache.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	svc := service.New(p.Admin, service.WithLogger(log), service.WithCache(cache))
	reg := prometheus.NewRegistry()
	h, err := NewHandler(svc, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f := &fixture{t: t, p: p, svc: svc, url: srv.URL, keys: map[string]string{}, reg: reg, ctx: ctx}
	for _, role := range service.APIRoles {
		_, key, err := svc.CreateAPIKey(ctx, "k-"+role, role)
		if err != nil {
			t.Fatal(err)
		}
		f.keys[role] = key
	}
	return f
}

type answer struct {
	status int
	body   []byte
	hdr    http.Header
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

func (a answer) decodeTB(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

func (a answer) errBody(t testing.TB) ErrorBody {
	t.Helper()
	var eb ErrorBody
	if err := json.Unmarshal(a.body, &eb); err != nil || len(eb.Errors) == 0 || eb.Errors[0].Code == "" || eb.Errors[0].Message == "" {
		t.Fatalf("status %d: not an error body: %s (%v)", a.status, a.body, err)
	}
	return eb
}

// do sends a request with the key of role ("" for none).
// finishPlan finishes the deployment's pending plan as the constructor
// would (another ZooKeeper session) and waits until this API's watch
// cache shows it: the API serves reads from its cache, which applies
// other sessions' writes a moment after they happen.
func (f *fixture) finishPlan(t *testing.T, id, status string, ins []engine.PlacedInstance) {
	t.Helper()
	servicetest.FinishPlan(t, f.p, id, status, ins)
	testenv.Eventually(t, 10*time.Second, "the API's cache to show the finished plan", func() bool {
		a := f.do(admin, "GET", "/deployments/"+id, nil)
		if a.status == http.StatusNotFound {
			return true
		}
		var dv service.DeploymentView
		if a.status != http.StatusOK || json.Unmarshal(a.body, &dv) != nil {
			return false
		}
		return dv.PendingPlan == nil && len(dv.Instances) == len(ins)
	})
}

func (f *fixture) do(role, method, path string, body any, hdr ...string) answer {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		bs, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(bs)
	}
	req, err := http.NewRequestWithContext(f.ctx, method, f.url+Prefix+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if role != "" {
		req.Header.Set("Authorization", "ApiKey "+f.keys[role])
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: b, hdr: resp.Header}
}

func (f *fixture) want(a answer, status int) answer {
	f.t.Helper()
	if a.status != status {
		f.t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	if status >= 400 {
		a.errBody(f.t)
	}
	if ct := a.hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		f.t.Fatalf("content type %q", ct)
	}
	return a
}

const admin = service.RolePlatformAdmin

func createBody(name string, sizeMB, zones int) CreateDeploymentBody {
	return CreateDeploymentBody{Name: name, Spec: engine.DeploymentSpec{Elasticsearch: engine.Topology{SizeMB: sizeMB, Zones: zones}}}
}

func TestDeploymentsEndpoints(t *testing.T) {
	f := newFixture(t, "zone-1", "zone-2")
	servicetest.AddAllocator(t, f.p, "a1", "zone-1", 4096)
	servicetest.AddAllocator(t, f.p, "a2", "zone-2", 4096)

	// Create, idempotent replay, validate_only.
	b := createBody("logs", 1024, 2)
	b.RequestID = "r-1"
	var cr service.CreateResult
	f.want(f.do(admin, "POST", "/deployments", b), 201).decode(t, &cr)
	id := cr.Deployment.ID
	var again service.CreateResult
	f.want(f.do(admin, "POST", "/deployments", b), 200).decode(t, &again)
	if again.Deployment.ID != id || again.Created {
		t.Fatalf("replay: %+v, want %s", again, id)
	}
	var vo service.CreateResult
	f.want(f.do(admin, "POST", "/deployments?validate_only=true", createBody("v", 1024, 1)), 200).decode(t, &vo)
	if vo.Created || vo.Placement == nil || len(vo.Placement.Placements) != 1 || len(vo.Placement.Explain) == 0 {
		t.Fatalf("validate_only: %s", f.do(admin, "POST", "/deployments?validate_only=true", createBody("v", 1024, 1)).body)
	}
	var list DeploymentList
	f.want(f.do(service.RolePlatformViewer, "GET", "/deployments", nil), 200).decode(t, &list)
	if len(list.Deployments) != 1 || list.Deployments[0].ID != id {
		t.Fatalf("list: %+v", list)
	}

	// Errors: 400 naming the field, 422 with explanation, 404, 409.
	eb := f.want(f.do(admin, "POST", "/deployments", createBody("", 1024, 1)), 400).errBody(t)
	if len(eb.Errors[0].Fields) == 0 || eb.Errors[0].Fields[0].Field != "name" {
		t.Fatalf("400 fields: %+v", eb)
	}
	eb = f.want(f.do(admin, "POST", "/deployments", `{"name":"x","spec":{},"colour":"red"}`), 400).errBody(t)
	if eb.Errors[0].Code != "request.unknown_field" || eb.Errors[0].Fields[0].Field != "colour" {
		t.Fatalf("unknown field: %+v", eb)
	}
	eb = f.want(f.do(admin, "POST", "/deployments", createBody("huge", 8192, 1)), 422).errBody(t)
	if len(eb.Errors[0].Explain) == 0 || !strings.Contains(eb.Errors[0].Message, "MB") {
		t.Fatalf("422 without explanation: %+v", eb)
	}
	f.want(f.do(admin, "GET", "/deployments/"+engine.NewID(), nil), 404)
	f.want(f.do(admin, "GET", "/deployments/not-an-id", nil), 404)
	f.want(f.do(admin, "GET", "/deployments/"+engine.NewID()+"/activity", nil), 404)
	f.want(f.do(admin, "POST", "/deployments/"+id+"/_restart", nil), 409)
	eb = f.want(f.do(admin, "POST", "/deployments/"+id+"/plan/_retry", nil), 409).errBody(t)
	if eb.Errors[0].Code != "plan.pending" {
		t.Fatalf("retry while pending: %+v", eb)
	}
	eb = f.want(f.do(admin, "DELETE", "/deployments/"+id, nil), 409).errBody(t)
	if eb.Errors[0].Code != "plan.pending" {
		t.Fatalf("delete while pending: %+v", eb)
	}

	// Activity shows the pending plan; cancel marks it.
	var act service.Activity
	f.want(f.do(admin, "GET", "/deployments/"+id+"/activity", nil), 200).decode(t, &act)
	if act.Pending == nil || act.Pending.ID != cr.PlanID {
		t.Fatalf("activity: %+v", act)
	}
	var cancel CancelResponse
	f.want(f.do(admin, "DELETE", "/deployments/"+id+"/plan/pending", nil), 202).decode(t, &cancel)
	if !cancel.CancelRequested || cancel.PlanID != cr.PlanID {
		t.Fatalf("cancel: %+v", cancel)
	}
	f.finishPlan(t, id, engine.PlanSuccess, []engine.PlacedInstance{
		{ID: "i1", Kind: engine.KindElasticsearch, Allocator: "a1", Zone: "zone-1", SizeMB: 1024, Version: "8.18.0"},
		{ID: "i2", Kind: engine.KindElasticsearch, Allocator: "a2", Zone: "zone-2", SizeMB: 1024, Version: "8.18.0"}})
	f.want(f.do(admin, "DELETE", "/deployments/"+id+"/plan/pending", nil), 404)

	// Update with the resource version; a stale one is refused.
	var dv service.DeploymentView
	a := f.want(f.do(admin, "GET", "/deployments/"+id, nil), 200)
	a.decode(t, &dv)
	if etag := a.hdr.Get("ETag"); etag != fmt.Sprintf("%q", fmt.Sprint(dv.ResourceVersion)) {
		t.Fatalf("ETag %q for resource version %d", etag, dv.ResourceVersion)
	}
	// That GET came from the watch cache, and the metrics count it.
	served, missed := f.svc.CacheReadStats()
	if m := gatherText(t, f.reg); served == 0 || !strings.Contains(m, fmt.Sprintf(`paddock_api_cache_reads_total{source="cache"} %d`, served)) ||
		!strings.Contains(m, fmt.Sprintf(`paddock_api_cache_reads_total{source="zookeeper"} %d`, missed)) {
		t.Fatalf("cache read counters (%d served, %d missed):\n%s", served, missed, m)
	}
	spec := dv.Spec
	spec.Elasticsearch.SizeMB = 2048
	stale := dv.ResourceVersion - 1
	eb = f.want(f.do(admin, "PUT", "/deployments/"+id, UpdateDeploymentBody{Spec: &spec, Version: &stale}), 409).errBody(t)
	if eb.Errors[0].Code != "version.stale" {
		t.Fatalf("stale: %+v", eb)
	}
	f.want(f.do(admin, "PUT", "/deployments/"+id, UpdateDeploymentBody{Spec: &spec}, "If-Match", `"0"`), 409)
	f.want(f.do(admin, "PUT", "/deployments/"+id, UpdateDeploymentBody{Spec: &spec}, "If-Match", "zz"), 400)
	var pr service.PlanResult
	// validate_only: checked and explained, nothing written.
	f.want(f.do(admin, "PUT", "/deployments/"+id+"?validate_only=true", UpdateDeploymentBody{Spec: &spec}), 200).decode(t, &pr)
	if pr.PlanID != "" || !pr.Changed || pr.Placement == nil || len(pr.Placement.Placements) != 2 {
		t.Fatalf("validate_only update: %+v", pr)
	}
	huge := spec
	huge.Elasticsearch.SizeMB = 8192
	f.want(f.do(admin, "PUT", "/deployments/"+id+"?validate_only=true", UpdateDeploymentBody{Spec: &huge}), 422)
	f.want(f.do(service.RoleDeploymentManager, "PUT", "/deployments/"+id, UpdateDeploymentBody{Spec: &spec, Version: &dv.ResourceVersion}), 202).decode(t, &pr)
	if pr.PlanID == "" {
		t.Fatalf("update: %+v", pr)
	}
	f.want(f.do(admin, "PUT", "/deployments/"+id, UpdateDeploymentBody{Spec: &spec}), 200) // same as pending: no change
	spec.Elasticsearch.SizeMB = 512
	f.want(f.do(admin, "PUT", "/deployments/"+id, UpdateDeploymentBody{Spec: &spec}), 409)
	f.finishPlan(t, id, engine.PlanSuccess, dv.Instances)
	f.want(f.do(admin, "POST", "/deployments/"+id+"/_restart", nil), 202)
	f.finishPlan(t, id, engine.PlanSuccess, dv.Instances)
	f.want(f.do(admin, "DELETE", "/deployments/"+id, nil), 202)
	f.finishPlan(t, id, engine.PlanSuccess, nil)
	f.want(f.do(admin, "GET", "/deployments", nil), 200).decode(t, &list)
	if len(list.Deployments) != 0 {
		t.Fatalf("deleted deployment listed: %+v", list)
	}
	f.want(f.do(admin, "GET", "/deployments?show_deleted=true", nil), 200).decode(t, &list)
	if len(list.Deployments) != 1 {
		t.Fatalf("show_deleted: %+v", list)
	}
	f.want(f.do(admin, "GET", "/deployments?show_deleted=maybe", nil), 400)
}

func TestPlatformEndpoints(t *testing.T) {
	f := newFixture(t, "zone-1", "zone-2")
	servicetest.AddAllocator(t, f.p, "a1", "zone-1", 4096)
	servicetest.AddAllocator(t, f.p, "a2", "zone-2", 4096)
	// A proxy registration and a constructor leader, as those agents write them.
	px := f.p.Connect(t, engine.RoleProxy)
	if err := px.CreateEphemeral(f.ctx, engine.ProxyPath("proxy-1"), engine.ProxyRecord{ID: "proxy-1", HTTPAddr: "127.0.0.1:9200", State: "serving"}); err != nil {
		t.Fatal(err)
	}
	cons := f.p.Connect(t, engine.RoleConstructor)
	if _, err := cons.CreateSequential(f.ctx, engine.PathLeaderCons+"/n-", "cons-1", true); err != nil {
		t.Fatal(err)
	}
	var pv service.PlatformView
	f.want(f.do(service.RolePlatformViewer, "GET", "/platform", nil), 200).decode(t, &pv)
	if len(pv.Zones) != 2 || pv.AllocatorsAlive != 2 || pv.CapacityMB != 8192 || pv.Zones[0].Allocators != 1 ||
		pv.ConstructorLeader != "cons-1" || pv.Proxies != 1 || len(pv.ProxyRecords) != 1 {
		t.Fatalf("platform: %+v", pv)
	}
	var al AllocatorList
	f.want(f.do(service.RolePlatformViewer, "GET", "/platform/infrastructure/allocators", nil), 200).decode(t, &al)
	if len(al.Allocators) != 2 {
		t.Fatalf("allocators: %+v", al)
	}
	f.want(f.do(admin, "GET", "/platform/infrastructure/allocators/a1", nil), 200)
	f.want(f.do(admin, "GET", "/platform/infrastructure/allocators/zz", nil), 404)
	var av service.AllocatorView
	f.want(f.do(admin, "POST", "/platform/infrastructure/allocators/a1/maintenance-mode/_start", `{"reason":"disk"}`), 200).decode(t, &av)
	if !av.Maintenance {
		t.Fatalf("maintenance: %+v", av)
	}
	f.want(f.do(admin, "POST", "/platform/infrastructure/allocators/a1/maintenance-mode/_stop", nil), 200).decode(t, &av)
	if av.Maintenance {
		t.Fatalf("maintenance stop: %+v", av)
	}
	f.want(f.do(admin, "POST", "/platform/infrastructure/allocators/zz/maintenance-mode/_start", nil), 404)
	f.want(f.do(admin, "PUT", "/platform/infrastructure/allocators/a1/settings", `{"capacity_mb":8192}`), 200).decode(t, &av)
	if av.CapacityMB != 8192 {
		t.Fatalf("settings: %+v", av)
	}
	eb := f.want(f.do(admin, "PUT", "/platform/infrastructure/allocators/a1/settings", `{"capacity_mb":"lots"}`), 400).errBody(t)
	if eb.Errors[0].Fields[0].Field != "capacity_mb" {
		t.Fatalf("settings type error: %+v", eb)
	}
	var vr service.VacateResult
	f.want(f.do(admin, "POST", "/platform/infrastructure/allocators/a1/clusters/_move", nil), 202).decode(t, &vr)
	if vr.Allocator != "a1" || len(vr.Moves) != 0 {
		t.Fatalf("vacate empty allocator: %+v", vr)
	}
	f.want(f.do(admin, "POST", "/platform/infrastructure/allocators/zz/clusters/_move", `{}`), 404)
	var pl ProxyList
	f.want(f.do(admin, "GET", "/platform/infrastructure/proxies", nil), 200).decode(t, &pl)
	if len(pl.Proxies) != 1 || pl.Proxies[0].HTTPAddr != "127.0.0.1:9200" {
		t.Fatalf("proxies: %+v", pl)
	}
	var cs service.ConstructorSettings
	f.want(f.do(service.RolePlatformViewer, "GET", "/platform/configuration/store/constructor", nil), 200).decode(t, &cs)
	body := ConstructorBody{PlacementStrategy: engine.StrategyFill, LostAllocatorGraceSeconds: 45, MaxReplacementsPerMinute: 5, Version: &cs.ResourceVersion}
	var got service.ConstructorSettings
	f.want(f.do(admin, "PUT", "/platform/configuration/store/constructor", body), 200).decode(t, &got)
	if got.PlacementStrategy != engine.StrategyFill || got.LostAllocatorGraceSeconds != 45 {
		t.Fatalf("constructor: %+v", got)
	}
	f.want(f.do(admin, "PUT", "/platform/configuration/store/constructor", body), 409)
	body.Version, body.PlacementStrategy = nil, "nope"
	f.want(f.do(admin, "PUT", "/platform/configuration/store/constructor", body), 400)
}

func TestAuthAndRBAC(t *testing.T) {
	f := newFixture(t, "zone-1")
	servicetest.AddAllocator(t, f.p, "a1", "zone-1", 4096)
	// No or bad credentials: 401 on everything but the document.
	f.want(f.do("", "GET", "/deployments", nil), 401)
	a := f.do("", "GET", "/deployments", nil, "Authorization", "ApiKey 0123456789abcdef."+strings.Repeat("0", 48))
	f.want(a, 401)
	if a.hdr.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without WWW-Authenticate")
	}
	f.want(f.do("", "GET", "/deployments", nil, "Authorization", "Bearer x"), 401)
	f.want(f.do("", "GET", "/deployments", nil, "Authorization", "Basic !!!"), 401)
	f.want(f.do("", "GET", "/api-docs", nil), 200)

	// A viewer is refused every write with 403; reads work.
	dep := engine.NewID()
	writes := []struct{ method, path, body string }{
		{"POST", "/deployments", `{"name":"x","spec":{"elasticsearch":{"size_mb":1024}}}`},
		{"PUT", "/deployments/" + dep, `{}`},
		{"DELETE", "/deployments/" + dep, ``},
		{"DELETE", "/deployments/" + dep + "/plan/pending", ``},
		{"POST", "/deployments/" + dep + "/_restart", ``},
		{"POST", "/deployments/" + dep + "/plan/_retry", ``},
		{"POST", "/deployments/" + dep + "/elasticsearch/main-elasticsearch/_reset-password", ``},
		{"POST", "/platform/infrastructure/allocators/a1/maintenance-mode/_start", ``},
		{"POST", "/platform/infrastructure/allocators/a1/maintenance-mode/_stop", ``},
		{"POST", "/platform/infrastructure/allocators/a1/clusters/_move", ``},
		{"PUT", "/platform/infrastructure/allocators/a1/settings", `{"capacity_mb":1}`},
		{"PUT", "/platform/configuration/store/constructor", `{}`},
		{"POST", "/users/auth/keys", `{"name":"x","role":"platform-admin"}`},
		{"GET", "/users/auth/keys", ``},
		{"DELETE", "/users/auth/keys/0123456789abcdef", ``},
	}
	for _, w := range writes {
		t.Run("viewer "+w.method+" "+w.path, func(t *testing.T) {
			eb := f.want(f.do(service.RolePlatformViewer, w.method, w.path, w.body), 403).errBody(t)
			if eb.Errors[0].Code != "auth.forbidden" {
				t.Fatalf("%+v", eb)
			}
		})
	}
	// A deployment manager may not touch the platform.
	for _, w := range writes[7:] {
		f.want(f.do(service.RoleDeploymentManager, w.method, w.path, w.body), 403)
	}
	// Nothing was written by the refused requests.
	if deps, _ := f.svc.ListDeployments(f.ctx, true); len(deps) != 0 {
		t.Fatalf("refused create wrote %d deployments", len(deps))
	}
	if av, _ := f.svc.GetAllocator(f.ctx, "a1"); av.Maintenance || av.Settings.CapacityMB != 0 {
		t.Fatalf("refused writes changed a1: %+v", av)
	}

	// Keys: admin creates one, it works, revoke stops it at once.
	var ck CreateKeyResponse
	f.want(f.do(admin, "POST", "/users/auth/keys", CreateKeyBody{Name: "ci", Role: service.RoleDeploymentManager}), 201).decode(t, &ck)
	f.keys["ci"] = ck.Key
	f.want(f.do("ci", "GET", "/deployments", nil), 200)
	var kl KeyList
	f.want(f.do(admin, "GET", "/users/auth/keys", nil), 200).decode(t, &kl)
	if strings.Contains(string(f.do(admin, "GET", "/users/auth/keys", nil).body), strings.SplitN(ck.Key, ".", 2)[1]) {
		t.Fatal("key list reveals a secret")
	}
	f.want(f.do(admin, "DELETE", "/users/auth/keys/"+ck.ID, nil), 200)
	f.want(f.do("ci", "GET", "/deployments", nil), 401)

	// Basic auth for built-in users.
	if err := f.svc.SetUser(f.ctx, "readonly", service.RolePlatformViewer, "s3cret-pass", "test"); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", f.url+Prefix+"/deployments", nil)
	req.SetBasicAuth("readonly", "s3cret-pass")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("basic auth: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("POST", f.url+Prefix+"/deployments", strings.NewReader(`{}`))
	req.SetBasicAuth("readonly", "s3cret-pass")
	resp, _ = http.DefaultClient.Do(req)
	if resp.StatusCode != 403 {
		t.Fatalf("viewer user write: %d", resp.StatusCode)
	}
	resp.Body.Close()
	req.SetBasicAuth("readonly", "wrong-pass")
	req.Body = io.NopCloser(strings.NewReader(`{}`))
	resp, _ = http.DefaultClient.Do(req)
	if resp.StatusCode != 401 {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestRoutingErrors(t *testing.T) {
	f := newFixture(t, "zone-1")
	f.want(f.do(admin, "GET", "/nope", nil), 404)
	// The 405 names every method the path serves.
	if got := f.want(f.do(admin, "PATCH", "/deployments", nil), 405).hdr.Get("Allow"); got != "GET, POST" {
		t.Errorf("Allow = %q, want %q", got, "GET, POST")
	}
	big := `{"name":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	f.want(f.do(admin, "POST", "/deployments", big), 413)
}

func TestUnavailableIs503(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	part, err := zktest.NewPartition(env.Servers())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(part.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := engine.Connect(ctx, engine.Options{Servers: part.Addr(), Role: engine.RoleAdmin, Credential: p.Creds[engine.RoleAdmin],
		SessionTimeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := service.New(st, service.WithLogger(slog.New(slog.DiscardHandler)))
	_, key, err := svc.CreateAPIKey(ctx, "k", admin)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(svc, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	part.Cut()
	defer part.Restore()
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	req, _ := http.NewRequestWithContext(rctx, "GET", srv.URL+Prefix+"/deployments", nil)
	req.Header.Set("Authorization", "ApiKey "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "retry") {
		t.Fatalf("status %d retry-after %q body %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
}
