package allocator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"paddock/engine"
	"paddock/stunnel"
)

// DefaultTunnelListen is the allocator tunnel's listen address when a
// certificate is configured (architecture.md, Ports).
const DefaultTunnelListen = ":9400"

// TunnelRoles are the certificate roles the allocator tunnel admits:
// proxies route client traffic to nodes through it, and the constructor
// reaches nodes through it for snapshots, restores and peers.
var TunnelRoles = []engine.Role{engine.RoleProxy, engine.RoleConstructor}

// PeerRoles reach this allocator's nodes as peers of nodes on other
// allocators (their egress, egress.go), only with a peer SNI and only
// within one deployment (peerAdmit).
var PeerRoles = []engine.Role{engine.RoleAllocator}

// platformID reads the platform id from /paddock/config. A platform
// created before platform ids has none: it gets a stable id derived from
// its role identities (unique per platform, the same on every host).
func platformID(ctx context.Context, s *engine.Store) (string, error) {
	cfg, _, err := s.Platform(ctx)
	if err != nil {
		return "", fmt.Errorf("read the platform config (%s) for its id: %w (is the platform initialised? run `paddock init`)", engine.PathConfig, err)
	}
	if cfg.ID != "" {
		return cfg.ID, nil
	}
	h := sha256.New()
	for _, r := range []engine.Role{engine.RoleAdmin, engine.RoleConstructor, engine.RoleAllocator, engine.RoleProxy} {
		fmt.Fprintf(h, "%s=%s\n", r, cfg.Identities[r])
	}
	fmt.Fprintf(h, "created=%s\n", cfg.CreatedAt.UTC().Format("2006-01-02T15:04:05.999999999Z"))
	return "legacy-" + hex.EncodeToString(h.Sum(nil))[:24], nil
}

// tunnel is the running tunnel server.
type tunnel struct {
	done chan struct{}
}

func (t *tunnel) wait() { <-t.done }

// startTunnel listens on TunnelListen and serves the mTLS tunnel in
// front of the nodes until ctx ends. Node ports stay published on
// PublishIP (loopback by default); the tunnel is the way in from other
// hosts.
func (a *agent) startTunnel(ctx context.Context) (*tunnel, error) {
	metrics := a.cfg.TunnelMetrics
	if metrics == nil {
		metrics = stunnel.NewMetrics(a.cfg.Registry)
	}
	srv, err := stunnel.NewServer(stunnel.ServerConfig{
		Options: stunnel.Options{Name: "allocator-" + a.cfg.ID, Loader: a.cfg.TunnelLoader,
			Allow: stunnel.Allow{Roles: engine.RoleNames(slices.Concat(TunnelRoles, LogRoles, PeerRoles))}, Metrics: metrics,
			// Nodes outlive the allocator: on shutdown proxies just reconnect
			// to the next allocator process, so do not hold the exit long.
			DrainTimeout: 5 * time.Second},
		Target:     a.tunnelTarget(a.startLogEndpoint(ctx)),
		Admit:      a.peerAdmit,
		AdmitName:  a.peerAdmitName,
		TargetDesc: "nodes of allocator " + a.cfg.ID + " (by SNI <instance>.node.paddock; other allocators' egress by <instance>.<deployment>.peer.paddock) and its log endpoint (" + LogsBackend + ".node.paddock, admin role)",
		Logger:     a.log,
	})
	if err != nil {
		return nil, fmt.Errorf("allocator tunnel: %w", err)
	}
	ln, err := net.Listen("tcp", a.cfg.TunnelListen)
	if err != nil {
		return nil, fmt.Errorf("allocator tunnel: listen on %s: %w (another allocator on this host? give each its own --tunnel-addr, or '-' to disable)", a.cfg.TunnelListen, err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	a.tunnelAddr = net.JoinHostPort(a.cfg.TunnelHost, port)
	a.routes = map[string]string{}
	t := &tunnel{done: make(chan struct{})}
	go func() {
		defer close(t.done)
		if err := srv.Serve(ctx, ln); err != nil {
			a.log.Error("allocator tunnel stopped", "err", err)
		}
	}()
	a.log.Info("node tunnel listening", "listen", ln.Addr().String(), "advertised", a.tunnelAddr,
		"admits", stunnel.Allow{Roles: engine.RoleNames(TunnelRoles)}.String(), "identity", a.cfg.TunnelLoader.Current().Identity.String())
	return t, nil
}

// routeOf is the tunnel's lookup: the published address of a running
// node this allocator runs.
func (a *agent) routeOf(iid string) (string, bool) {
	a.routesMu.RLock()
	defer a.routesMu.RUnlock()
	addr, ok := a.routes[iid]
	return addr, ok
}

// updateRoutes refreshes the tunnel's table from the tracked instances
// (reconcile goroutine): desired, running, with a published port.
func (a *agent) updateRoutes() {
	if a.tunnelAddr == "" {
		return
	}
	next := make(map[string]string, len(a.tracked))
	ws := make(map[string]Workload, len(a.tracked))
	for id, t := range a.tracked {
		if t.desired != nil && t.w != nil && t.w.Running && t.w.Address != "" {
			next[id] = t.w.Address
		}
		if t.w != nil {
			ws[id] = *t.w
		}
	}
	a.routesMu.Lock()
	a.routes, a.workloads = next, ws
	a.routesMu.Unlock()
	if a.egress != nil {
		live := make(map[string]string, len(a.tracked))
		for id, t := range a.tracked {
			switch {
			case t.desired != nil:
				live[id] = t.desired.DeploymentID
			case t.w != nil && t.w.Deployment != "":
				live[id] = t.w.Deployment
			}
		}
		a.egress.sync(live)
	}
}
