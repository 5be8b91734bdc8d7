package constructor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"paddock/engine"
)

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

// writeRoute sets a deployment's route to backends and state, bumping the
// generation when the backends change. It creates the route if missing.
func (l *leader) writeRoute(ctx context.Context, depID string, backends []engine.Backend, state string) error {
	if backends == nil {
		backends = []engine.Backend{}
	}
	var r engine.Route
	_, err := l.s.Update(ctx, engine.RoutePath(depID), &r, func() error {
		if r.State == state && sameBackends(r.Backends, backends) {
			return engine.ErrNoChange
		}
		if !sameBackends(r.Backends, backends) {
			r.Generation++
		}
		r.DeploymentID, r.State, r.Backends, r.UpdatedAt = depID, state, backends, time.Now().UTC()
		return nil
	})
	if errors.Is(err, engine.ErrNotFound) {
		r = engine.Route{DeploymentID: depID, State: state, Backends: backends, Generation: 1, UpdatedAt: time.Now().UTC()}
		err = l.s.Create(ctx, engine.RoutePath(depID), r)
		if errors.Is(err, engine.ErrExists) {
			return l.writeRoute(ctx, depID, backends, state)
		}
	}
	if err == nil {
		l.m.routeWrites.Inc()
		l.log.Debug("route written", "deployment", depID, "state", state, "backends", len(backends), "generation", r.Generation)
	}
	return err
}

// setRouteState pauses or resumes a route without touching its backends.
func (l *leader) setRouteState(ctx context.Context, depID, state string) error {
	var r engine.Route
	_, err := l.s.Update(ctx, engine.RoutePath(depID), &r, func() error {
		if r.State == state {
			return engine.ErrNoChange
		}
		r.State, r.UpdatedAt = state, time.Now().UTC()
		return nil
	})
	if errors.Is(err, engine.ErrNotFound) {
		return nil
	}
	if err == nil {
		l.m.routeWrites.Inc()
	}
	return err
}

// syncRoutes keeps the routes of deployments without a running plan in
// step with their instances' health and addresses (an allocator restart
// changes a node's port; an unhealthy node leaves the route).
func (l *leader) syncRoutes(ctx context.Context) {
	for _, id := range l.deps.Children(engine.PathDeployments) {
		if l.busy(id) {
			continue
		}
		if _, pending := l.deps.Get(engine.PendingPlanPath(id)); pending {
			continue
		}
		d, ok := l.cachedDeployment(id)
		// LastPlanStatus running: the cache has not seen the plan's end
		// yet (its znodes update independently); wait for it.
		if !ok || d.Status == engine.DeploymentDeleted || len(d.Instances) == 0 || d.LastPlanStatus == engine.PlanRunning {
			continue
		}
		r, ok := cached[engine.Route](l, l.routes, engine.RoutePath(id))
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
		if _, err := l.s.GetJSON(ctx, engine.DeploymentPath(id), &fresh); err != nil || fresh.LastPlanStatus == engine.PlanRunning {
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

// DockerPeerPort is the port nodes serve on inside their containers.
const DockerPeerPort = 9200

// peerURL is how the other nodes of a deployment reach a node: nodes in
// Docker containers talk over their deployment's network, where the
// allocator names each node paddock-<instance id> (its published
// host:port is only reachable from the host); other runtimes' nodes by
// their address.
func (l *leader) peerURL(in engine.PlacedInstance, addr string) string {
	if rec, ok := cached[engine.Allocator](l, l.allocs, engine.AllocatorPath(in.Allocator)); ok && rec.Runtime == "docker" {
		return fmt.Sprintf("http://paddock-%s:%d", in.ID, DockerPeerPort)
	}
	return "http://" + addr
}
