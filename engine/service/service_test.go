package service_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/service/servicetest"
	"paddock/engine/testenv"
	"paddock/engine/zktest"
)

func newSvc(t *testing.T, zones ...string) (*service.Service, *zktest.Platform, context.Context) {
	t.Helper()
	p := env.Fresh(t, zones...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return service.New(p.Admin, service.WithLogger(slog.New(slog.DiscardHandler))), p, ctx
}

func spec(sizeMB, zones int) engine.DeploymentSpec {
	return engine.DeploymentSpec{Elasticsearch: engine.Topology{SizeMB: sizeMB, Zones: zones}}
}

func wantKind(t *testing.T, err error, kind *service.Error, code string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v (kind %v), want kind %v", err, service.KindOf(err), kind.Kind)
	}
	var se *service.Error
	errors.As(err, &se)
	if code != "" && se.Code != code {
		t.Fatalf("error code = %q, want %q (%v)", se.Code, code, err)
	}
}

func TestCreateValidation(t *testing.T) {
	svc, p, ctx := newSvc(t, "zone-1", "zone-2")
	servicetest.AddAllocator(t, p, "a1", "zone-1", 4096)
	cases := []struct {
		name   string
		req    service.CreateRequest
		fields []string
	}{
		{"no name", service.CreateRequest{Spec: spec(1024, 1)}, []string{"name"}},
		{"size too small", service.CreateRequest{Name: "x", Spec: spec(10, 1)}, []string{"spec.elasticsearch.size_mb"}},
		{"too many zones", service.CreateRequest{Name: "x", Spec: spec(1024, 3)}, []string{"spec.elasticsearch.zones"}},
		{"unknown version", service.CreateRequest{Name: "x", Spec: engine.DeploymentSpec{Version: "1.0.0", Elasticsearch: engine.Topology{SizeMB: 1024}}}, []string{"spec.version"}},
		{"bad kibana", service.CreateRequest{Name: "x", Spec: engine.DeploymentSpec{Elasticsearch: engine.Topology{SizeMB: 1024}, Kibana: engine.Topology{SizeMB: 10}}}, []string{"spec.kibana.size_mb"}},
		{"bad request id", service.CreateRequest{Name: "x", RequestID: "a b", Spec: spec(1024, 1)}, []string{"request_id"}},
		{"several", service.CreateRequest{Spec: spec(0, 9)}, []string{"name", "spec.elasticsearch.size_mb", "spec.elasticsearch.zones"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.CreateDeployment(ctx, tc.req)
			wantKind(t, err, service.ErrInvalid, "request.invalid")
			var se *service.Error
			errors.As(err, &se)
			got := map[string]bool{}
			for _, f := range se.Fields {
				got[f.Field] = true
			}
			for _, f := range tc.fields {
				if !got[f] {
					t.Errorf("fields %v: missing %s", se.Fields, f)
				}
			}
		})
	}
	deps, err := svc.ListDeployments(ctx, true)
	if err != nil || len(deps) != 0 {
		t.Fatalf("invalid creates wrote something: %v %v", deps, err)
	}
}

