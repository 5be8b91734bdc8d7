package data

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"time"

	"paddock/engine"
)

// Tree is an in-memory Reader: fixtures for tests and benchmarks, the
// same shape as the ZooKeeper tree the caches mirror.
type Tree struct {
	nodes map[string][]byte
	mzxid map[string]int64
	kids  map[string]map[string]struct{}
	zxid  int64
}

// NewTree returns an empty tree.
func NewTree() *Tree {
	return &Tree{nodes: map[string][]byte{}, mzxid: map[string]int64{}, kids: map[string]map[string]struct{}{}}
}

// Put stores v (JSON) at p, creating parents.
func (t *Tree) Put(p string, v any) {
	var b []byte
	switch x := v.(type) {
	case nil:
	case []byte:
		b = x
	case string:
		b = []byte(x)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			panic(err)
		}
	}
	for q := p; q != "/" && q != "."; q = path.Dir(q) {
		par := path.Dir(q)
		if t.kids[par] == nil {
			t.kids[par] = map[string]struct{}{}
		}
		t.kids[par][path.Base(q)] = struct{}{}
		if _, ok := t.nodes[par]; !ok && par != "/" {
			t.nodes[par] = nil
		}
	}
	t.zxid++
	t.nodes[p] = b
	t.mzxid[p] = t.zxid
}

// Delete removes p and its subtree.
func (t *Tree) Delete(p string) {
	for k := range t.nodes {
		if k == p || len(k) > len(p) && k[:len(p)+1] == p+"/" {
			delete(t.nodes, k)
			delete(t.kids, k)
		}
	}
	if m := t.kids[path.Dir(p)]; m != nil {
		delete(m, path.Base(p))
	}
	t.zxid++
}

// Get implements Reader. Every Put bumps the node's Mzxid, as
// ZooKeeper does, so decoders memoise fixture nodes correctly.
func (t *Tree) Get(p string) (engine.CachedNode, bool) {
	b, ok := t.nodes[p]
	if !ok {
		return engine.CachedNode{}, false
	}
	return engine.CachedNode{Path: p, Data: b, Stat: engine.Stat{Mzxid: t.mzxid[p]}}, true
}

