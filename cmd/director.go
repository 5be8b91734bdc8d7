package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"paddock/agents/director"
	"paddock/engine"
)

func newDirectorCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "director",
		Short: "Run the director: certificate authority, roles tokens, ZooKeeper tunnel, enrollment",
		Long: `The director owns the platform's CA (created on first start under
<state-dir>/director, key mode 0600; the certificate is published at
/paddock/security/ca), signs short-lived certificates for joining hosts,
and runs the mutual-TLS tunnel in front of ZooKeeper (--tunnel-addr,
forwarding to --zk on loopback) and the enrollment endpoint
(--enroll-addr). Run it on the host where 'paddock init' ran: it hands the
roles' ZooKeeper credentials from <state-dir>/credentials to joining hosts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := app.V
			if v.GetString("join") != "" || v.GetString("token") != "" {
				return runSecondaryDirector(cmd, app)
			}
			cred, err := app.hostLink().Credential(engine.RoleDirector)
			if err != nil {
				return err
			}
			return director.Run(cmd.Context(), director.Config{
				ID: v.GetString("id"), StateDir: app.StateDir(),
				Store:       engine.Options{Servers: v.GetString("zk"), Credential: cred, ConnectTimeout: v.GetDuration("timeout"), Logger: app.Log},
				Credentials: director.RoleCredentials(app.StateDir(), app.Log), ZooKeeper: firstServer(v.GetString("zk")),
				TunnelAddr: v.GetString("tunnel-addr"), EnrollAddr: v.GetString("enroll-addr"),
				Hosts: v.GetStringSlice("hosts"), CertTTL: v.GetDuration("cert-ttl"),
				MetricsAddr: v.GetString("metrics-addr"), Logger: app.Log, SuperPassword: v.GetString("zk-super-password"),
			})
		},
	}
	f := c.Flags()
	f.String("id", "", "director id (default: the host name)")
	f.String("tunnel-addr", director.DefaultTunnelAddr, "mTLS tunnel in front of ZooKeeper ('-' disables)")
	f.String("enroll-addr", director.DefaultEnrollAddr, "enrollment endpoint, HTTPS ('-' disables)")
	f.StringSlice("hosts", nil, "extra host names / IPs of this director for its certificate")
	f.Duration("cert-ttl", director.DefaultCertTTL, "lifetime of the certificates the director signs (renewed at 2/3)")
	f.String("metrics-addr", "", "status endpoint: /metrics, /healthz, /readyz, /status")
	f.String("zk-super-password", "", "ZooKeeper super user password: lets the director grow/shrink the ensemble (reconfig)")
	f.String("zk-host", "127.0.0.1", "secondary director: address other ZooKeeper servers reach this one at")
	f.IntSlice("zk-ports", []int{2888, 3888, 2181}, "secondary director: peer, election and client ports of the local ZooKeeper server")
	AddJoinFlags(c)
	c.AddCommand(newDirectorJoinCmd(app), newDirectorEnsembleCmd(app), newDirectorRevokeCmd(app))
	return c
}

// newDirectorJoinCmd: `paddock director join DIRECTOR --token T --roles r,…`
// enrolls this host without starting an agent (the agents' --join flag
// does the same for their own role).
func newDirectorJoinCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "join DIRECTOR",
		Short: "Enroll this host with a roles token: certificates and ZooKeeper credentials under the state dir",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token := app.V.GetString("token")
			if token == "" {
				return usageErr("--token is required (from `paddock token create`)")
			}
			roles := app.V.GetStringSlice("roles")
			if len(roles) == 0 {
				return usageErr("--roles is required, e.g. --roles allocator")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), app.V.GetDuration("timeout")+20*time.Second)
			defer cancel()
			ji, err := director.Join(ctx, args[0], token, roles, app.StateDir())
			if err != nil {
				return err
			}
			if app.JSON() {
				return app.PrintJSON(ji)
			}
			fmt.Fprintf(app.Out, "joined as %s with roles %v; ZooKeeper through the tunnel at %s; certificates in %s (valid until %s)\n",
				ji.ID, ji.Roles, ji.ZooKeeper, director.TLSDir(app.StateDir()), ji.NotAfter.Format(time.RFC3339))
			return nil
		},
	}
	c.Flags().String("token", "", "roles token")
	c.Flags().StringSlice("roles", nil, "roles to enroll for (the token must grant each)")
	return c
}

func firstServer(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return s[:i]
		}
	}
	return s
}

// runSecondaryDirector: `paddock director --join DIRECTOR --token T`
// enrolls this host with the director role, adds a ZooKeeper server here
// to the ensemble and runs the tunnel in front of it; on SIGTERM the
// server leaves the ensemble again.
func runSecondaryDirector(cmd *cobra.Command, app *App) error {
	v := app.V
	ctx := cmd.Context()
	if _, err := director.LoadJoinInfo(app.StateDir()); err != nil || v.GetString("token") != "" {
		if v.GetString("join") == "" || v.GetString("token") == "" {
			return usageErr("--join and --token go together: --join DIRECTOR --token T")
		}
		if _, err := director.JoinRole(ctx, app.StateDir(), v.GetString("join"), v.GetString("token"), engine.RoleDirector,
			v.GetDuration("timeout")+20*time.Second, app.Log); err != nil {
			return err
		}
	}
	ports := v.GetIntSlice("zk-ports")
	if len(ports) != 3 {
		return usageErr("--zk-ports takes three ports: peer,election,client")
	}
	if v.GetString("zk-super-password") == "" {
		return usageErr("--zk-super-password is required: every ZooKeeper server of the ensemble shares it")
	}
	host := v.GetString("zk-host")
	self := director.ZKServer{Host: host, PeerPort: ports[0], ElectPort: ports[1], Role: "participant",
		Client: fmt.Sprintf("127.0.0.1:%d", ports[2])}
	return director.RunSecondary(ctx, director.SecondaryConfig{StateDir: app.StateDir(), ZKDir: app.StateDir() + "/zookeeper-ensemble",
		Server: self, SuperPassword: v.GetString("zk-super-password"), TunnelAddr: v.GetString("tunnel-addr"),
		MetricsAddr: v.GetString("metrics-addr"), Logger: app.Log})
}

// newDirectorEnsembleCmd: `paddock director ensemble` shows the
// ZooKeeper ensemble's members, leader and quorum.
func newDirectorEnsembleCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "ensemble",
		Short: "Show the ZooKeeper ensemble: members, modes, leader, quorum",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), app.V.GetDuration("timeout")+5*time.Second)
			defer cancel()
			s, err := app.Connect(ctx, engine.RoleAdmin, nil)
			if err != nil {
				return err
			}
			defer s.Close()
			st, err := director.Ensemble(ctx, s.Conn())
			if err != nil {
				return err
			}
			return app.output(st, func() { st.WriteText(app.Out) })
		},
	}
}

// newDirectorRevokeCmd: `paddock director revoke ROLE/ID|HOST|SERIAL`
// revokes issued certificates; tunnels refuse them within seconds (the
// director's) or a minute (agents fetching the list).
func newDirectorRevokeCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ROLE/ID|HOST-ID|SERIAL",
		Short: "Revoke certificates the director issued (by identity, host id or serial)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withDirectorStore(cmd.Context(), app, func(ctx context.Context, s *engine.Store) error {
				recs, err := director.RevokeCertificates(ctx, s, args[0])
				if err != nil {
					return err
				}
				if app.JSON() {
					return app.PrintJSON(recs)
				}
				for _, r := range recs {
					fmt.Fprintf(app.Out, "revoked %s (serial %s, valid until %s)\n", r.Identity, r.Serial, r.NotAfter.Format(time.RFC3339))
				}
				return nil
			})
		},
	}
}