func TestCreateWritesDeploymentAndPlan(t *testing.T) {
	svc, p, ctx := newSvc(t, "zone-1", "zone-2")
	servicetest.AddAllocator(t, p, "a1", "zone-1", 4096)
	servicetest.AddAllocator(t, p, "a2", "zone-2", 4096)
	res, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "logs", Spec: spec(1024, 2), Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.PlanID == "" || !service.ValidID(res.Deployment.ID) {
		t.Fatalf("result %+v", res)
	}
	if len(res.Placement.Placements) != 2 {
		t.Fatalf("placement check placed %v, want 2 instances", res.Placement.Placements)
	}
	v, err := svc.GetDeployment(ctx, res.Deployment.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != engine.DeploymentInitializing || v.PendingPlan == nil || v.PendingPlan.ID != res.PlanID ||
		v.PendingPlan.Action != engine.ActionCreate || v.PendingPlan.Spec.Version != engine.DefaultVersions[len(engine.DefaultVersions)-1] {
		t.Fatalf("deployment %+v pending %+v", v, v.PendingPlan)
	}
	if v.Endpoint != v.ID+".localhost" {
		t.Fatalf("endpoint %q", v.Endpoint)
	}
	// The constructor's contract: plans/history exists for its sequential entries.
	if ok, _, err := p.Admin.Exists(ctx, engine.PlanHistoryPath(v.ID)); err != nil || !ok {
		t.Fatalf("plans/history missing: %v %v", ok, err)
	}
}

func TestCreateIdempotent(t *testing.T) {
	svc, p, ctx := newSvc(t, "zone-1")
	servicetest.AddAllocator(t, p, "a1", "zone-1", 8192)
	req := service.CreateRequest{Name: "idem", RequestID: "req-1", Spec: spec(1024, 1)}
	first, err := svc.CreateDeployment(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := svc.CreateDeployment(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again.Created || again.Deployment.ID != first.Deployment.ID || again.PlanID != first.PlanID {
		t.Fatalf("replay gave %+v, want deployment %s not created", again, first.Deployment.ID)
	}
	// Concurrent creates with one new request id make one deployment.
	var wg sync.WaitGroup
	ids := make([]string, 6)
	errs := make([]error, 6)
	for i := range ids {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "race", RequestID: "req-2", Spec: spec(512, 1)})
			ids[i], errs[i] = r.Deployment.ID, err
		}(i)
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("concurrent create %d: id %s err %v, want %s", i, ids[i], errs[i], ids[0])
		}
	}
	deps, err := svc.ListDeployments(ctx, true)
	if err != nil || len(deps) != 2 {
		t.Fatalf("want 2 deployments, got %d (%v)", len(deps), err)
	}
}

func TestValidateOnlyAndUnplaceable(t *testing.T) {
	svc, p, ctx := newSvc(t, "zone-1", "zone-2")
	servicetest.AddAllocator(t, p, "a1", "zone-1", 2048)
	servicetest.AddAllocator(t, p, "a2", "zone-2", 512)
	res, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "v", Spec: spec(1024, 1), ValidateOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created || res.Placement == nil || len(res.Placement.Placements) != 1 || res.Placement.Placements[0].Allocator != "a1" || len(res.Placement.Explain) == 0 {
		t.Fatalf("validate_only result %+v", res.Placement)
	}
	_, err = svc.CreateDeployment(ctx, service.CreateRequest{Name: "big", Spec: spec(1024, 2)})
	wantKind(t, err, service.ErrUnplaceable, "placement.unplaceable")
	var se *service.Error
	errors.As(err, &se)
	if len(se.Explain) == 0 {
		t.Fatalf("unplaceable without explanation: %v", err)
	}
	_, err = svc.CreateDeployment(ctx, service.CreateRequest{Name: "big", Spec: spec(1024, 2), ValidateOnly: true})
	wantKind(t, err, service.ErrUnplaceable, "")
	if deps, _ := svc.ListDeployments(ctx, true); len(deps) != 0 {
		t.Fatalf("validate_only or unplaceable wrote %d deployments", len(deps))
	}
}

