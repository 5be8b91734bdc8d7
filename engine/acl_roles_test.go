package engine_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"paddock/engine"
)

// TestRolesLeastPrivilege proves on a real ZooKeeper that every role can
// write, create and read exactly its row of DESIGN.md's table and that
// ZooKeeper itself refuses (NoAuth) everything else. The expectations
// are written here from DESIGN.md, independently of engine/acl.go.
func TestRolesLeastPrivilege(t *testing.T) {
	p := env.Fresh(t, "zone-1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ownA1 := engine.Credential{User: engine.OwnAllocatorUser("a1"), Password: engine.RandomToken(12)}
	ownA2 := engine.Credential{User: engine.OwnAllocatorUser("a2"), Password: engine.RandomToken(12)}
	stores := map[string]*engine.Store{
		"admin":       p.Admin,
		"constructor": p.Connect(t, engine.RoleConstructor),
		"a1":          p.ConnectAllocator(t, "a1", ownA1), // the allocator the paths belong to
		"a2":          p.ConnectAllocator(t, "a2", ownA2), // another allocator
		"proxy":       p.Connect(t, engine.RoleProxy),
		"director":    p.Connect(t, engine.RoleDirector),
	}
	roles := []string{"admin", "constructor", "a1", "a2", "proxy", "director"}

	// The tree, created by the super user with the table's ACLs.
	su := env.Super(t)
	su.SetIdentities(p.Admin.Identities())
	mk := func(path string, v any) {
		t.Helper()
		if err := su.Create(ctx, path, v); err != nil && !errors.Is(err, engine.ErrExists) {
			t.Fatalf("create %s: %v", path, err)
		}
	}
	// Allocator records: created by each allocator (its own identity is
	// in their ACL), as the allocator contract has it.
	if err := stores["a1"].Create(ctx, engine.AllocatorPath("a1"), engine.Allocator{ID: "a1", Zone: "zone-1", Identity: ownA1.DigestID()}); err != nil {
		t.Fatal(err)
	}
	if err := stores["a2"].Create(ctx, engine.AllocatorPath("a2"), engine.Allocator{ID: "a2", Zone: "zone-1", Identity: ownA2.DigestID()}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		engine.AllocatorAlivePath("a1"), engine.AllocatorMaintenancePath("a1"), engine.AllocatorSettingsPath("a1"),
		engine.InstancesPath("a1"), engine.InstancePath("a1", "i1"), engine.StatusesPath("a1"), engine.StatusPath("a1", "i1"),
		engine.DeploymentPath("d1"), engine.PlansPath("d1"), engine.PendingPlanPath("d1"), engine.ReplicationPath("d1"), engine.RoutePath("d1"),
		engine.ProxyPath("p1"), engine.PathLeaderCons + "/n-0000000001", engine.PathCA, engine.PathTokens,
		engine.TokenPath("t1"), engine.APIKeyPath("k1"), engine.RequestPath("r1"), engine.PathTrafficFilters, engine.TrafficFilterPath("f1"),
		engine.PathCredentials, engine.CredentialsPath("d1"),
		engine.PathRepositories, engine.RepositoryPath("r1"), engine.RepositorySecretPath("r1"),
		engine.PathSnapshots, engine.SnapshotPolicyPath("d1"), engine.SnapshotRecordPath("d1", "s1"),
		engine.PathRestores, engine.RestorePath("d1"),
	} {
		mk(path, map[string]string{"test": "x"})
	}

	all := func(except ...string) []string {
		var out []string
		for _, r := range roles {
			if !slices.Contains(except, r) {
				out = append(out, r)
			}
		}
		return out
	}
	type row struct {
		path string
		// writers may set the znode's data; readers may get it (nil:
		// every role).
		writers, readers []string
	}
	table := []row{
		{engine.Root, []string{"admin"}, nil},
		{engine.PathConfig, []string{"admin"}, nil},
		{engine.ZonePath("zone-1"), []string{"admin"}, nil},
		{engine.PathAllocators, []string{"admin"}, nil},
		{engine.AllocatorPath("a1"), []string{"a1"}, all("a2")},
		{engine.AllocatorAlivePath("a1"), []string{"a1"}, all("a2")},
		{engine.AllocatorMaintenancePath("a1"), []string{"admin"}, []string{"admin", "constructor", "a1", "proxy"}},
		{engine.AllocatorSettingsPath("a1"), []string{"admin"}, []string{"admin", "constructor", "a1"}},
		{engine.InstancesPath("a1"), []string{"constructor"}, []string{"admin", "constructor", "a1"}},
		{engine.InstancePath("a1", "i1"), []string{"constructor"}, []string{"admin", "constructor", "a1"}},
		{engine.StatusesPath("a1"), []string{"a1"}, []string{"admin", "constructor", "a1"}},
		{engine.StatusPath("a1", "i1"), []string{"a1"}, []string{"admin", "constructor", "a1"}},
		{engine.DeploymentPath("d1"), []string{"admin", "constructor"}, []string{"admin", "constructor"}},
		{engine.PendingPlanPath("d1"), []string{"admin", "constructor"}, []string{"admin", "constructor"}},
		{engine.ReplicationPath("d1"), []string{"constructor"}, []string{"admin", "constructor"}},
		{engine.RoutePath("d1"), []string{"constructor"}, []string{"admin", "constructor", "proxy"}},
		{engine.PathProxies, nil, []string{"admin", "constructor", "proxy"}},
		{engine.ProxyPath("p1"), []string{"proxy"}, []string{"admin", "constructor", "proxy"}},
		{engine.PathLeaderCons + "/n-0000000001", []string{"constructor"}, []string{"admin", "constructor"}},
		{engine.PathCA, []string{"director"}, nil}, // public: world-readable
		{engine.TokenPath("t1"), []string{"director"}, []string{"director"}},
		{engine.APIKeyPath("k1"), []string{"admin"}, []string{"admin"}},
		{engine.RequestPath("r1"), []string{"admin"}, []string{"admin"}},
		{engine.TrafficFilterPath("f1"), []string{"admin"}, []string{"admin", "proxy"}},
		// Password hashes and the platform secret: never the proxy or the director.
		{engine.PathCredentials, []string{"admin"}, []string{"admin", "constructor", "a1", "a2"}},
		{engine.CredentialsPath("d1"), []string{"admin"}, []string{"admin", "constructor", "a1", "a2"}},
		// Repository S3 keys: the admin and the constructor only.
		{engine.RepositoryPath("r1"), []string{"admin"}, []string{"admin", "constructor"}},
		{engine.RepositorySecretPath("r1"), []string{"admin"}, []string{"admin", "constructor"}},
		{engine.SnapshotPolicyPath("d1"), []string{"admin", "constructor"}, []string{"admin", "constructor"}},
		{engine.SnapshotRecordPath("d1", "s1"), []string{"admin", "constructor"}, []string{"admin", "constructor"}},
		{engine.RestorePath("d1"), []string{"admin", "constructor"}, []string{"admin", "constructor"}},
	}
	for _, r := range table {
		data, _, err := su.Get(ctx, r.path)
		if err != nil {
			t.Fatalf("read %s as super: %v", r.path, err)
		}
		readers := r.readers
		if readers == nil {
			readers = roles
		}
		for _, role := range roles {
			s := stores[role]
			t.Run("set "+r.path+" as "+role, func(t *testing.T) {
				_, err := s.Set(ctx, r.path, data, engine.AnyVersion)
				checkAllowed(t, err, slices.Contains(r.writers, role))
			})
			t.Run("get "+r.path+" as "+role, func(t *testing.T) {
				_, _, err := s.Get(ctx, r.path)
				checkAllowed(t, err, slices.Contains(readers, role))
			})
		}
	}

	// Creating children: the parent's create right.
	creates := []struct {
		parent   string
		creators []string
	}{
		{engine.PathZones, []string{"admin"}},
		{engine.PathDeployments, []string{"admin", "constructor"}},
		{engine.PathRoutes, []string{"constructor"}},
		{engine.PathProxies, []string{"proxy"}},
		{engine.PathLeaderCons, []string{"constructor"}},
		{engine.PathTokens, []string{"director"}},
		{engine.PathAPIKeys, []string{"admin"}},
		{engine.PathTrafficFilters, []string{"admin"}},
		{engine.PathCredentials, []string{"admin"}},
		{engine.PathRepositories, []string{"admin"}},
		{engine.RepositoryPath("r1"), []string{"admin"}},
		{engine.PathSnapshots, []string{"admin", "constructor"}},
		{engine.SnapshotPolicyPath("d1"), []string{"admin", "constructor"}},
		{engine.PathRestores, []string{"admin", "constructor"}},
		{engine.InstancesPath("a1"), []string{"constructor"}},
		{engine.StatusesPath("a1"), []string{"a1"}},
	}
	for _, c := range creates {
		for _, role := range roles {
			t.Run("create under "+c.parent+" as "+role, func(t *testing.T) {
				child := c.parent + "/made-by-" + role
				err := stores[role].Create(ctx, child, map[string]string{"by": role})
				checkAllowed(t, err, slices.Contains(c.creators, role))
				if err == nil {
					if err := su.Delete(ctx, child, engine.AnyVersion); err != nil {
						t.Fatalf("clean up %s: %v", child, err)
					}
				}
			})
		}
	}
}

func checkAllowed(t *testing.T, err error, allowed bool) {
	t.Helper()
	switch {
	case allowed && err != nil:
		t.Fatalf("refused, want allowed: %v", err)
	case !allowed && err == nil:
		t.Fatal("allowed, want refused by ZooKeeper (NoAuth)")
	case !allowed && !errors.Is(err, engine.ErrNoAuth):
		t.Fatalf("got %v, want ErrNoAuth", err)
	}
}
