package data

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"paddock/engine"
)

func TestBuildSmallFixture(t *testing.T) {
	t.Parallel()
	s := Build(SmallFixture(), nil)
	if len(s.Zones) != 3 || len(s.Allocators) != 4 || len(s.Deployments) != 5 || len(s.Proxies) != 2 {
		t.Fatalf("zones %d allocators %d deployments %d proxies %d", len(s.Zones), len(s.Allocators), len(s.Deployments), len(s.Proxies))
	}
	health := map[string]string{}
	for _, d := range s.Deployments {
		health[d.Name] = d.Health
	}
	for name, want := range map[string]string{
		"logs-prod": HealthHealthy, "metrics": HealthDegraded, "audit": HealthDown,
		"new-cluster": HealthPending, "search-staging": HealthHealthy,
	} {
		t.Run(name, func(t *testing.T) {
			if health[name] != want {
				t.Fatalf("health = %s, want %s", health[name], want)
			}
		})
	}
	if s.Frozen != "" {
		t.Fatalf("one lost allocator of four froze rescheduling: %s", s.Frozen)
	}
	if s.PendingPlans != 2 || s.Leader != "constructor-1" {
		t.Fatalf("pending %d leader %q", s.PendingPlans, s.Leader)
	}
	z3 := s.Zones[2]
	if z3.Name != "zone-3" || z3.Alive != 0 || z3.Allocators != 1 {
		t.Fatalf("zone-3: %+v", z3)
	}
	if s.Alerts[0].Severity != SevCritical || !strings.Contains(s.Alerts[0].Message, "alloc-c1") {
		t.Fatalf("first alert: %+v", s.Alerts[0])
	}
	if a, _ := s.Allocator("alloc-b2"); !a.Maintenance || a.State() != "maintenance" {
		t.Fatalf("alloc-b2: %+v", a)
	}
	if a, _ := s.Allocator("alloc-c1"); !a.Lost() || a.UsedMB() != 1536 {
		t.Fatalf("lost alloc-c1 used %d", a.UsedMB())
	}
}

func TestBuildAlerts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		tweak func(*Tree)
		want  string
	}{
		{"no leader", func(tr *Tree) { tr.Delete(engine.PathLeaderCons) }, "no constructor leader"},
		{"no proxy", func(tr *Tree) { tr.Delete(engine.PathProxies) }, "no proxy registered"},
		{"docker down", func(tr *Tree) {
			tr.Put(engine.AllocatorAlivePath("alloc-a1"), engine.AllocatorAlive{CapacityMB: 8192, DockerOK: false, Error: "socket refused"})
		}, "alloc-a1: Docker unreachable: socket refused"},
		{"majority lost", func(tr *Tree) {
			tr.Delete(engine.AllocatorAlivePath("alloc-a1"))
			tr.Delete(engine.AllocatorAlivePath("alloc-b1"))
		}, "rescheduling frozen (3 of 4 allocators look lost)"},
		{"whole zone of two lost", func(tr *Tree) {
			tr.Delete(engine.AllocatorAlivePath("alloc-b1"))
			tr.Delete(engine.AllocatorAlivePath("alloc-b2"))
		}, "every allocator of zone-2 (2) looks lost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := SmallFixture()
			tc.tweak(tr)
			s := Build(tr, nil)
			for _, a := range s.Alerts {
				if strings.Contains(a.Message, tc.want) {
					return
				}
			}
			t.Fatalf("no alert %q in %+v", tc.want, s.Alerts)
		})
	}
}

// TestDecoderMemo: a rebuild decodes only changed znodes and forgets
// removed ones.
func TestDecoderMemo(t *testing.T) {
	t.Parallel()
	tr := SmallFixture()
	d := NewDecoder()
	Build(tr, d)
	n := len(d.m)
	dep := Build(tr, nil).Deployments[0].Deployment
	dep.Status = engine.DeploymentFailed
	tr.Put(engine.DeploymentPath(dep.ID), dep)
	s := Build(tr, d)
	got, _ := s.Deployment(dep.ID)
	if got.Status != engine.DeploymentFailed {
		t.Fatalf("memo kept a stale decode: status %s", got.Status)
	}
	tr.Delete(engine.DeploymentPath(dep.ID))
	Build(tr, d)
	if len(d.m) >= n {
		t.Fatalf("memo did not forget removed znodes: %d >= %d", len(d.m), n)
	}
}

func TestBuildTrafficFilters(t *testing.T) {
	t.Parallel()
	tr := SmallFixture()
	const dep = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	tr.Put(engine.TrafficFilterPath("f1"), engine.TrafficFilterRuleSet{ID: "f1", Name: "office",
		Rules:        []engine.TrafficFilterRule{{Source: "10.0.0.0/8"}},
		Associations: []engine.TrafficFilterAssociation{{EntityType: engine.AssociationDeployment, ID: dep}}})
	s := Build(tr, nil)
	for _, d := range s.Deployments {
		want := 0
		if d.ID == dep {
			want = 1
		}
		if len(d.Filters) != want || (want == 1 && d.Filters[0] != "office") {
			t.Errorf("%s: filters %v", d.Name, d.Filters)
		}
	}
}

// TestBuildPasswordResets: the console learns whether a deployment has
// an elastic user and how often its password was reset, and nothing of
// the record's secrets reaches the snapshot.
func TestBuildPasswordResets(t *testing.T) {
	t.Parallel()
	tr := SmallFixture()
	const dep = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	tr.Put(engine.CredentialsPath(dep), engine.DeploymentCredentials{PlatformSecret: "platform-secret-never-shown",
		Users: []engine.CredentialUser{{Username: "elastic", PasswordHash: "$2a$10$hash-never-shown"}}, Resets: 2, ResetAt: &at})
	s := Build(tr, nil)
	found := false
	for _, d := range s.Deployments {
		if d.ID == dep {
			found = true
			if !d.Secured || d.PasswordResets != 2 || d.PasswordResetAt == nil || !d.PasswordResetAt.Equal(at) {
				t.Errorf("%s: secured %v, resets %d at %v", d.Name, d.Secured, d.PasswordResets, d.PasswordResetAt)
			}
		} else if d.Secured {
			t.Errorf("%s has no credentials record but shows as secured", d.Name)
		}
	}
	if !found {
		t.Fatal("fixture deployment missing")
	}
	if b, _ := json.Marshal(s); strings.Contains(string(b), "never-shown") {
		t.Fatal("a secret of the credentials record reached the snapshot")
	}
}