func TestPlansConflictsAndVersions(t *testing.T) {
	svc, p, ctx := newSvc(t, "zone-1")
	servicetest.AddAllocator(t, p, "a1", "zone-1", 8192)
	res, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "d", Spec: spec(1024, 1)})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Deployment.ID
	// A second plan while the first is pending is refused.
	_, err = svc.Resize(ctx, id, 2048, "test")
	wantKind(t, err, service.ErrConflict, "plan.pending")
	_, err = svc.DeleteDeployment(ctx, id, "test")
	wantKind(t, err, service.ErrConflict, "plan.pending")
	// Cancel marks the pending plan.
	pl, err := svc.CancelPlan(ctx, id, "test")
	if err != nil || !pl.CancelRequested {
		t.Fatalf("cancel: %+v %v", pl, err)
	}
	inst := []engine.PlacedInstance{{ID: "i1", Kind: engine.KindElasticsearch, Allocator: "a1", Zone: "zone-1", SizeMB: 1024, Version: "8.18.0"}}
	servicetest.FinishPlan(t, p, id, engine.PlanSuccess, inst)
	_, err = svc.CancelPlan(ctx, id, "test")
	wantKind(t, err, service.ErrNotFound, "plan.not_found")

	cur, err := svc.GetDeployment(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	stale := cur.ResourceVersion - 1
	newSpec := cur.Spec
	newSpec.Elasticsearch.SizeMB = 2048
	_, err = svc.UpdateDeployment(ctx, id, service.UpdateRequest{Spec: &newSpec, Version: &stale})
	wantKind(t, err, service.ErrConflict, "version.stale")
	// Same spec: nothing to do, no plan.
	same := cur.Spec
	r, err := svc.UpdateDeployment(ctx, id, service.UpdateRequest{Spec: &same, Version: &cur.ResourceVersion})
	if err != nil || r.Changed || r.PlanID != "" {
		t.Fatalf("no-op update: %+v %v", r, err)
	}
	// Rename alone writes no plan.
	name := "renamed"
	r, err = svc.UpdateDeployment(ctx, id, service.UpdateRequest{Name: &name, Version: &cur.ResourceVersion})
	if err != nil || !r.Changed || r.PlanID != "" {
		t.Fatalf("rename: %+v %v", r, err)
	}
	r, err = svc.Resize(ctx, id, 2048, "test")
	if err != nil || r.PlanID == "" {
		t.Fatalf("resize: %+v %v", r, err)
	}
	v, _ := svc.GetDeployment(ctx, id)
	if v.Name != "renamed" || v.PendingPlan == nil || v.PendingPlan.Spec.Elasticsearch.SizeMB != 2048 || v.PendingPlan.Action != engine.ActionUpdate {
		t.Fatalf("after resize: %+v", v)
	}
	servicetest.FinishPlan(t, p, id, engine.PlanSuccess, inst)
	_, err = svc.Upgrade(ctx, id, "0.0.1", "test")
	wantKind(t, err, service.ErrInvalid, "request.invalid")
	r, err = svc.Upgrade(ctx, id, "8.17.0", "test")
	if err != nil || r.PlanID == "" {
		t.Fatalf("upgrade: %+v %v", r, err)
	}
	servicetest.FinishPlan(t, p, id, engine.PlanError, nil)
	act, err := svc.Activity(ctx, id)
	if err != nil || act.Pending != nil || len(act.History) != 3 {
		t.Fatalf("activity: %+v %v", act, err)
	}
	if act.History[0].Action != engine.ActionCreate || !act.History[0].CancelRequested || act.History[2].Status != engine.PlanError {
		t.Fatalf("history order/status: %+v", act.History)
	}
	if _, ok := act.Plan(r.PlanID); !ok {
		t.Fatalf("plan %s not in activity", r.PlanID)
	}
	// Restart, then delete; deleted deployments are hidden from list.
	if _, err := svc.RestartDeployment(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	servicetest.FinishPlan(t, p, id, engine.PlanSuccess, inst)
	if _, err := svc.DeleteDeployment(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	servicetest.FinishPlan(t, p, id, engine.PlanSuccess, nil)
	if l, _ := svc.ListDeployments(ctx, false); len(l) != 0 {
		t.Fatalf("deleted deployment listed: %v", l)
	}
	if l, _ := svc.ListDeployments(ctx, true); len(l) != 1 || l[0].Status != engine.DeploymentDeleted {
		t.Fatalf("show deleted: %v", l)
	}
	_, err = svc.DeleteDeployment(ctx, id, "test")
	wantKind(t, err, service.ErrNotFound, "deployment.deleted")
}

func TestNotFound(t *testing.T) {
	svc, _, ctx := newSvc(t, "zone-1")
	missing := engine.NewID()
	for name, fn := range map[string]func() error{
		"get":       func() error { _, err := svc.GetDeployment(ctx, missing); return err },
		"bad id":    func() error { _, err := svc.GetDeployment(ctx, "../x"); return err },
		"delete":    func() error { _, err := svc.DeleteDeployment(ctx, missing, ""); return err },
		"restart":   func() error { _, err := svc.RestartDeployment(ctx, missing, ""); return err },
		"cancel":    func() error { _, err := svc.CancelPlan(ctx, missing, ""); return err },
		"activity":  func() error { _, err := svc.Activity(ctx, missing); return err },
		"allocator": func() error { _, err := svc.GetAllocator(ctx, "nope"); return err },
		"maint":     func() error { _, err := svc.SetMaintenance(ctx, "nope", true, "", ""); return err },
		"vacate":    func() error { _, err := svc.Vacate(ctx, "nope", nil, ""); return err },
		"settings": func() error {
			_, err := svc.SetAllocatorSettings(ctx, "nope", engine.AllocatorSettings{}, "")
			return err
		},
		"revoke key": func() error { return svc.RevokeAPIKey(ctx, "0123456789abcdef", "") },
	} {
		t.Run(name, func(t *testing.T) { wantKind(t, fn(), service.ErrNotFound, "") })
	}
}

func TestAllocatorsMaintenanceSettingsVacate(t *testing.T) {
	svc, p, ctx := newSvc(t, "zone-1", "zone-2")
	a1 := servicetest.AddAllocator(t, p, "a1", "zone-1", 4096)
	servicetest.AddAllocator(t, p, "a2", "zone-1", 4096)
	servicetest.AddAllocator(t, p, "a3", "zone-2", 4096)
	res, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "m", Spec: spec(1024, 1)})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Deployment.ID
	in := engine.Instance{ID: "inst-1", DeploymentID: id, Kind: engine.KindElasticsearch, Version: "8.18.0", SizeMB: 1024, Zone: "zone-1"}
	servicetest.Assign(t, p, "a1", in)
	servicetest.FinishPlan(t, p, id, engine.PlanSuccess, []engine.PlacedInstance{{ID: "inst-1", Kind: engine.KindElasticsearch, Allocator: "a1", Zone: "zone-1", SizeMB: 1024, Version: "8.18.0"}})

	as, err := svc.ListAllocators(ctx)
	if err != nil || len(as) != 3 {
		t.Fatalf("list: %v %v", as, err)
	}
	if as[0].ID != "a1" || as[0].UsedMB != 1024 || as[0].FreeMB != 3072 || len(as[0].Instances) != 1 || !as[0].Connected {
		t.Fatalf("a1 view %+v", as[0])
	}
	v, err := svc.SetMaintenance(ctx, "a2", true, "disk", "test")
	if err != nil || !v.Maintenance {
		t.Fatalf("maintenance on: %+v %v", v, err)
	}
	v, err = svc.SetAllocatorSettings(ctx, "a3", engine.AllocatorSettings{CapacityMB: 8192, Tags: map[string]string{"type": "hot"}}, "test")
	if err != nil || v.CapacityMB != 8192 || v.Tags["type"] != "hot" {
		t.Fatalf("settings: %+v %v", v, err)
	}
	_, err = svc.SetAllocatorSettings(ctx, "a3", engine.AllocatorSettings{CapacityMB: -1}, "test")
	wantKind(t, err, service.ErrInvalid, "")
	// Vacate to a target in maintenance is impossible: 422 with the explanation.
	_, err = svc.Vacate(ctx, "a1", []string{"a2"}, "test")
	wantKind(t, err, service.ErrUnplaceable, "")
	_, err = svc.Vacate(ctx, "a1", []string{"zzz"}, "test")
	wantKind(t, err, service.ErrInvalid, "")
	vr, err := svc.Vacate(ctx, "a1", nil, "test")
	if err != nil || len(vr.Moves) != 1 || vr.Moves[0].PlanID == "" || vr.Moves[0].DeploymentID != id {
		t.Fatalf("vacate: %+v %v", vr, err)
	}
	d, _ := svc.GetDeployment(ctx, id)
	if d.PendingPlan == nil || d.PendingPlan.Action != engine.ActionMove || len(d.PendingPlan.MoveFrom) != 1 || d.PendingPlan.MoveFrom[0] != "a1" {
		t.Fatalf("move plan %+v", d.PendingPlan)
	}
	// A second vacate: the deployment already has a plan.
	_, err = svc.Vacate(ctx, "a1", nil, "test")
	wantKind(t, err, service.ErrConflict, "plan.pending")
	// An allocator that lost its session shows disconnected.
	a1.Kill()
	testenv.Eventually(t, 20*time.Second, "a1 to show disconnected after its session closed", func() bool {
		v, err := svc.GetAllocator(ctx, "a1")
		return err == nil && !v.Connected
	})
	if _, err := svc.SetMaintenance(ctx, "a2", false, "", "test"); err != nil {
		t.Fatal(err)
	}
}

