package constructor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"paddock/engine"
)

// routeTable is the leader's copy of /paddock/routes. Only the
// constructor writes routes and only its leader, fenced: the table is
// read once when leading starts and then follows the leader's own
// writes, so a route write costs no read (a cache would re-read each
// route after writing it, and re-list 10,000 names per new route).
type routeTable struct {
	mu sync.Mutex
	m  map[string]routeEntry
}

type routeEntry struct {
	r   engine.Route
	ver engine.Version
}

func newRouteTable() *routeTable { return &routeTable{m: map[string]routeEntry{}} }

// load reads every route, pipelined, retrying with backoff until ctx
// ends.
func (t *routeTable) load(ctx context.Context, s *engine.Store) error {
	read := func() (map[string]routeEntry, error) {
		raw, err := s.ReadChildren(ctx, engine.PathRoutes)
		if err != nil {
			return nil, err
		}
		out := make(map[string]routeEntry, len(raw))
		for id, b := range raw {
			var r engine.Route
			if json.Unmarshal(b, &r) != nil {
				continue // malformed: rewritten by the next route write
			}
			out[id] = routeEntry{r: r, ver: -1}
		}
		return out, nil
	}
	m, err := backoff.Retry(ctx, read, backoff.WithBackOff(backoff.NewExponentialBackOff()), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return fmt.Errorf("read the routes: %w", err)
	}
	t.mu.Lock()
	t.m = m
	t.mu.Unlock()
	return nil
}

