package api

import (
	"net/http"
	"strings"
	"testing"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/service/servicetest"
)

func TestSnapshotEndpoints(t *testing.T) {
	f := newFixture(t, "zone-1")
	servicetest.AddAllocator(t, f.p, "a1", "zone-1", 8192)
	const secret = "api-test-secret-key-0001"
	repo := RepositoryBody{Type: "s3", Settings: service.RepositorySettings{Endpoint: "http://127.0.0.1:8333", Bucket: "snaps", AccessKey: "AKIATEST0001", SecretKey: secret}}

	// Only platform admins configure repositories; everyone reads them masked.
	f.want(f.do(service.RoleDeploymentManager, "PUT", repoPrefix+"/default", repo), http.StatusForbidden)
	f.want(f.do(admin, "PUT", repoPrefix+"/default", map[string]any{"type": "s3", "settings": map[string]any{"bucket": "x"}}), http.StatusBadRequest)
	f.want(f.do(admin, "PUT", repoPrefix+"/default", map[string]any{"type": "s3", "settings": map[string]any{"bogus": 1}}), http.StatusBadRequest)
	a := f.want(f.do(admin, "PUT", repoPrefix+"/default", repo), http.StatusOK)
	for _, role := range []string{admin, service.RolePlatformViewer} {
		for _, p := range []string{repoPrefix, repoPrefix + "/default"} {
			b := f.want(f.do(role, "GET", p, nil), http.StatusOK).body
			if strings.Contains(string(b), secret) || strings.Contains(string(b), "AKIATEST0001") || !strings.Contains(string(b), service.Masked) {
				t.Fatalf("GET %s as %s shows a key or no mask: %s", p, role, b)
			}
		}
	}
	if strings.Contains(string(a.body), secret) {
		t.Fatalf("PUT answered the secret: %s", a.body)
	}
	var list RepositoryList
	f.want(f.do(admin, "GET", repoPrefix, nil), http.StatusOK).decode(t, &list)
	if len(list.Configs) != 1 || list.Configs[0].Name != "default" || list.Configs[0].Config.Settings.Bucket != "snaps" {
		t.Fatalf("list = %+v", list)
	}
	f.want(f.do(admin, "GET", repoPrefix+"/nope", nil), http.StatusNotFound)

	// A deployment with a schedule; take one now, read it, restore.
	body := createBody("snap", 1024, 1)
	secs := 120
	body.Snapshot = &service.SnapshotPolicyRequest{IntervalSecs: &secs}
	var dep service.CreateResult
	f.want(f.do(admin, "POST", "/deployments", body), http.StatusCreated).decode(t, &dep)
	id := dep.Deployment.ID
	var v service.SnapshotsView
	f.want(f.do(service.RolePlatformViewer, "GET", "/deployments/"+id+"/snapshots", nil), http.StatusOK).decode(t, &v)
	if v.Policy.IntervalSeconds != 120 || v.Repository != "default" || len(v.Snapshots) != 0 {
		t.Fatalf("snapshots = %+v", v)
	}
	f.want(f.do(service.RolePlatformViewer, "POST", "/deployments/"+id+"/snapshots", nil), http.StatusForbidden)
	var rec engine.SnapshotRecord
	f.want(f.do(service.RoleDeploymentManager, "POST", "/deployments/"+id+"/snapshots", nil), http.StatusAccepted).decode(t, &rec)
	if rec.Status != engine.SnapshotRequested || rec.Name == "" {
		t.Fatalf("take = %+v", rec)
	}
	f.want(f.do(admin, "GET", "/deployments/"+id+"/snapshots/"+rec.Name, nil), http.StatusOK)
	f.want(f.do(admin, "GET", "/deployments/"+id+"/snapshots/snap-nope", nil), http.StatusNotFound)
	// Not restorable until it succeeded.
	f.want(f.do(admin, "POST", "/deployments/"+id+"/snapshots/"+rec.Name+"/_restore", nil), http.StatusConflict)
	f.want(f.do(admin, "POST", "/deployments/"+id+"/snapshots/_latest/_restore", RestoreBody{Indices: "a b"}), http.StatusBadRequest)
	f.want(f.do(admin, "GET", "/deployments/"+id+"/restore", nil), http.StatusNotFound)

	var pol engine.SnapshotPolicy
	f.want(f.do(admin, "PUT", "/deployments/"+id+"/snapshot-policy", map[string]any{"keep_last": 3}), http.StatusOK).decode(t, &pol)
	if pol.KeepLast != 3 || pol.IntervalSeconds != 120 {
		t.Fatalf("policy = %+v", pol)
	}
	f.want(f.do(admin, "PUT", "/deployments/"+id+"/snapshot-policy", map[string]any{"keep_last": 0}), http.StatusBadRequest)
	// The repository in use cannot go.
	f.want(f.do(admin, "DELETE", repoPrefix+"/default", nil), http.StatusConflict)
	// Restore from a deployment without snapshots.
	b2 := createBody("copy", 1024, 1)
	b2.RestoreFrom = "0123456789abcdef0123456789abcdef"
	f.want(f.do(admin, "POST", "/deployments", b2), http.StatusNotFound)
}
