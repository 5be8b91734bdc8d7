package service_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/service/servicetest"
)

const (
	testAccessKey = "AKIAPADDOCKTESTACCESS"
	testSecretKey = "s3cr3t-never-shown-anywhere-42"
)

func s3Config() service.RepositoryConfig {
	return service.RepositoryConfig{Type: "s3", Settings: service.RepositorySettings{
		Endpoint: "http://127.0.0.1:8333", Bucket: "paddock-snapshots", AccessKey: testAccessKey, SecretKey: testSecretKey}}
}

func TestRepositories(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	var logs bytes.Buffer
	svc := service.New(p.Admin, service.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	ctx := t.Context()

	bad := []struct {
		name, repo string
		cfg        service.RepositoryConfig
		field      string
	}{
		{"unknown type", "r", service.RepositoryConfig{Type: "gcs"}, "type"},
		{"s3 without keys", "r", service.RepositoryConfig{Type: "s3", Settings: service.RepositorySettings{Endpoint: "http://h:1", Bucket: "b"}}, "settings.secret_key"},
		{"s3 endpoint with a path", "r", service.RepositoryConfig{Type: "s3", Settings: service.RepositorySettings{Endpoint: "http://h:1/x", Bucket: "b", AccessKey: "a", SecretKey: "s"}}, "settings.endpoint"},
		{"masked secret sent back", "r", service.RepositoryConfig{Type: "s3", Settings: service.RepositorySettings{Endpoint: "http://h:1", Bucket: "b", AccessKey: "a", SecretKey: service.Masked}}, "settings.secret_key"},
		{"fs relative", "r", service.RepositoryConfig{Type: "fs", Settings: service.RepositorySettings{Location: "snaps"}}, "settings.location"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := svc.PutRepository(ctx, c.repo, c.cfg, "test")
			wantKind(t, err, service.ErrInvalid, "request.invalid")
			if !strings.Contains(err.Error(), c.field) {
				t.Fatalf("error %v does not name %s", err, c.field)
			}
		})
	}
	if _, err := svc.PutRepository(ctx, "Bad Name", s3Config(), "test"); err == nil {
		t.Fatal("a name with a space and capitals was accepted")
	}

	v, err := svc.PutRepository(ctx, "default", s3Config(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if v.Config.Settings.SecretKey != service.Masked || v.Config.Settings.AccessKey != service.Masked || v.Config.Settings.Endpoint != "http://127.0.0.1:8333" {
		t.Fatalf("put answered %+v: want the keys masked", v.Config.Settings)
	}
	if _, err := svc.PutRepository(ctx, "shared", service.RepositoryConfig{Type: "fs", Settings: service.RepositorySettings{Location: "/mnt/snaps"}}, "test"); err != nil {
		t.Fatal(err)
	}
	list, err := svc.ListRepositories(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "default" || list[1].Config.Settings.Location != "/mnt/snaps" {
		t.Fatalf("list = %+v, %v", list, err)
	}
	b, _ := json.Marshal(list)
	if strings.Contains(string(b), testSecretKey) || strings.Contains(string(b), testAccessKey) {
		t.Fatalf("list shows a key: %s", b)
	}
	// The keys are in their own znode, which only admin and constructor read.
	var sec engine.RepositorySecret
	if _, err := p.Admin.GetJSON(ctx, engine.RepositorySecretPath("default"), &sec); err != nil || sec.SecretKey != testSecretKey {
		t.Fatalf("secret znode = %+v, %v", sec, err)
	}
	var rec map[string]any
	if _, err := p.Admin.GetJSON(ctx, engine.RepositoryPath("default"), &rec); err != nil {
		t.Fatal(err)
	}
	if rb, _ := json.Marshal(rec); strings.Contains(string(rb), testSecretKey) {
		t.Fatalf("repository record holds the secret: %s", rb)
	}
	for _, role := range []engine.Role{engine.RoleProxy, engine.RoleAllocator, engine.RoleDirector} {
		if _, _, err := p.Connect(t, role).Get(ctx, engine.RepositorySecretPath("default")); err == nil {
			t.Fatalf("%s read the repository secret", role)
		}
	}
	// Replacing with another type drops the keys.
	if _, err := svc.PutRepository(ctx, "default", service.RepositoryConfig{Type: "fs", Settings: service.RepositorySettings{Location: "/mnt/x"}}, "test"); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := p.Admin.Exists(ctx, engine.RepositorySecretPath("default")); ok {
		t.Fatal("the keys stayed after the repository became fs")
	}
	if err := svc.DeleteRepository(ctx, "shared", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GetRepository(ctx, "shared"); err == nil {
		t.Fatal("deleted repository still readable")
	}
	if strings.Contains(logs.String(), testSecretKey) || strings.Contains(logs.String(), testAccessKey) {
		t.Fatalf("a key reached the log:\n%s", logs.String())
	}
}

func TestSnapshotPolicyTakeAndRestore(t *testing.T) {
	svc, p, ctx := newSvc(t, "zone-1")
	servicetest.AddAllocator(t, p, "a1", "zone-1", 8192)
	interval := 90 * time.Second
	keep := 3
	res, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "snap", Spec: spec(1024, 1), Actor: "test",
		Snapshot: &service.SnapshotPolicyRequest{Interval: &interval, KeepLast: &keep}})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Deployment.ID
	v, err := svc.ListSnapshots(ctx, id)
	if err != nil || v.Policy.IntervalSeconds != 90 || v.Policy.KeepLast != 3 || v.Repository != engine.DefaultRepository || len(v.Snapshots) != 0 {
		t.Fatalf("snapshots of a new deployment = %+v, %v", v, err)
	}
	// No repository yet: a clear conflict.
	_, err = svc.TakeSnapshot(ctx, id, "test")
	wantKind(t, err, service.ErrConflict, "repository.missing")
	if _, err := svc.PutRepository(ctx, "default", s3Config(), "test"); err != nil {
		t.Fatal(err)
	}
	r, err := svc.TakeSnapshot(ctx, id, "test")
	if err != nil || r.Status != engine.SnapshotRequested || r.Trigger != engine.TriggerManual || !engine.ValidSnapshotName(r.Name) {
		t.Fatalf("take = %+v, %v", r, err)
	}
	got, err := svc.GetSnapshot(ctx, id, r.Name)
	if err != nil || got.Status != engine.SnapshotRequested {
		t.Fatalf("get = %+v, %v", got, err)
	}
	_, err = svc.GetSnapshot(ctx, id, "snap-missing")
	wantKind(t, err, service.ErrNotFound, "snapshot.not_found")

	// Policy changes keep what is not named.
	off := true
	pol, err := svc.SetSnapshotPolicy(ctx, id, service.SnapshotPolicyRequest{Disabled: &off}, "test")
	if err != nil || !pol.Disabled || pol.IntervalSeconds != 90 || pol.KeepLast != 3 {
		t.Fatalf("policy = %+v, %v", pol, err)
	}
	zero := 0
	_, err = svc.SetSnapshotPolicy(ctx, id, service.SnapshotPolicyRequest{IntervalSecs: &zero}, "test")
	wantKind(t, err, service.ErrInvalid, "request.invalid")

	// Restore needs a successful snapshot.
	_, err = svc.RestoreSnapshot(ctx, id, service.RestoreRequest{}, "test")
	wantKind(t, err, service.ErrConflict, "snapshot.none")
	_, err = svc.RestoreSnapshot(ctx, id, service.RestoreRequest{Snapshot: r.Name}, "test")
	wantKind(t, err, service.ErrConflict, "snapshot.not_restorable")
	// The constructor's part, by hand: the snapshot succeeded.
	end := time.Now().UTC()
	r.Status, r.EndedAt = engine.SnapshotSuccess, &end
	if _, err := p.Admin.Set(ctx, engine.SnapshotRecordPath(id, r.Name), r, engine.AnyVersion); err != nil {
		t.Fatal(err)
	}
	rr, err := svc.RestoreSnapshot(ctx, id, service.RestoreRequest{Indices: "logs-*"}, "test")
	if err != nil || rr.Snapshot != r.Name || rr.SourceDeployment != id || rr.Status != engine.RestoreRequested || rr.Indices != "logs-*" {
		t.Fatalf("restore = %+v, %v", rr, err)
	}
	_, err = svc.RestoreSnapshot(ctx, id, service.RestoreRequest{}, "test")
	wantKind(t, err, service.ErrConflict, "restore.pending")
	_, err = svc.RestoreSnapshot(ctx, id, service.RestoreRequest{RenamePattern: "(.+)"}, "test")
	wantKind(t, err, service.ErrInvalid, "request.invalid")
	// The repository in use cannot go.
	err = svc.DeleteRepository(ctx, "default", "test")
	wantKind(t, err, service.ErrConflict, "repository.in_use")

	// A new deployment from the snapshot.
	res2, err := svc.CreateDeployment(ctx, service.CreateRequest{Name: "copy", Spec: spec(1024, 1), Actor: "test", RestoreFrom: id + "/" + r.Name})
	if err != nil {
		t.Fatal(err)
	}
	rr2, err := svc.GetRestore(ctx, res2.Deployment.ID)
	if err != nil || rr2.SourceDeployment != id || rr2.Snapshot != r.Name || rr2.Status != engine.RestoreRequested {
		t.Fatalf("restore of the new deployment = %+v, %v", rr2, err)
	}
	_, err = svc.CreateDeployment(ctx, service.CreateRequest{Name: "copy", Spec: spec(1024, 1), RestoreFrom: id + "/snap-nope"})
	wantKind(t, err, service.ErrNotFound, "snapshot.not_found")
	_, err = svc.CreateDeployment(ctx, service.CreateRequest{Name: "copy", Spec: spec(1024, 1), RestoreFrom: "not-an-id"})
	wantKind(t, err, service.ErrInvalid, "request.invalid")
}

func TestSnapshotOverdue(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) *engine.SnapshotRecord {
		e := now.Add(-ago)
		return &engine.SnapshotRecord{Status: engine.SnapshotSuccess, CreatedAt: e, EndedAt: &e}
	}
	cases := []struct {
		name    string
		p       engine.SnapshotPolicy
		last    *engine.SnapshotRecord
		created time.Time
		want    bool
	}{
		{"fresh", engine.SnapshotPolicy{}, at(10 * time.Minute), now.Add(-time.Hour), false},
		{"older than 2 intervals", engine.SnapshotPolicy{}, at(61 * time.Minute), now.Add(-time.Hour), true},
		{"none yet, new deployment", engine.SnapshotPolicy{}, nil, now.Add(-30 * time.Minute), false},
		{"none for long", engine.SnapshotPolicy{IntervalSeconds: 60}, nil, now.Add(-3 * time.Minute), true},
		{"disabled", engine.SnapshotPolicy{Disabled: true}, at(48 * time.Hour), now.Add(-72 * time.Hour), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := service.SnapshotOverdue(c.p, c.last, c.created, now); got != c.want {
				t.Fatalf("overdue = %v, want %v", got, c.want)
			}
		})
	}
}
