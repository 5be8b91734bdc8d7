package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"paddock/agents/tunnel"
	"paddock/stunnel"
)

// newTunnelCmd: `paddock tunnel server|client|config|cert|bench`, the
// stunnel-style TLS tunnel ends (package stunnel).
func newTunnelCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "tunnel",
		Short: "TLS tunnel ends (stunnel-style, mutual TLS, peers admitted by role/id)",
		Long: `Run one end of a mutual-TLS tunnel, like stunnel:

  paddock tunnel server --listen :2191 --target 127.0.0.1:2181 --allow role:allocator,role:proxy ...
  paddock tunnel client --listen 127.0.0.1:2181 --connect director:2191 --allow role:director ...

Both ends present a certificate signed by the platform CA (--cert, --key,
--ca; the director issues them). Peers are admitted by the identity in
their certificate (URI SAN paddock://role/<role>/<id>, or OU/CN):
--allow takes role:<role>, id:<role>/<id> or * (any certificate of the CA).
Certificates are reloaded on SIGHUP and every --reload-interval; a reload
that fails keeps the old certificate. SIGTERM drains live connections.
'paddock tunnel config' prints the equivalent stunnel.conf.`,
	}
	c.AddCommand(newTunnelEndCmd(app, "server"), newTunnelEndCmd(app, "client"), newTunnelConfigCmd(app),
		newTunnelCertCmd(app), newTunnelBenchCmd(app), newTunnelProbeCmd(app))
	return c
}

// certFlags name a tunnel end's certificate, the peers it admits and
// its timeouts.
func certFlags(fs *pflag.FlagSet, name string, connectTimeout time.Duration) {
	fs.String("name", name, "tunnel name (metrics label, stunnel service name)")
	fs.String("cert", "", "certificate of this end (PEM)")
	fs.String("key", "", "private key of this end (PEM)")
	fs.String("ca", "", "CA bundle peers are verified against (PEM)")
	fs.String("crl", "", "certificate revocation list (PEM, optional)")
	fs.StringSlice("allow", nil, "peers admitted: role:<role>, id:<role>/<id>, * (repeatable, comma-separated)")
	fs.Duration("connect-timeout", connectTimeout, "timeout for connecting to the other side (config: TIMEOUTconnect, 0 stunnel's default)")
	fs.Duration("idle-timeout", 0, "close connections idle this long (0: never; config: TIMEOUTidle, 0 stunnel's default)")
}

func tunnelFlags(fs *pflag.FlagSet, mode string) {
	certFlags(fs, "tunnel", 10*time.Second)
	if mode == "server" {
		fs.String("listen", ":2191", "TLS address to accept on")
		fs.String("target", "127.0.0.1:2181", "plain address to forward to")
	} else {
		fs.String("listen", "127.0.0.1:2181", "plain address to accept on (keep it on loopback)")
		fs.String("connect", "", "tunnel server to connect to (host:port)")
		fs.String("sni", "", "server name sent in the handshake")
	}
}

func newTunnelEndCmd(app *App, mode string) *cobra.Command {
	short := "Accept mutual TLS and forward plain to a local target"
	if mode == "client" {
		short = "Accept plain locally and forward over mutual TLS"
	}
	c := &cobra.Command{
		Use:   mode,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTunnelEnd(cmd.Context(), app, mode)
		},
	}
	tunnelFlags(c.Flags(), mode)
	c.Flags().Duration("drain-timeout", 30*time.Second, "on SIGTERM, how long live connections may finish")
	c.Flags().Duration("reload-interval", time.Minute, "reload the certificate files this often (0: on SIGHUP only)")
	c.Flags().String("metrics-addr", "", "status endpoint: /metrics, /healthz, /readyz, /status (empty: off)")
	return c
}

// tunnelFiles are the certificate files of --cert, --key, --ca, --crl.
func tunnelFiles(app *App) tunnel.Files {
	v := app.V
	return tunnel.Files{Cert: v.GetString("cert"), Key: v.GetString("key"), CA: v.GetString("ca"), CRL: v.GetString("crl")}
}

func tunnelOptions(app *App) (stunnel.Options, error) {
	v := app.V
	o, err := tunnel.FileOptions(v.GetString("name"), tunnelFiles(app), v.GetStringSlice("allow"))
	o.ConnectTimeout, o.IdleTimeout, o.DrainTimeout = v.GetDuration("connect-timeout"), v.GetDuration("idle-timeout"), v.GetDuration("drain-timeout")
	return o, err
}

func runTunnelEnd(ctx context.Context, app *App, mode string) error {
	v := app.V
	opts, err := tunnelOptions(app)
	if err != nil {
		return err
	}
	return tunnel.Run(ctx, tunnel.Config{Mode: mode, Listen: v.GetString("listen"), Target: v.GetString("target"),
		Connect: v.GetString("connect"), SNI: v.GetString("sni"), Options: opts,
		ReloadInterval: v.GetDuration("reload-interval"), MetricsAddr: v.GetString("metrics-addr"), Logger: app.Log})
}

func newTunnelConfigCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Print the stunnel.conf equivalent of a tunnel end (for hosts that run stunnel itself)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := app.V
			end := tunnel.Config{Mode: v.GetString("mode"), Listen: v.GetString("listen"), Target: v.GetString("target"),
				Connect: v.GetString("connect"), SNI: v.GetString("sni"), Options: stunnel.Options{Name: v.GetString("name"),
					ConnectTimeout: v.GetDuration("connect-timeout"), IdleTimeout: v.GetDuration("idle-timeout")}}
			out, err := tunnel.StunnelConf(end, tunnelFiles(app), v.GetStringSlice("allow"), v.GetBool("foreground"))
			if err != nil {
				return err
			}
			fmt.Fprint(app.Out, out)
			return nil
		},
	}
	c.Flags().String("mode", "server", "server (TLS in, plain out) or client (plain in, TLS out)")
	c.Flags().Bool("foreground", false, "render foreground = yes")
	c.Flags().String("target", "127.0.0.1:2181", "server mode: plain address to forward to")
	c.Flags().String("connect", "", "client mode: tunnel server to connect to")
	c.Flags().String("sni", "", "client mode: server name to send")
	c.Flags().String("listen", ":2191", "address stunnel accepts on")
	certFlags(c.Flags(), "paddock", 0)
	return c
}

// newTunnelCertCmd issues certificates from a local CA directory: for
// tests, benchmarks and hosts without a director (the director issues
// certificates in a platform).
func newTunnelCertCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "cert",
		Short: "Issue a tunnel certificate from a local CA directory (created when missing)",
		Long: `Issue a certificate for --role/--id from the CA in --ca-dir (ca.pem,
ca.key; created when missing). Writes <role>-<id>.crt and .key beside it.
Platforms get their certificates from the director instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := app.V
			dir, role, id := v.GetString("ca-dir"), v.GetString("role"), v.GetString("id")
			if dir == "" || role == "" || id == "" {
				return usageErr("--ca-dir, --role and --id are required")
			}
			files, err := stunnel.IssueFromDir(dir, "paddock local CA", stunnel.Leaf{Identity: stunnel.Identity{Role: role, ID: id},
				DNSNames: v.GetStringSlice("dns"), TTL: v.GetDuration("ttl")})
			if err != nil {
				return err
			}
			return app.output(files, func() { fmt.Fprintf(app.Out, "certificate %s, key %s, CA %s\n", files.Cert, files.Key, files.CA) })
		},
	}
	c.Flags().String("ca-dir", "", "directory of the CA (ca.pem, ca.key)")
	c.Flags().String("role", "", "role in the certificate")
	c.Flags().String("id", "", "id in the certificate")
	c.Flags().StringSlice("dns", nil, "extra DNS names")
	c.Flags().Duration("ttl", 24*time.Hour, "certificate lifetime")
	return c
}

func newTunnelBenchCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "bench",
		Short: "Load a tunnel: bulk throughput or handshakes per second (scripts/bench-tunnel.sh)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := app.V
			mode := v.GetString("mode")
			if mode != "bulk" && mode != "handshake" {
				return usageErr("%v", stunnel.ErrBadMode)
			}
			res, err := stunnel.RunLoad(cmd.Context(), stunnel.LoadConfig{Mode: mode, Connect: v.GetString("connect"),
				Sink: v.GetString("sink"), Duration: v.GetDuration("duration"), Concurrency: v.GetInt("concurrency")})
			if err != nil {
				return err
			}
			if app.JSON() {
				return app.PrintJSON(res)
			}
			if mode == "bulk" {
				fmt.Fprintf(app.Out, "bulk: %.1f MB/s over %.1fs (%d streams, %d errors)\n", res.MBps, res.Seconds, res.Concurrency, res.Errors)
			} else {
				fmt.Fprintf(app.Out, "handshake: %.0f connections/s over %.1fs (%d workers, %d errors)\n", res.PerSecond, res.Seconds, res.Concurrency, res.Errors)
			}
			return nil
		},
	}
	c.Flags().String("mode", "bulk", "bulk or handshake")
	c.Flags().String("connect", "", "plain entry of the tunnel chain")
	c.Flags().String("sink", "127.0.0.1:0", "address to serve the sink on (the tunnel's target)")
	c.Flags().Duration("duration", 5*time.Second, "how long to load")
	c.Flags().Int("concurrency", 1, "parallel connections")
	return c
}

// newTunnelProbeCmd: what a workload can reach from where it runs (used
// from inside node containers by the isolation tests): plain TCP
// connects, TLS tunnels entered without a certificate, files present.
func newTunnelProbeCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:    "probe",
		Short:  "Report what this place can reach: TCP ports, TLS tunnels without a certificate, files",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := app.V
			return app.PrintJSON(stunnel.Probe(v.GetStringSlice("tcp"), v.GetStringSlice("tls"), v.GetStringSlice("file")))
		},
	}
	c.Flags().StringSlice("tcp", nil, "addresses to connect to")
	c.Flags().StringSlice("tls", nil, "TLS tunnels to enter without a client certificate")
	c.Flags().StringSlice("file", nil, "files that should not exist here")
	return c
}
