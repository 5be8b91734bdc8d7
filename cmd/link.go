package cmd

import (
	"context"
	"os"
	"time"

	"github.com/spf13/cobra"

	"paddock/agents/director"
	"paddock/engine"
	"paddock/stunnel"
)

// How a command of this host reaches ZooKeeper as a role is
// director.HostLink; here are its flags.

// AddJoinFlags adds --join and --token to an agent command (allocator,
// proxy, constructor, api): with them the host enrolls before starting.
func AddJoinFlags(c *cobra.Command) {
	c.Flags().String("join", "", "director to enroll with (host[:12343]); needs --token")
	c.Flags().String("token", "", "roles token from `paddock token create` (pins the platform CA)")
}

// JoinIfAsked enrolls this host for role when --join and --token are set
// and points --zk at the director's tunnel the host joined (now or
// earlier) unless --zk was given.
func (app *App) JoinIfAsked(ctx context.Context, cmd *cobra.Command, role engine.Role) error {
	zk, err := director.JoinRole(ctx, app.StateDir(), app.V.GetString("join"), app.V.GetString("token"), role,
		app.V.GetDuration("timeout")+20*time.Second, app.Log)
	zkSet := os.Getenv("PADDOCK_ZK") != "" || (cmd != nil && cmd.Flags().Changed("zk"))
	if err == nil && zk != "" && !zkSet {
		app.V.Set("zk", zk)
	}
	return err
}

// hostLink is how this host reaches ZooKeeper, from the flags.
func (app *App) hostLink() director.HostLink {
	v := app.V
	return director.HostLink{StateDir: app.StateDir(), Servers: v.GetString("zk"), TLS: v.GetBool("zk-tls"),
		CredentialFile: v.GetString("zk-credential"), Timeout: v.GetDuration("timeout"), Logger: app.Log}
}

// agentLink is the link of a long-running agent command: it joins first
// when cmd's --join/--token ask (no cmd: no joining) and keeps the
// certificate fresh until ctx ends.
func (app *App) agentLink(ctx context.Context, cmd *cobra.Command, role engine.Role, metrics *stunnel.Metrics) (*director.RoleLink, error) {
	if cmd != nil {
		if err := app.JoinIfAsked(ctx, cmd, role); err != nil {
			return nil, err
		}
	}
	return app.hostLink().Agent(ctx, role, metrics)
}

// agentStore is agentLink's store, connected (close it when done).
func (app *App) agentStore(ctx context.Context, cmd *cobra.Command, role engine.Role) (*director.RoleLink, *engine.Store, error) {
	l, err := app.agentLink(ctx, cmd, role, nil)
	if err != nil {
		return nil, nil, err
	}
	s, err := l.Connect(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	return l, s, nil
}

// Connect opens the state store as role for one command.
func (app *App) Connect(ctx context.Context, role engine.Role, own *engine.Credential) (*engine.Store, error) {
	return app.hostLink().Connect(ctx, role, own)
}
