package director

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"paddock/agents/agentkit"
	"paddock/engine"
	"paddock/stunnel"
)

// How a command on this host reaches ZooKeeper as a role: directly, or
// through the director's mutual-TLS tunnel with the host's certificate
// of that role (it joined, or `paddock up` issued it). The long-running
// agent commands (api, console, constructor, proxy, allocator) and the
// one-shot ones (status, token, api key) share it.

// HostLink is how this host's commands reach ZooKeeper: the CLI's --zk,
// --zk-tls, --zk-credential and --timeout.
type HostLink struct {
	StateDir string
	// Servers is the ZooKeeper connection string (--zk).
	Servers string
	// TLS asks for the director's tunnel (zk-tls: `paddock up` sets it).
	TLS bool
	// CredentialFile overrides the role's credential file in the state
	// dir.
	CredentialFile string
	Timeout        time.Duration
	Logger         *slog.Logger
}

// JoinRole enrolls this host for role when join and token are set
// (writing the role's credential and certificate under stateDir) and
// returns the director's tunnel this host reaches ZooKeeper through:
// the one just joined or, without join and token, the one it joined
// earlier ("" when it never joined).
func JoinRole(ctx context.Context, stateDir, join, token string, role engine.Role, timeout time.Duration, log *slog.Logger) (string, error) {
	if join == "" && token == "" {
		if ji, err := LoadJoinInfo(stateDir); err == nil {
			return ji.ZooKeeper, nil
		}
		return "", nil
	}
	if join == "" || token == "" {
		return "", agentkit.ConfigErrorf("--join and --token go together: --join DIRECTOR --token T")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ji, err := Join(ctx, join, token, []string{string(role)}, stateDir)
	if err != nil {
		return "", err
	}
	log.Info("joined the platform", "director", join, "id", ji.ID, "roles", ji.Roles, "zookeeper", ji.ZooKeeper, "cert_not_after", ji.NotAfter)
	return ji.ZooKeeper, nil
}

// Credential loads the ZooKeeper credential of role.
func (h HostLink) Credential(role engine.Role) (engine.Credential, error) {
	file := h.CredentialFile
	if file == "" {
		file = engine.CredentialFile(h.StateDir, role)
	}
	return engine.LoadCredential(file)
}

// useTunnel says whether ZooKeeper is reached through the director's
// tunnel: TLS is set, or Servers is the tunnel this host joined.
func (h HostLink) useTunnel() bool {
	if h.TLS {
		return true
	}
	ji, err := LoadJoinInfo(h.StateDir)
	return err == nil && ji.ZooKeeper != "" && ji.ZooKeeper == h.Servers
}

// RoleLink is how this host reaches ZooKeeper as one role.
type RoleLink struct {
	opts   engine.Options
	tunnel bool
	// tls is the host's certificate of the role (nil: none).
	tls *AgentTLS
}

// Role builds the role's link. A missing certificate is an error only
// when the tunnel is asked for.
func (h HostLink) Role(role engine.Role, metrics *stunnel.Metrics) (*RoleLink, error) {
	cred, err := h.Credential(role)
	if err != nil {
		return nil, err
	}
	l := &RoleLink{tunnel: h.useTunnel(), opts: engine.Options{Servers: h.Servers, Role: role, Credential: cred,
		ConnectTimeout: h.Timeout, Logger: h.Logger}}
	certFile, _, _ := TLSFiles(h.StateDir, string(role))
	if _, err := os.Stat(certFile); err == nil {
		if l.tls, err = NewAgentTLS(h.StateDir, string(role), metrics, h.Logger); err != nil {
			return nil, err
		}
	}
	if !l.tunnel {
		return l, nil
	}
	if l.tls == nil {
		return nil, fmt.Errorf("ZooKeeper is reached through the director's tunnel (zk-tls, or joined) but this host holds no %s certificate (%s): run `paddock up`, or join with --join DIRECTOR --token T (a token with the %s role), or pass --zk-tls=false with --zk at ZooKeeper itself", role, certFile, role)
	}
	l.opts.Dialer = l.tls.Dialer()
	return l, nil
}

// Agent is the role's link for a long-running agent: it keeps the
// certificate fresh until ctx ends (renewing it when the agent reaches
// ZooKeeper through the tunnel, else re-reading the files that another
// holder renews).
func (h HostLink) Agent(ctx context.Context, role engine.Role, metrics *stunnel.Metrics) (*RoleLink, error) {
	l, err := h.Role(role, metrics)
	if err != nil {
		return nil, err
	}
	switch {
	case l.tls != nil && l.tunnel:
		go l.tls.Run(ctx) // renews the certificate and refreshes the CRL
		h.Logger.Info("reaching ZooKeeper through the director's tunnel", "zk", l.opts.Servers, "identity", l.tls.Loader.Current().Identity.String())
	case l.tls != nil:
		go l.tls.Loader.WatchReload(ctx, time.Minute, h.Logger)
	}
	return l, nil
}

// Connect opens the state store as role for one command: through the
// director's tunnel when TLS is set (the certificate read as is: the
// long-running holder renews the files).
func (h HostLink) Connect(ctx context.Context, role engine.Role, own *engine.Credential) (*engine.Store, error) {
	if !h.TLS {
		cred, err := h.Credential(role)
		if err != nil {
			return nil, err
		}
		return engine.Connect(ctx, engine.Options{Servers: h.Servers, Role: role, Credential: cred, Own: own,
			ConnectTimeout: h.Timeout, Logger: h.Logger})
	}
	l, err := h.Role(role, nil)
	if err != nil {
		return nil, err
	}
	return l.Connect(ctx, own)
}

// Options are the store options of the role's link.
func (l *RoleLink) Options() engine.Options { return l.opts }

// Loader is the role's certificate (nil when the host holds none).
func (l *RoleLink) Loader() *stunnel.Loader {
	if l.tls == nil {
		return nil
	}
	return l.tls.Loader
}

// Connect opens the store.
func (l *RoleLink) Connect(ctx context.Context, own *engine.Credential) (*engine.Store, error) {
	opts := l.opts
	opts.Own = own
	s, err := engine.Connect(ctx, opts)
	if err != nil && l.tunnel {
		return nil, fmt.Errorf("%w (through the director's tunnel at %s as %s: is the director running?)", err, opts.Servers, opts.Role)
	}
	return s, err
}

// RoleCredentials are the roles' ZooKeeper credentials in stateDir (from
// `paddock init`), the ones the director hands to joining hosts. A
// missing role is said in the log: hosts cannot join with it.
func RoleCredentials(stateDir string, log *slog.Logger) engine.CredentialSet {
	creds := engine.CredentialSet{}
	for _, r := range engine.Roles {
		if c, err := engine.LoadCredential(engine.CredentialFile(stateDir, r)); err == nil {
			creds[r] = c
		}
	}
	if len(creds) < len(engine.Roles) {
		log.Warn("some role credentials are missing from the state dir: hosts cannot join with those roles", "dir", stateDir)
	}
	return creds
}
