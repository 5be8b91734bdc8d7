package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/service/servicetest"
	"paddock/engine/testenv"
	"paddock/engine/zktest"
	"paddock/stunnel"
)

// writeCert writes a leaf certificate valid for ttl into dir/name.
func writeCert(t *testing.T, dir, name string, ttl time.Duration) {
	t.Helper()
	ca, _, err := stunnel.NewCA("doctor-test", 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := stunnel.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(key.Public(), stunnel.Leaf{Identity: stunnel.Identity{Role: "admin", ID: "host-1"}, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), cert, 0o600); err != nil {
		t.Fatal(err)
	}
}

// putCA writes a platform CA valid for ttl, as the director does.
func putCA(t *testing.T, ctx context.Context, p *zktest.Platform, ttl time.Duration) {
	t.Helper()
	ca, _, err := stunnel.NewCA("platform-ca", ttl)
	if err != nil {
		t.Fatal(err)
	}
	dir := p.Connect(t, engine.RoleDirector)
	defer dir.Close()
	if err := dir.Put(ctx, engine.PathCA, ca.CertPEM); err != nil {
		t.Fatal(err)
	}
}

func checks(rep service.DoctorReport) map[string]service.Check {
	m := map[string]service.Check{}
	for _, c := range rep.Checks {
		m[c.ID] = c
	}
	return m
}

// finished writes a running deployment with its instances placed, as a
// create plan that succeeded leaves it.
func finished(t *testing.T, ctx context.Context, svc *service.Service, p *zktest.Platform, name string, sizeMB int, allocs ...servicetest.Allocator) string {
	t.Helper()
	res, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: name, Spec: spec(sizeMB, len(allocs))})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Deployment.ID
	var placed []engine.PlacedInstance
	for _, a := range allocs {
		in := engine.Instance{ID: engine.NewID(), DeploymentID: id, Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: sizeMB, Zone: a.Zone}
		servicetest.Assign(t, p, a.ID, in)
		placed = append(placed, engine.PlacedInstance{ID: in.ID, Kind: in.Kind, Allocator: a.ID, Zone: a.Zone, SizeMB: sizeMB, Version: "8.17.0"})
	}
	servicetest.FinishPlan(t, p, id, engine.PlanSuccess, placed)
	return id
}

