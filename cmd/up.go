package cmd

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"paddock/agents/allocator"
	"paddock/agents/director"
	"paddock/agents/platform"
	"paddock/engine"
)

// `paddock up` is the embedded default: one command brings up a whole
// platform on this host (agents/platform). `--headless` runs it in the
// foreground until SIGINT/SIGTERM; without it, up starts that
// supervisor detached (logs in <state-dir>/logs/up.log), shows its
// progress, then opens the console; a second up attaches.
func newUpCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "up",
		Short: "Start a whole platform on this host and open the console",
		Long: `Start, on this host: ZooKeeper (detached, data in <state-dir>/zookeeper),
the constructor, the API, the proxy and one allocator per zone, all in
one supervisor process running the same code as the separate agents.
Node images are built first when missing (from this static binary).
~/.paddock/config.yaml is written so the other commands find the
platform, with an admin API key. ZooKeeper listens on loopback only:
once the director serves, every agent and the CLI reach it through the
director's mutual-TLS tunnel (--director-tunnel-addr) with this host's
certificate of its role (<state-dir>/tls, issued and renewed by up).

Without --headless the supervisor runs detached and the console opens;
quitting the console leaves the platform running. A second 'paddock up'
attaches to the running platform. 'paddock down' stops it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runUp(cmd.Context(), app) },
	}
	d := platform.Defaults()
	f := c.Flags()
	f.Bool("headless", false, "no console: print where everything listens and stay in the foreground until SIGINT/SIGTERM")
	f.Int("zones", d.Zones, "number of zones (zone-1 … zone-N), one allocator each")
	f.Int("allocators-per-zone", d.AllocatorsPerZone, "allocators per zone")
	f.String("allocator-memory", engine.FormatSize(d.AllocatorMemoryMB), "memory each allocator offers to nodes")
	f.Int("zk-port", d.ZKPort, "ZooKeeper client port (0: a free port)")
	f.Int("api-port", d.APIPort, "API HTTP port (0: a free port)")
	f.Int("proxy-port", d.ProxyPort, "proxy HTTP port (0: a free port, -1: off, HTTPS only)")
	f.Int("s3-port", d.S3Port, "the object store's S3 port, the default snapshot repository (0: a free port, kept across restarts; -1: no object store)")
	f.Int("proxy-https-port", d.ProxyHTTPSPort, "proxy HTTPS port, certificates from the platform CA (0: a free port, -1: off; not yet with --containers)")
	f.String("director-tunnel-addr", d.DirectorTunnelAddr, "director's mTLS tunnel in front of ZooKeeper ('-' disables)")
	f.String("director-enroll-addr", d.DirectorEnrollAddr, "director's enrollment endpoint, HTTPS ('-' disables)")
	f.Duration("cert-ttl", director.DefaultCertTTL, "lifetime of the agents' tunnel certificates (renewed at 2/3)")
	f.String("runtime", allocator.RuntimeDocker, "allocator runtime: docker, or sim (no containers)")
	f.StringToString("label", nil, "extra labels on every Docker object the allocators create (tests: paddock.test=<name>)")
	f.Duration("start-timeout", d.StartTimeout, "how long to wait for the platform to be ready")
	f.Bool("containers", false, "run every platform service in its own container of paddock/platform:<version>-<binary sha256> (ZooKeeper stays a host process)")
	f.StringToString("scale", nil, "with --containers: containers per service, such as constructor=2,proxy=2")
	f.String("theme", "dark", "console theme")
	f.Int("screen", 1, "console screen to open")
	return c
}

// upConfig maps the flags to platform.Config.
func upConfig(app *App) (platform.Config, error) {
	v := app.V
	cfg := platform.Config{StateDir: app.StateDir(), Zones: v.GetInt("zones"), AllocatorsPerZone: v.GetInt("allocators-per-zone"),
		ZKPort: v.GetInt("zk-port"), APIPort: v.GetInt("api-port"), ProxyPort: v.GetInt("proxy-port"), ProxyHTTPSPort: v.GetInt("proxy-https-port"), S3Port: v.GetInt("s3-port"),
		DirectorTunnelAddr: v.GetString("director-tunnel-addr"), DirectorEnrollAddr: v.GetString("director-enroll-addr"),
		CertTTL: v.GetDuration("cert-ttl"), Runtime: v.GetString("runtime"), Labels: v.GetStringMapString("label"),
		StartTimeout: v.GetDuration("start-timeout"), Timeout: v.GetDuration("timeout"), Containers: v.GetBool("containers"),
		Version: Version, Logger: app.Log}
	mem, err := engine.ParseSize(v.GetString("allocator-memory"))
	if err != nil {
		return cfg, usageErr("--allocator-memory: %v", err)
	}
	cfg.AllocatorMemoryMB = mem
	for k, s := range v.GetStringMapString("scale") {
		n, err := strconv.Atoi(s)
		if err != nil {
			return cfg, usageErr("--scale %s=%s: use 1 to 9", k, s)
		}
		if cfg.Scale == nil {
			cfg.Scale = map[string]int{}
		}
		cfg.Scale[k] = n
	}
	if cfg.Binary, err = os.Executable(); err != nil {
		return cfg, fmt.Errorf("find this binary: %w", err)
	}
	return cfg, nil
}

func runUp(ctx context.Context, app *App) error {
	cfg, err := upConfig(app)
	if err != nil {
		return err
	}
	return platform.Up(ctx, cfg, platform.UpOptions{Headless: app.V.GetBool("headless"), LogLevel: app.V.GetString("log-level"),
		Out: app.Out, Err: app.Err, Console: func(ctx context.Context, st platform.Status) error { return openConsole(ctx, app, st) }})
}

// openConsole points the CLI at the platform and opens the console (or
// says where everything listens when stdout is no terminal).
func openConsole(ctx context.Context, app *App, st platform.Status) error {
	app.V.Set("zk", st.ZooKeeper)
	app.V.Set("zk-tls", false)
	if st.Tunnel != "" {
		app.V.Set("zk", st.Tunnel)
		app.V.Set("zk-tls", true)
	}
	if !isTerminal(app.Out) {
		platform.PrintWhere(app.Out, st)
		return nil
	}
	return RunConsole(ctx, app, 0)
}