func TestConstructorSettings(t *testing.T) {
	svc, _, ctx := newSvc(t, "zone-1")
	cur, err := svc.GetConstructorSettings(ctx)
	if err != nil || cur.PlacementStrategy != engine.StrategyFillAntiAffinity {
		t.Fatalf("get: %+v %v", cur, err)
	}
	set := cur
	set.PlacementStrategy = engine.StrategyDistribute
	set.LostAllocatorGraceSeconds = 60
	got, err := svc.SetConstructorSettings(ctx, set, &cur.ResourceVersion, "test")
	if err != nil || got.PlacementStrategy != engine.StrategyDistribute || got.LostAllocatorGraceSeconds != 60 {
		t.Fatalf("set: %+v %v", got, err)
	}
	_, err = svc.SetConstructorSettings(ctx, set, &cur.ResourceVersion, "test")
	wantKind(t, err, service.ErrConflict, "version.stale")
	set.PlacementStrategy = "random"
	_, err = svc.SetConstructorSettings(ctx, set, nil, "test")
	wantKind(t, err, service.ErrInvalid, "")
	cfg, _, _ := svc.Store().Platform(ctx)
	if cfg.PlacementStrategy != engine.StrategyDistribute || len(cfg.Identities) == 0 {
		t.Fatalf("config after set: %+v", cfg)
	}
}

