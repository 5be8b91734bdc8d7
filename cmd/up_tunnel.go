package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"paddock/agents/director"
	"paddock/engine"
	"paddock/stunnel"
)

// How the agents of `paddock up` reach ZooKeeper. ZooKeeper listens on
// loopback only; once the director serves, up issues this host a
// certificate per control-plane role from the platform CA (the layout a
// joined host has under <state-dir>/tls) and every agent's store dials
// the director's mutual-TLS tunnel with its role's certificate. Only the
// bootstrap (platform creation, the admin API key) and the director
// itself talk to ZooKeeper directly.

// upTunnelRoles are the roles up's agents and the CLI on this host use.
var upTunnelRoles = []engine.Role{engine.RoleAdmin, engine.RoleConstructor, engine.RoleProxy, engine.RoleAllocator, engine.RoleDirector}

// zkLink is where the agents' stores connect: the tunnel (with one
// dialer per role) or, with the tunnel disabled, ZooKeeper itself.
type zkLink struct {
	servers string
	tunnel  bool
	dialers map[engine.Role]func(string, string, time.Duration) (net.Conn, error)
	// loaders hold each role's certificate, reloaded on renewal: the
	// allocators' node tunnels and the proxy's mTLS to them use them.
	loaders map[engine.Role]*stunnel.Loader
	timeout time.Duration
}

// loader is role's certificate loader (nil with the tunnel disabled:
// then allocators run no node tunnel and proxies dial nodes in plain).
func (l *zkLink) loader(role engine.Role) *stunnel.Loader {
	if l.loaders == nil {
		return nil
	}
	return l.loaders[role]
}

// options are the store options of role's agent.
func (l *zkLink) options(role engine.Role, cred engine.Credential, log *slog.Logger) engine.Options {
	return engine.Options{Servers: l.servers, Role: role, Credential: cred, Dialer: l.dialers[role],
		ConnectTimeout: l.timeout, Logger: log}
}

// loopbackAddr makes a bound address dialable from this host: an
// unspecified host (":2191", "[::]:2191") becomes 127.0.0.1.
func loopbackAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// linkAgents issues this host's role certificates and returns the
// tunnel link, keeping the certificates renewed until ctx ends. With the
// tunnel disabled it says so loudly and returns the direct link.
func linkAgents(ctx context.Context, app *App, dir, zkAddr string, addrs director.Addrs) (*zkLink, error) {
	to := app.V.GetDuration("timeout")
	if addrs.Tunnel == "" {
		app.Log.Warn("DIRECTOR TUNNEL DISABLED (--director-tunnel-addr -): every agent connects to ZooKeeper directly at "+zkAddr+
			", without mutual TLS; drop the flag to put the tunnel back in front of ZooKeeper", "zookeeper", zkAddr)
		return &zkLink{servers: zkAddr, timeout: to}, nil
	}
	tunnel := loopbackAddr(addrs.Tunnel)
	enroll := ""
	if addrs.Enroll != "" {
		enroll = loopbackAddr(addrs.Enroll)
	}
	roles := make([]string, len(upTunnelRoles))
	for i, r := range upTunnelRoles {
		roles[i] = string(r)
	}
	ttl := app.V.GetDuration("cert-ttl")
	ji, err := director.IssueLocal(dir, enroll, tunnel, "", roles, ttl)
	if err != nil {
		return nil, fmt.Errorf("issue this host's certificates for the director's tunnel: %w (remove %s to start over)", err, director.TLSDir(dir))
	}
	l := &zkLink{servers: tunnel, tunnel: true, timeout: to,
		dialers: map[engine.Role]func(string, string, time.Duration) (net.Conn, error){},
		loaders: map[engine.Role]*stunnel.Loader{}}
	var ats []*director.AgentTLS
	for _, r := range upTunnelRoles {
		dialer, at, err := app.TunnelDialer(r, nil)
		if err != nil {
			return nil, err
		}
		if at == nil {
			return nil, fmt.Errorf("no %s certificate under %s after issuing it", r, director.TLSDir(dir))
		}
		l.dialers[r] = dialer
		l.loaders[r] = at.Loader
		ats = append(ats, at)
	}
	if enroll != "" {
		// Renewal through the enrollment endpoint, like a joined host.
		for _, at := range ats {
			go at.Run(ctx)
		}
	} else {
		app.Log.Warn("the director's enrollment endpoint is disabled: up re-issues this host's certificates from the CA itself", "not_after", ji.NotAfter)
		go reissueLocal(ctx, app.Log, dir, tunnel, ji, roles, ttl, ats)
	}
	app.Log.Info("agents reach ZooKeeper through the director's tunnel", "tunnel", tunnel, "zookeeper", zkAddr,
		"id", ji.ID, "roles", ji.Roles, "cert_not_after", ji.NotAfter)
	return l, nil
}

// reissueLocal renews the certificates from the CA in the state dir at
// two thirds of their life, when no enrollment endpoint can.
func reissueLocal(ctx context.Context, log *slog.Logger, dir, tunnel string, ji director.JoinInfo, roles []string, ttl time.Duration, ats []*director.AgentTLS) {
	for {
		life := ji.NotAfter.Sub(ji.JoinedAt)
		wait := time.Until(ji.JoinedAt.Add(life * 2 / 3))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		next, err := director.IssueLocal(dir, "", tunnel, ji.ID, roles, ttl)
		for _, at := range ats {
			if err == nil {
				err = at.Loader.Reload()
			}
		}
		if err != nil {
			log.Error("re-issuing this host's tunnel certificates failed; retrying in a minute", "err", err)
			ji.JoinedAt, ji.NotAfter = time.Now(), time.Now().Add(90*time.Second)
			continue
		}
		ji = next
		log.Info("tunnel certificates re-issued", "not_after", ji.NotAfter)
	}
}

// useTunnel says whether a long-running command (api, console) reaches
// ZooKeeper through the director's tunnel: zk-tls is set (`paddock up`
// writes it), or --zk is the tunnel this host joined.
func (app *App) useTunnel() bool {
	if app.V.GetBool("zk-tls") {
		return true
	}
	ji, err := director.LoadJoinInfo(app.StateDir())
	return err == nil && ji.ZooKeeper != "" && ji.ZooKeeper == app.V.GetString("zk")
}
