package cmd

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"paddock/agents/director"
	"paddock/engine"
	"paddock/stunnel"
)

// How a command of this host reaches ZooKeeper as a role: directly, or
// through the director's mutual-TLS tunnel with the host's certificate
// of that role (it joined, or `paddock up` issued it). One helper for
// the six long-running commands (api, console, constructor, proxy,
// allocator, director join) and the one-shot ones (Connect).

// AddJoinFlags adds --join and --token to an agent command (allocator,
// proxy, constructor, api): with them the host enrolls before starting.
func AddJoinFlags(c *cobra.Command) {
	c.Flags().String("join", "", "director to enroll with (host[:12343]); needs --token")
	c.Flags().String("token", "", "roles token from `paddock token create` (pins the platform CA)")
}

// JoinIfAsked enrolls this host for role when --join and --token are set
// (writing the role's credential and certificate under the state dir),
// and points --zk at the director's tunnel unless --zk was given. A host
// that joined earlier keeps using its tunnel address.
func (app *App) JoinIfAsked(ctx context.Context, cmd *cobra.Command, role engine.Role) error {
	join, token := app.V.GetString("join"), app.V.GetString("token")
	zkSet := os.Getenv("PADDOCK_ZK") != "" || (cmd != nil && cmd.Flags().Changed("zk"))
	if join == "" && token == "" {
		if ji, err := director.LoadJoinInfo(app.StateDir()); err == nil && !zkSet && ji.ZooKeeper != "" {
			app.V.Set("zk", ji.ZooKeeper)
		}
		return nil
	}
	if join == "" || token == "" {
		return usageErr("--join and --token go together: --join DIRECTOR --token T")
	}
	jctx, cancel := context.WithTimeout(ctx, app.V.GetDuration("timeout")+20*time.Second)
	defer cancel()
	ji, err := director.Join(jctx, join, token, []string{string(role)}, app.StateDir())
	if err != nil {
		return err
	}
	app.Log.Info("joined the platform", "director", join, "id", ji.ID, "roles", ji.Roles, "zookeeper", ji.ZooKeeper, "cert_not_after", ji.NotAfter)
	if !zkSet && ji.ZooKeeper != "" {
		app.V.Set("zk", ji.ZooKeeper)
	}
	return nil
}

// useTunnel says whether ZooKeeper is reached through the director's
// tunnel: zk-tls is set (`paddock up` writes it), or --zk is the tunnel
// this host joined.
func (app *App) useTunnel() bool {
	if app.V.GetBool("zk-tls") {
		return true
	}
	ji, err := director.LoadJoinInfo(app.StateDir())
	return err == nil && ji.ZooKeeper != "" && ji.ZooKeeper == app.V.GetString("zk")
}

// roleLink is how this host reaches ZooKeeper as one role.
type roleLink struct {
	opts   engine.Options
	tunnel bool
	// tls is the host's certificate of the role (nil: none).
	tls *director.AgentTLS
}

// link builds the role's link. A missing certificate is an error only
// when the tunnel is asked for.
func (app *App) link(role engine.Role, metrics *stunnel.Metrics) (*roleLink, error) {
	cred, err := app.Credential(role)
	if err != nil {
		return nil, err
	}
	l := &roleLink{tunnel: app.useTunnel(), opts: engine.Options{Servers: app.V.GetString("zk"), Role: role, Credential: cred,
		ConnectTimeout: app.V.GetDuration("timeout"), Logger: app.Log}}
	certFile, _, _ := director.TLSFiles(app.StateDir(), string(role))
	if _, err := os.Stat(certFile); err == nil {
		if l.tls, err = director.NewAgentTLS(app.StateDir(), string(role), metrics, app.Log); err != nil {
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

// agentLink is the link of a long-running agent command: it joins first
// when cmd's --join/--token ask (no cmd: no joining), and keeps the certificate fresh until ctx
// ends (renewing it when the agent reaches ZooKeeper through the tunnel,
// else re-reading the files that another holder renews).
func (app *App) agentLink(ctx context.Context, cmd *cobra.Command, role engine.Role, metrics *stunnel.Metrics) (*roleLink, error) {
	if cmd != nil {
		if err := app.JoinIfAsked(ctx, cmd, role); err != nil {
			return nil, err
		}
	}
	l, err := app.link(role, metrics)
	if err != nil {
		return nil, err
	}
	switch {
	case l.tls != nil && l.tunnel:
		go l.tls.Run(ctx) // renews the certificate and refreshes the CRL
		app.Log.Info("reaching ZooKeeper through the director's tunnel", "zk", l.opts.Servers, "identity", l.tls.Loader.Current().Identity.String())
	case l.tls != nil:
		go l.tls.Loader.WatchReload(ctx, time.Minute, app.Log)
	}
	return l, nil
}

// agentStore is agentLink's store, connected (close it when done).
func (app *App) agentStore(ctx context.Context, cmd *cobra.Command, role engine.Role) (*roleLink, *engine.Store, error) {
	l, err := app.agentLink(ctx, cmd, role, nil)
	if err != nil {
		return nil, nil, err
	}
	s, err := l.connect(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	return l, s, nil
}

// loader is the role's certificate (nil when the host holds none).
func (l *roleLink) loader() *stunnel.Loader {
	if l.tls == nil {
		return nil
	}
	return l.tls.Loader
}

// connect opens the store.
func (l *roleLink) connect(ctx context.Context, own *engine.Credential) (*engine.Store, error) {
	opts := l.opts
	opts.Own = own
	s, err := engine.Connect(ctx, opts)
	if err != nil && l.tunnel {
		return nil, fmt.Errorf("%w (through the director's tunnel at %s as %s: is the director running?)", err, opts.Servers, opts.Role)
	}
	return s, err
}

// Credential loads the ZooKeeper credential of role.
func (app *App) Credential(role engine.Role) (engine.Credential, error) {
	file := app.V.GetString("zk-credential")
	if file == "" {
		file = engine.CredentialFile(app.StateDir(), role)
	}
	return engine.LoadCredential(file)
}

// Connect opens the state store as role for one command: through the
// director's tunnel when zk-tls is set (the certificate read as is: the
// long-running holder renews the files).
func (app *App) Connect(ctx context.Context, role engine.Role, own *engine.Credential) (*engine.Store, error) {
	if !app.V.GetBool("zk-tls") {
		cred, err := app.Credential(role)
		if err != nil {
			return nil, err
		}
		return engine.Connect(ctx, engine.Options{Servers: app.V.GetString("zk"), Role: role, Credential: cred, Own: own,
			ConnectTimeout: app.V.GetDuration("timeout"), Logger: app.Log})
	}
	l, err := app.link(role, nil)
	if err != nil {
		return nil, err
	}
	return l.connect(ctx, own)
}