// Children implements Reader.
func (t *Tree) Children(p string) []string {
	m := t.kids[p]
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// FixtureTime is the fixed "now" of fixtures and golden tests.
var FixtureTime = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

// SmallFixture is a platform of three zones, four allocators (one lost,
// one in maintenance), five deployments in every health and a running
// plan: the golden tests' data.
func SmallFixture() *Tree {
	t := NewTree()
	now := FixtureTime
	t.Put(engine.PathConfig, engine.PlatformConfig{Name: "paddock", Domain: "localhost", Versions: engine.DefaultVersions, CreatedAt: now.Add(-48 * time.Hour)})
	for _, z := range []string{"zone-1", "zone-2", "zone-3"} {
		t.Put(engine.ZonePath(z), engine.Zone{Name: z, CreatedAt: now})
	}
	type alloc struct {
		id, zone    string
		capMB       int
		alive       bool
		maintenance bool
	}
	allocs := []alloc{
		{"alloc-a1", "zone-1", 8192, true, false},
		{"alloc-b1", "zone-2", 8192, true, false},
		{"alloc-b2", "zone-2", 4096, true, true},
		{"alloc-c1", "zone-3", 4096, false, false},
	}
	for _, a := range allocs {
		t.Put(engine.AllocatorPath(a.id), engine.Allocator{ID: a.id, Zone: a.zone, Host: "127.0.0.1", CapacityMB: a.capMB, Runtime: "docker", Version: "0.1.0", RegisteredAt: now.Add(-time.Hour)})
		t.Put(engine.InstancesPath(a.id), nil)
		t.Put(engine.StatusesPath(a.id), nil)
		if a.maintenance {
			t.Put(engine.AllocatorMaintenancePath(a.id), engine.Maintenance{On: true, Since: now.Add(-10 * time.Minute), By: "admin"})
		}
	}
	type dep struct {
		id, name, status string
		sizeMB           int
		zones            []string // allocator per instance
		healthy          []bool
		pending          bool
	}
	deps := []dep{
		{"0a1b2c3d4e5f60718293a4b5c6d7e8f9", "logs-prod", engine.DeploymentRunning, 2048, []string{"alloc-a1", "alloc-b1"}, []bool{true, true}, false},
		{"1b2c3d4e5f60718293a4b5c6d7e8f90a", "metrics", engine.DeploymentRunning, 1024, []string{"alloc-a1", "alloc-c1"}, []bool{true, false}, false},
		{"2c3d4e5f60718293a4b5c6d7e8f90a1b", "search-staging", engine.DeploymentReconfiguring, 1024, []string{"alloc-b1"}, []bool{true}, true},
		{"3d4e5f60718293a4b5c6d7e8f90a1b2c", "audit", engine.DeploymentFailed, 512, []string{"alloc-c1"}, []bool{false}, false},
		{"4e5f60718293a4b5c6d7e8f90a1b2c3d", "new-cluster", engine.DeploymentInitializing, 1024, nil, nil, true},
	}
	used := map[string]int{}
	count := map[string]int{}
	for di, d := range deps {
		var placed []engine.PlacedInstance
		for i, al := range d.zones {
			zone := ""
			for _, a := range allocs {
				if a.id == al {
					zone = a.zone
				}
			}
			iid := fmt.Sprintf("%s-es-%d", d.id[:8], i)
			pi := engine.PlacedInstance{ID: iid, Kind: engine.KindElasticsearch, Allocator: al, Zone: zone, SizeMB: d.sizeMB, Version: "8.17.0"}
			placed = append(placed, pi)
			t.Put(engine.InstancePath(al, iid), engine.Instance{ID: iid, DeploymentID: d.id, Kind: pi.Kind, Version: pi.Version, SizeMB: pi.SizeMB, Zone: zone, CreatedAt: now.Add(-time.Hour)})
			state := engine.StateRunning
			if !d.healthy[i] {
				state = engine.StateUnhealthy
			}
			t.Put(engine.StatusPath(al, iid), engine.InstanceStatus{ID: iid, DeploymentID: d.id, Kind: pi.Kind, Version: pi.Version, SizeMB: pi.SizeMB, State: state, Healthy: d.healthy[i], Address: fmt.Sprintf("127.0.0.1:%d", 32768+di*10+i), Restarts: i, UpdatedAt: now})
			used[al] += d.sizeMB
			count[al]++
		}
		spec := engine.DeploymentSpec{Version: "8.17.0", Elasticsearch: engine.Topology{SizeMB: d.sizeMB, Zones: max(1, len(d.zones))}}
		t.Put(engine.DeploymentPath(d.id), engine.Deployment{ID: d.id, Name: d.name, CreatedAt: now.Add(-time.Duration(di+1) * time.Hour), UpdatedAt: now, Spec: spec, Instances: placed, Status: d.status, LastPlanStatus: engine.PlanSuccess})
		t.Put(engine.PlanHistoryEntryPath(d.id, "plan-0000000000"), engine.Plan{ID: "p0-" + d.id[:6], DeploymentID: d.id, Action: engine.ActionCreate, Spec: spec, Status: engine.PlanSuccess, CreatedAt: now.Add(-time.Hour)})
		if d.status == engine.DeploymentFailed {
			bigger := spec
			bigger.Elasticsearch.SizeMB *= 2
			t.Put(engine.PlanHistoryEntryPath(d.id, "plan-0000000001"), engine.Plan{ID: "p1-" + d.id[:6], DeploymentID: d.id, Action: engine.ActionUpdate, Spec: bigger, Status: engine.PlanRolledBack,
				CreatedAt: now.Add(-30 * time.Minute), EndedAt: ptr(now.Add(-18 * time.Minute)), Steps: []engine.PlanStep{
					{Name: "validate", Status: engine.PlanSuccess, Started: now.Add(-30 * time.Minute), Ended: ptr(now.Add(-30 * time.Minute))},
					{Name: "wait-healthy", Status: engine.PlanError, Started: now.Add(-29 * time.Minute), Ended: ptr(now.Add(-19 * time.Minute)), Message: "instance never became healthy"},
					{Name: "rollback", Status: engine.PlanSuccess, Started: now.Add(-19 * time.Minute), Ended: ptr(now.Add(-18 * time.Minute)), Message: "back to the last good topology"},
				}})
		}
		if d.pending {
			// search-staging is held on a step past its deadline (a
			// node that never becomes healthy); new-cluster is on time.
			at := now
			if d.name == "search-staging" {
				at = now.Add(-12 * time.Minute)
			}
			steps := []engine.PlanStep{
				{Name: "validate", Status: engine.PlanSuccess, Started: at.Add(-62 * time.Second), Ended: ptr(at.Add(-50 * time.Second))},
				{Name: "place-instances", Status: engine.PlanSuccess, Started: at.Add(-50 * time.Second), Ended: ptr(at.Add(-41 * time.Second)), Message: "2 new instances on alloc-a1, alloc-b1"},
				{Name: "wait-healthy", Status: engine.PlanRunning, Started: at.Add(-41 * time.Second), Message: "1 of 2 healthy",
					Deadline: ptr(at.Add(10 * time.Minute)), Waiting: "1 of 2 instances healthy; waiting for instance " + d.id[:8] + "-es-1 on alloc-b1"},
			}
			var incoming []engine.PlacedInstance
			if len(placed) == 0 {
				// The plan's first instance, placed, not yet a member.
				incoming = []engine.PlacedInstance{{ID: d.id[:8] + "-es-0", Kind: engine.KindElasticsearch, Allocator: "alloc-a1", Zone: "zone-1", SizeMB: d.sizeMB, Version: "8.17.0"}}
			}
			t.Put(engine.PendingPlanPath(d.id), engine.Plan{ID: "p2-" + d.id[:6], DeploymentID: d.id, Action: engine.ActionUpdate, Spec: spec, Status: engine.PlanRunning, Steps: steps,
				CreatedAt: at.Add(-62 * time.Second), CreatedBy: "admin", Leader: "constructor-1", NewInstances: incoming})
		}
		if len(placed) > 0 {
			var be []engine.Backend
			for _, p := range placed {
				be = append(be, engine.Backend{InstanceID: p.ID, Kind: p.Kind, Allocator: p.Allocator, Zone: p.Zone, Address: "127.0.0.1:9400"})
			}
			t.Put(engine.RoutePath(d.id), engine.Route{DeploymentID: d.id, State: engine.RouteLive, Backends: be, Generation: 3, UpdatedAt: now})
		}
	}
	// Snapshots: logs-prod and search-staging are fresh; metrics' last
	// good one is 70 minutes old and its last attempt failed (overdue).
	snap := func(dep string, ago time.Duration, status, errMsg string) {
		at := now.Add(-ago)
		name := engine.SnapshotName(at)
		t.Put(engine.SnapshotRecordPath(dep, name), engine.SnapshotRecord{Name: name, Repository: engine.DefaultRepository, Trigger: engine.TriggerSchedule,
			Status: status, CreatedAt: at, StartedAt: &at, EndedAt: &at, DurationMS: 1200, SizeBytes: 48 << 20, IncrementalBytes: 3 << 20, Error: errMsg})
	}
	snap(deps[0].id, 10*time.Minute, engine.SnapshotSuccess, "")
	snap(deps[1].id, 70*time.Minute, engine.SnapshotSuccess, "")
	snap(deps[1].id, 5*time.Minute, engine.SnapshotFailed, "register the repository on the node: connection refused")
	snap(deps[2].id, 20*time.Minute, engine.SnapshotSuccess, "")
	for _, a := range allocs {
		if !a.alive {
			continue
		}
		t.Put(engine.AllocatorAlivePath(a.id), engine.AllocatorAlive{CapacityMB: a.capMB, UsedMB: used[a.id], FreeMB: a.capMB - used[a.id], Instances: count[a.id], Healthy: count[a.id], DockerOK: true, StartedAt: now.Add(-time.Hour), UpdatedAt: now})
	}
	t.Put(engine.ProxyPath("proxy-1"), engine.ProxyRecord{ID: "proxy-1", HTTPAddr: "127.0.0.1:9200", HTTPSAddr: "127.0.0.1:9243", State: "serving", Routes: 4, StartedAt: now.Add(-2 * time.Hour), UpdatedAt: now})
	t.Put(engine.ProxyPath("proxy-2"), engine.ProxyRecord{ID: "proxy-2", HTTPAddr: "10.0.0.7:9200", State: "serving", Routes: 4, StartedAt: now.Add(-30 * time.Minute), UpdatedAt: now})
	t.Put(path.Join(engine.PathLeaderCons, "c-0000000003"), "constructor-1")
	return t
}

// LargeFixture is a platform of nAlloc allocators over three zones and
// nDep deployments of two instances each (render benchmarks).
func LargeFixture(nAlloc, nDep int) *Tree {
	t := NewTree()
	now := FixtureTime
	t.Put(engine.PathConfig, engine.PlatformConfig{Name: "paddock", Domain: "localhost", Versions: engine.DefaultVersions})
	zones := []string{"zone-1", "zone-2", "zone-3"}
	for _, z := range zones {
		t.Put(engine.ZonePath(z), engine.Zone{Name: z})
	}
	used := make([]int, nAlloc)
	for i := 0; i < nDep; i++ {
		id := fmt.Sprintf("%032x", i+1)
		var placed []engine.PlacedInstance
		for k := 0; k < 2; k++ {
			ai := (i*2 + k) % nAlloc
			al := fmt.Sprintf("alloc-%05d", ai)
			iid := fmt.Sprintf("%s-%d", id[24:], k)
			placed = append(placed, engine.PlacedInstance{ID: iid, Kind: engine.KindElasticsearch, Allocator: al, Zone: zones[ai%3], SizeMB: 1024, Version: "8.17.0"})
			t.Put(engine.InstancePath(al, iid), engine.Instance{ID: iid, DeploymentID: id, Kind: engine.KindElasticsearch, SizeMB: 1024, Zone: zones[ai%3]})
			t.Put(engine.StatusPath(al, iid), engine.InstanceStatus{ID: iid, DeploymentID: id, State: engine.StateRunning, Healthy: i%17 != 0})
			used[ai] += 1024
		}
		t.Put(engine.DeploymentPath(id), engine.Deployment{ID: id, Name: fmt.Sprintf("dep-%05d", i), Instances: placed, Status: engine.DeploymentRunning, Spec: engine.DeploymentSpec{Version: "8.17.0", Elasticsearch: engine.Topology{SizeMB: 1024, Zones: 2}}, CreatedAt: now})
		if i%50 == 0 {
			t.Put(engine.PendingPlanPath(id), engine.Plan{ID: "p-" + id[:6], DeploymentID: id, Status: engine.PlanRunning, CreatedAt: now.Add(-time.Duration(i) * time.Second), Steps: []engine.PlanStep{{Name: "wait-healthy", Status: engine.PlanRunning, Started: now.Add(-10 * time.Second)}}})
		}
	}
	for i := 0; i < nAlloc; i++ {
		id := fmt.Sprintf("alloc-%05d", i)
		t.Put(engine.AllocatorPath(id), engine.Allocator{ID: id, Zone: zones[i%3], CapacityMB: 16384})
		if i%97 != 0 {
			t.Put(engine.AllocatorAlivePath(id), engine.AllocatorAlive{CapacityMB: 16384, UsedMB: used[i], FreeMB: 16384 - used[i], DockerOK: true})
		}
	}
	t.Put(engine.ProxyPath("proxy-1"), engine.ProxyRecord{ID: "proxy-1", HTTPAddr: "127.0.0.1:9200", State: "serving"})
	t.Put(path.Join(engine.PathLeaderCons, "c-0000000001"), "constructor-1")
	return t
}

func ptr[T any](v T) *T { return &v }

// Walk visits every node of the tree, parents before children.
func (t *Tree) Walk(fn func(p string, data []byte)) {
	var visit func(p string)
	visit = func(p string) {
		if b, ok := t.nodes[p]; ok {
			fn(p, b)
		}
		for _, k := range t.Children(p) {
			visit(path.Join(p, k))
		}
	}
	for _, k := range t.Children("/") {
		visit("/" + k)
	}
}
