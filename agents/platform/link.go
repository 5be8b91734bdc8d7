package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/cenkalti/backoff/v5"

	"paddock/agents/agentkit"
	"paddock/agents/director"
	"paddock/engine"
	"paddock/stunnel"
)

// How the agents of up reach ZooKeeper. ZooKeeper listens on loopback
// only; once the director serves, up issues this host a certificate per
// control-plane role from the platform CA (the layout a joined host has
// under <state-dir>/tls) and every agent's store dials the director's
// mutual-TLS tunnel with its role's certificate. Only the bootstrap
// (platform creation, the admin API key) and the director itself talk
// to ZooKeeper directly.

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

// LoopbackAddr makes a bound address dialable from this host: an
// unspecified host (":2191", "[::]:2191") becomes 127.0.0.1.
func LoopbackAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// disabledTunnel warns loudly that the agents reach ZooKeeper in plain.
func (r *run) disabledTunnel(who string) {
	r.log.Warn("DIRECTOR TUNNEL DISABLED (--director-tunnel-addr -): "+who+" connect to ZooKeeper directly at "+r.zk+
		", without mutual TLS; drop the flag to put the tunnel back in front of ZooKeeper", "zookeeper", r.zk)
}

// issue gives this host a certificate per role (engine.Roles) from the
// platform CA for the tunnel at tunnel. With renew, up keeps them
// renewed through enroll (or, with no enrollment endpoint, re-issues
// them from the CA here) until ctx ends; without, their users do
// (platform containers renew their own).
func (r *run) issue(ctx context.Context, tunnel, enroll string, renew bool) (director.JoinInfo, []*director.AgentTLS, error) {
	ji, err := director.IssueLocal(r.dir, enroll, tunnel, "", engine.Roles, r.cfg.CertTTL)
	if err != nil {
		return ji, nil, fmt.Errorf("issue this host's certificates for the director's tunnel: %w (remove %s to start over)", err, director.TLSDir(r.dir))
	}
	var ats []*director.AgentTLS
	for _, role := range engine.Roles {
		at, err := director.NewAgentTLS(r.dir, string(role), nil, r.log.With("agent", "up"))
		if err != nil {
			return ji, nil, err
		}
		ats = append(ats, at)
	}
	switch {
	case !renew:
	case enroll != "":
		// Renewal through the enrollment endpoint, like a joined host.
		for _, at := range ats {
			go at.Run(ctx)
		}
	default:
		r.log.Warn("the director's enrollment endpoint is disabled: up re-issues this host's certificates from the CA itself", "not_after", ji.NotAfter)
		go reissueLocal(ctx, r.log, r.dir, tunnel, ji, r.cfg.CertTTL, ats)
	}
	return ji, ats, nil
}

// linkAgents issues this host's role certificates and returns the
// tunnel link. With the tunnel disabled it says so loudly and returns
// the direct link.
func (r *run) linkAgents(ctx context.Context, addrs director.Addrs) (*zkLink, error) {
	if addrs.Tunnel == "" {
		r.disabledTunnel("every agent will")
		return &zkLink{servers: r.zk, timeout: r.cfg.Timeout}, nil
	}
	tunnel, enroll := LoopbackAddr(addrs.Tunnel), ""
	if addrs.Enroll != "" {
		enroll = LoopbackAddr(addrs.Enroll)
	}
	ji, ats, err := r.issue(ctx, tunnel, enroll, true)
	if err != nil {
		return nil, err
	}
	l := r.tunnelLink(tunnel, ats)
	r.log.Info("agents reach ZooKeeper through the director's tunnel", "tunnel", tunnel, "zookeeper", r.zk,
		"id", ji.ID, "roles", ji.Roles, "cert_not_after", ji.NotAfter)
	return l, nil
}

// tunnelLink dials the tunnel with the roles' certificates.
func (r *run) tunnelLink(tunnel string, ats []*director.AgentTLS) *zkLink {
	l := &zkLink{servers: tunnel, tunnel: true, timeout: r.cfg.Timeout,
		dialers: map[engine.Role]func(string, string, time.Duration) (net.Conn, error){},
		loaders: map[engine.Role]*stunnel.Loader{}}
	for _, at := range ats {
		role := engine.Role(at.Role)
		l.dialers[role], l.loaders[role] = at.Dialer(), at.Loader
	}
	return l
}

// reissueLocal renews the certificates from the CA in the state dir at
// two thirds of their life, when no enrollment endpoint can.
func reissueLocal(ctx context.Context, log *slog.Logger, dir, tunnel string, ji director.JoinInfo, ttl time.Duration, ats []*director.AgentTLS) {
	for {
		life := ji.NotAfter.Sub(ji.JoinedAt)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(ji.JoinedAt.Add(life * 2 / 3))):
		}
		next, err := backoff.Retry(ctx, func() (director.JoinInfo, error) {
			next, err := director.IssueLocal(dir, "", tunnel, ji.ID, engine.Roles, ttl)
			for _, at := range ats {
				if err == nil {
					err = at.Loader.Reload()
				}
			}
			return next, err
		}, backoff.WithBackOff(backoff.NewConstantBackOff(time.Minute)), backoff.WithMaxElapsedTime(0),
			backoff.WithNotify(func(err error, in time.Duration) {
				log.Error("re-issuing this host's tunnel certificates failed; retrying", "err", err, "in", in)
			}))
		if err != nil {
			return // ctx ended
		}
		ji = next
		log.Info("tunnel certificates re-issued", "not_after", ji.NotAfter)
	}
}

// copyAllocatorCerts gives each allocator's own state dir a copy of the
// host key, the CA, the allocator certificate and join.json: allocator
// containers run with a state dir of their own and renew their copy
// through the director's enrollment endpoint.
func (r *run) copyAllocatorCerts(allocIDs []string) error {
	src := director.TLSDir(r.dir)
	files := []string{"key.pem", "ca.pem", "join.json", "host-id", "ca.crl", string(engine.RoleAllocator) + ".crt"}
	for _, id := range allocIDs {
		dst := director.TLSDir(filepath.Join(r.dir, "allocators", id))
		if err := os.MkdirAll(dst, 0o700); err != nil {
			return err
		}
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(src, f))
			if errors.Is(err, os.ErrNotExist) && (f == "ca.crl" || f == "host-id") {
				continue
			} else if err != nil {
				return fmt.Errorf("copy the allocator certificate to %s: %w", dst, err)
			}
			mode := os.FileMode(0o644)
			if f == "key.pem" {
				mode = 0o600
			}
			if err := agentkit.WriteFileAtomic(filepath.Join(dst, f), b, mode); err != nil {
				return err
			}
		}
	}
	return nil
}