// TestDoctor: on a healthy platform every check is ok; then each check
// is triggered on purpose and names what it found and what to do.
func TestDoctor(t *testing.T) {
	p := env.Fresh(t, "zone-1", "zone-2")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	certs := t.TempDir()
	// The service's clock runs ahead on demand: the cached headroom
	// report expires without waiting.
	var ahead time.Duration
	svc := service.New(p.Admin, service.WithLogger(slog.New(slog.DiscardHandler)), service.WithCertDir(certs),
		service.WithClock(func() time.Time { return time.Now().UTC().Add(ahead) }))
	a1 := servicetest.AddAllocator(t, p, "a1", "zone-1", 4096)
	a2 := servicetest.AddAllocator(t, p, "a2", "zone-2", 3072)
	cons := p.Connect(t, engine.RoleConstructor)
	leader, err := cons.CreateSequential(ctx, engine.PathLeaderCons+"/n-", "cons-1", true)
	if err != nil {
		t.Fatal(err)
	}
	px := p.Connect(t, engine.RoleProxy)
	now := time.Now().UTC()
	if err := px.CreateEphemeral(ctx, engine.ProxyPath("proxy-1"), engine.ProxyRecord{ID: "proxy-1", State: "serving", UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	writeCert(t, certs, "admin.crt", 90*24*time.Hour)
	putCA(t, ctx, p, 365*24*time.Hour)
	two := finished(t, ctx, svc, p, "two-zones", 512, *a1, *a2)

	rep, err := svc.Doctor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Checks {
		if c.Severity != service.SeverityOK {
			t.Errorf("healthy platform: %s is %s: %s %v", c.ID, c.Severity, c.Detail, c.Items)
		}
	}
	if rep.Status != service.SeverityOK || len(rep.Checks) != 11 {
		t.Fatalf("healthy platform: status %s, %d checks", rep.Status, len(rep.Checks))
	}

	// Trigger each check.
	solo := finished(t, ctx, svc, p, "solo", 3500, *a1) // one zone, fills a1, zone-2 cannot take it
	writeCert(t, certs, "proxy.crt", 48*time.Hour)
	putCA(t, ctx, p, 10*24*time.Hour)
	deadline := now.Add(-time.Minute)
	stuck := engine.Plan{ID: engine.NewID(), DeploymentID: two, Action: engine.ActionRestart, Status: engine.PlanRunning, CreatedAt: now.Add(-5 * time.Minute),
		Steps: []engine.PlanStep{{Name: "wait until running and healthy", Status: engine.PlanRunning, Started: now.Add(-3 * time.Minute), Deadline: &deadline,
			Waiting: "0 of 1 instances healthy; waiting for instance abcd on a1 (starting)"}}}
	if err := p.Admin.Create(ctx, engine.PendingPlanPath(two), stuck); err != nil {
		t.Fatal(err)
	}
	if err := px.CreateEphemeral(ctx, engine.ProxyPath("proxy-2"), engine.ProxyRecord{ID: "proxy-2", State: "serving", UpdatedAt: now.Add(-10 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	var rec engine.Allocator
	if _, err := a2.Store.Update(ctx, engine.AllocatorPath("a2"), &rec, func() error { rec.Version = "0.9.0"; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := cons.Delete(ctx, leader, engine.AnyVersion); err != nil {
		t.Fatal(err)
	}
	ahead = service.HeadroomMaxAge

	rep, err = svc.Doctor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := checks(rep)
	want := []struct {
		id, severity, item string
	}{
		{"constructor", service.SeverityCritical, ""},
		{"single-zone", service.SeverityWarning, solo},
		{"allocators-full", service.SeverityWarning, "a1 (zone-1): 4012 of 4096 MB"},
		{"certificates", service.SeverityWarning, "proxy.crt"},
		{"ca", service.SeverityWarning, "CA platform-ca"},
		{"plans", service.SeverityWarning, "waiting for instance abcd"},
		{"proxies", service.SeverityWarning, "proxy-2: record not refreshed"},
		{"version-skew", service.SeverityWarning, "0.9.0: a2"},
		{"headroom", service.SeverityWarning, "zone-1"},
		{"zookeeper", service.SeverityOK, ""},
	}
	for _, w := range want {
		c, ok := got[w.id]
		if !ok {
			t.Errorf("no %s check", w.id)
			continue
		}
		if c.Severity != w.severity || (w.item != "" && !strings.Contains(strings.Join(c.Items, "\n"), w.item)) {
			t.Errorf("%s: %s %q %v, want %s naming %q", w.id, c.Severity, c.Detail, c.Items, w.severity, w.item)
		}
		if c.Severity != service.SeverityOK && c.Action == "" {
			t.Errorf("%s: %s without what to do", w.id, c.Severity)
		}
	}
	if rep.Status != service.SeverityCritical || rep.Checks[0].Severity != service.SeverityCritical {
		t.Fatalf("status %s, first check %s: want critical first", rep.Status, rep.Checks[0].ID)
	}
}

// TestDoctorZooKeeperFollowerDown: a stopped follower of a 3-server
// ensemble is a warning naming it; the quorum holds.
func TestDoctorZooKeeperFollowerDown(t *testing.T) {
	if testing.Short() {
		t.Skip("ensemble test skipped in -short mode")
	}
	ens, err := zktest.Start(3)
	if err != nil {
		t.Fatalf("a 3-server ZooKeeper ensemble: %v", err)
	}
	defer ens.Stop()
	p := ens.Fresh(t, "zone-1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svc := service.New(p.Admin, service.WithLogger(slog.New(slog.DiscardHandler)))
	rep, err := svc.Doctor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := checks(rep)["zookeeper"]; c.Severity != service.SeverityOK || !strings.Contains(c.Detail, "leader") {
		t.Fatalf("healthy ensemble: %+v", c)
	}
	follower := 0
	for id := 1; id <= 3 && follower == 0; id++ {
		if id != ens.Cluster.Leader() {
			follower = id
		}
	}
	if err := ens.Cluster.StopNode(follower); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ens.Cluster.Node(follower).ClientPort)
	testenv.EventuallyDetail(t, 30*time.Second, fmt.Sprintf("a warning naming stopped follower %d (%s)", follower, addr), func() (bool, string) {
		rep, err = svc.Doctor(ctx)
		if err != nil {
			return false, err.Error()
		}
		c := checks(rep)["zookeeper"]
		return c.Severity == service.SeverityWarning && strings.Contains(strings.Join(c.Items, " "), addr) && strings.Contains(c.Detail, "2 of 3") && c.Action != "", fmt.Sprintf("%+v", c)
	})
}