func TestAPIKeysAndUsers(t *testing.T) {
	svc, _, ctx := newSvc(t, "zone-1")
	id, key, err := svc.CreateAPIKey(ctx, "ops", service.RolePlatformViewer)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := svc.AuthenticateKey(ctx, key)
	if err != nil || pr.Role != service.RolePlatformViewer || pr.ID != id {
		t.Fatalf("authenticate: %+v %v", pr, err)
	}
	// Only the hash is stored.
	b, _, err := svc.Store().Get(ctx, engine.APIKeyPath(id))
	if err != nil {
		t.Fatal(err)
	}
	_, secret, _ := cutDot(key)
	if contains(string(b), secret) {
		t.Fatalf("secret stored in clear: %s", b)
	}
	for _, bad := range []string{"", "x", id + ".", id + "." + "00", id + "." + secret[:47] + "0", "0123456789abcdef." + secret} {
		if bad == key {
			continue
		}
		_, err := svc.AuthenticateKey(ctx, bad)
		wantKind(t, err, service.ErrUnauthorized, "auth.invalid")
	}
	_, _, err = svc.CreateAPIKey(ctx, "x", "root")
	wantKind(t, err, service.ErrInvalid, "")
	if err := svc.SetUser(ctx, "admin", service.RolePlatformAdmin, "correct horse", "test"); err != nil {
		t.Fatal(err)
	}
	if pr, err := svc.AuthenticateUser(ctx, "admin", "correct horse"); err != nil || pr.Role != service.RolePlatformAdmin {
		t.Fatalf("user: %+v %v", pr, err)
	}
	_, err = svc.AuthenticateUser(ctx, "admin", "wrong horse")
	wantKind(t, err, service.ErrUnauthorized, "")
	keys, err := svc.ListAPIKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("list: %v %v", keys, err)
	}
	if err := svc.RevokeAPIKey(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	_, err = svc.AuthenticateKey(ctx, key)
	wantKind(t, err, service.ErrUnauthorized, "")
	if err := svc.RevokeAPIKey(ctx, "user-admin", "test"); err != nil {
		t.Fatal(err)
	}
	_, err = svc.AuthenticateUser(ctx, "admin", "correct horse")
	wantKind(t, err, service.ErrUnauthorized, "")
}

func TestUnavailable(t *testing.T) {
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
	if _, err := svc.ListDeployments(ctx, false); err != nil {
		t.Fatal(err)
	}
	part.Cut()
	defer part.Restore()
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
	defer rcancel()
	_, err = svc.ListDeployments(rctx, false)
	wantKind(t, err, service.ErrUnavailable, "zookeeper.unavailable")
}

func cutDot(s string) (string, string, bool) {
	for i := range s {
		if s[i] == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func contains(s, sub string) bool {
	return len(sub) > 0 && len(s) >= len(sub) && (func() bool {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
		return false
	})()
}

func TestPruneRequests(t *testing.T) {
	svc, p, ctx := newSvc(t, "zone-1")
	servicetest.AddAllocator(t, p, "a1", "zone-1", 8192)
	first, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "p", RequestID: "old", Spec: spec(512, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := svc.PruneRequests(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("prune young records: %d %v", n, err)
	}
	if n, err := svc.PruneRequests(ctx, -time.Second); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
	// Past the window the id is free again.
	again, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "p", RequestID: "old", Spec: spec(512, 1)})
	if err != nil || !again.Created || again.Deployment.ID == first.Deployment.ID {
		t.Fatalf("create after prune: %+v %v", again, err)
	}
}