func (t *routeTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

func (t *routeTable) get(depID string) (engine.Route, engine.Version, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[depID]
	return e.r, e.ver, ok
}

func (t *routeTable) set(depID string, r engine.Route, ver engine.Version) {
	t.mu.Lock()
	t.m[depID] = routeEntry{r: r, ver: ver}
	t.mu.Unlock()
}

func (t *routeTable) drop(depID string) {
	t.mu.Lock()
	delete(t.m, depID)
	t.mu.Unlock()
}

// refresh re-reads one route (after a write lost a race it should never
// lose: an operator's hand, a deposed leader's late write refused).
func (t *routeTable) refresh(ctx context.Context, s *engine.Store, depID string) error {
	var r engine.Route
	v, err := s.GetJSON(ctx, engine.RoutePath(depID), &r)
	if errors.Is(err, engine.ErrNotFound) {
		t.drop(depID)
		return nil
	}
	if err != nil {
		return err
	}
	t.set(depID, r, v)
	return nil
}

// routeOp is the write that makes a deployment's route backends and
// state (nil when it already is), and what the table holds after it.
func (t *routeTable) routeOp(depID string, backends []engine.Backend, state string) (*engine.Op, engine.Route) {
	if backends == nil {
		backends = []engine.Backend{}
	}
	cur, ver, ok := t.get(depID)
	if ok && cur.State == state && sameBackends(cur.Backends, backends) {
		return nil, cur
	}
	r := cur
	if !ok {
		r = engine.Route{DeploymentID: depID, Generation: 0}
	}
	if !ok || !sameBackends(cur.Backends, backends) {
		r.Generation++
	}
	r.DeploymentID, r.State, r.Backends, r.UpdatedAt = depID, state, backends, time.Now().UTC()
	if !ok {
		op := engine.OpCreate(engine.RoutePath(depID), r)
		return &op, r
	}
	op := engine.OpSet(engine.RoutePath(depID), r, ver)
	return &op, r
}

// stateOp pauses or resumes a route without touching its backends (nil
// when there is no route or it already is so).
func (t *routeTable) stateOp(depID, state string) (*engine.Op, engine.Route) {
	cur, ver, ok := t.get(depID)
	if !ok || cur.State == state {
		return nil, cur
	}
	r := cur
	r.State, r.UpdatedAt = state, time.Now().UTC()
	op := engine.OpSet(engine.RoutePath(depID), r, ver)
	return &op, r
}

// backends lists the healthy Elasticsearch instances among ins, with the
// addresses their allocators report.
func (l *leader) backends(ins []engine.PlacedInstance) []engine.Backend {
	var out []engine.Backend
	for _, in := range ins {
		if in.Kind != engine.KindElasticsearch {
			continue
		}
		st, ok := l.status(in.Allocator, in.ID)
		if !ok || !st.Healthy || st.State != engine.StateRunning || st.Address == "" || !l.alive(in.Allocator) {
			continue
		}
		out = append(out, backendOf(in, st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].InstanceID < out[j].InstanceID })
	return out
}

// backendOf is the route entry of a healthy instance: the allocator's
// mTLS tunnel (proxies send the SNI stunnel.BackendSNI(instance id))
// when its allocator runs one, else the node's plain address.
func backendOf(in engine.PlacedInstance, st engine.InstanceStatus) engine.Backend {
	b := engine.Backend{InstanceID: in.ID, Kind: in.Kind, Allocator: in.Allocator, Zone: in.Zone, Address: st.Address}
	if st.TunnelAddr != "" {
		b.Address, b.TLS = st.TunnelAddr, true
	}
	return b
}

func sameBackends(a, b []engine.Backend) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// writeRoute sets a deployment's route to backends and state now (a
// fenced write of its own), bumping the generation when the backends
// change and creating the route if missing.
func (l *leader) writeRoute(ctx context.Context, depID string, backends []engine.Backend, state string) error {
	return l.writeRouteOp(ctx, depID, func() (*engine.Op, engine.Route) { return l.routes.routeOp(depID, backends, state) })
}

// setRouteState pauses or resumes a route without touching its backends.
func (l *leader) setRouteState(ctx context.Context, depID, state string) error {
	return l.writeRouteOp(ctx, depID, func() (*engine.Op, engine.Route) { return l.routes.stateOp(depID, state) })
}

func (l *leader) writeRouteOp(ctx context.Context, depID string, mk func() (*engine.Op, engine.Route)) error {
	// A lost race (a route changed or removed behind the table: only a
	// deposed leader's write, refused, or an operator's hand) re-reads
	// the route once and tries again.
	write := func() (struct{}, error) {
		op, r := mk()
		if op == nil {
			return struct{}{}, nil
		}
		res, err := l.s.MultiResults(ctx, l.fenced(*op)...)
		if err == nil {
			l.routes.set(depID, r, res[1].Version)
			l.m.routeWrites.Inc()
			return struct{}{}, nil
		}
		if i, ok := engine.FailedOp(err); ok && i == 0 {
			return struct{}{}, backoff.Permanent(fmt.Errorf("%w: %v", errLost, err))
		}
		if !(errors.Is(err, engine.ErrConflict) || errors.Is(err, engine.ErrExists) || errors.Is(err, engine.ErrNotFound)) {
			return struct{}{}, backoff.Permanent(fmt.Errorf("write route of %s: %w", depID, err))
		}
		if rerr := l.routes.refresh(ctx, l.s, depID); rerr != nil {
			return struct{}{}, backoff.Permanent(fmt.Errorf("write route of %s: %w (and re-read: %v)", depID, err, rerr))
		}
		return struct{}{}, fmt.Errorf("write route of %s: %w", depID, err)
	}
	_, err := backoff.Retry(ctx, write, backoff.WithBackOff(backoff.NewConstantBackOff(10*time.Millisecond)), backoff.WithMaxTries(2))
	return err
}

// syncRoutes keeps the routes of deployments without a running plan in
// step with their instances' health and addresses (an allocator restart
// changes a node's port; an unhealthy node leaves the route). It works
// on the leader's state: no read unless a route is about to change.
//
// A sweep looks at the deployments whose records, plan or instances'
// statuses or allocators changed since the last sweep; every
// fullRouteSweep sweeps it looks at all of them (a route written while a
// plan ran, a change it skipped because a plan was pending).
func (l *leader) syncRoutes(ctx context.Context) {
	l.routeSweeps++
	ids := l.w.takeChanged()
	if l.routeSweeps%fullRouteSweep == 1 {
		ids = l.w.deploymentIDs()
	}
	for _, id := range ids {
		if l.busy(id) {
			continue
		}
		if _, _, pending := l.w.pending(id); pending {
			continue
		}
		d, _, ok := l.w.deployment(id)
		// LastPlanStatus pending or running: the cache has not seen the
		// plan's end yet (its znodes update independently); wait for it.
		if !ok || d.Status == engine.DeploymentDeleted || len(d.Instances) == 0 || planUnfinished(d) {
			continue
		}
		r, _, ok := l.routes.get(id)
		if !ok {
			continue
		}
		want := l.backends(d.Instances)
		if len(want) == 0 && len(r.Backends) > 0 {
			// Every node looks down: keep the last known backends (the
			// proxy skips dead zones) rather than serving nothing.
			continue
		}
		if sameBackends(r.Backends, want) && r.State == engine.RouteLive {
			continue
		}
		// About to change a route: confirm from ZooKeeper itself that no
		// plan runs and the deployment is what the cache says.
		var fresh engine.Deployment
		if _, err := l.s.GetJSON(ctx, engine.DeploymentPath(id), &fresh); err != nil || planUnfinished(fresh) {
			continue
		}
		if ok, _, err := l.s.Exists(ctx, engine.PendingPlanPath(id)); err != nil || ok {
			continue
		}
		want = l.backends(fresh.Instances)
		if len(want) == 0 || (sameBackends(r.Backends, want) && r.State == engine.RouteLive) {
			continue
		}
		if err := l.writeRoute(ctx, id, want, engine.RouteLive); err != nil && ctx.Err() == nil {
			l.log.Warn("route update failed", "deployment", id, "err", err)
		}
	}
}

// fullRouteSweep: every this many sweeps, every deployment's route is
// checked (the others check the deployments that changed).
const fullRouteSweep = 10

// DockerPeerPort is the port nodes serve on inside their containers.
const DockerPeerPort = 9200

// peerURL is how the other nodes of a deployment reach a node: nodes in
// Docker containers talk over their deployment's network, where the
// allocator names each node paddock-<instance id> (its published
// host:port is only reachable from the host); other runtimes' nodes by
// their address.
func (l *leader) peerURL(in engine.PlacedInstance, addr string) string {
	if l.w.runtime(in.Allocator) == "docker" {
		return fmt.Sprintf("http://paddock-%s:%d", in.ID, DockerPeerPort)
	}
	return "http://" + addr
}

// planUnfinished: the deployment's last plan has not ended (the service
// records a plan pending, a constructor may mark it running; its end
// writes the result).
func planUnfinished(d engine.Deployment) bool {
	return d.LastPlanStatus == engine.PlanPending || d.LastPlanStatus == engine.PlanRunning
}
