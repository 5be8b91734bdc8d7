package cmd

import (
	"context"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"paddock/agents/agentkit"
	"paddock/agents/proxy"
	"paddock/engine"
	"paddock/stunnel"
)

func newProxyCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "proxy",
		Short: "Run a proxy: route client traffic to deployments by id",
		Long: `Run a proxy: requests to <id>.<domain> (or with X-Found-Cluster: <id>)
go to the deployment's healthy Elasticsearch nodes, <id>.kb.<domain> to its
Kibana. The routing table comes from ZooKeeper and is kept on disk, so the
proxy keeps serving (and can start) while ZooKeeper is down.

A host that joined the platform (--join DIRECTOR --token T once, with a
roles token holding the proxy role; or 'paddock up') reaches ZooKeeper
through the director's mutual-TLS tunnel and dials deployment nodes behind
the allocators' tunnels (:9400) with its proxy certificate, renewed while
it runs.

--routes-file serves a fixed table (the disk cache format) without
ZooKeeper: for benchmarks and isolated tests.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runProxy(cmd, app) },
	}
	f := c.Flags()
	f.String("id", "", "proxy id under /paddock/proxies (default proxy-<hostname>)")
	f.String("http-addr", ":9200", "HTTP listen address (\"\": HTTPS only)")
	f.String("https-addr", ":9243", "HTTPS listen address (needs --tls-cert/--tls-key; \"\" turns it off)")
	f.String("tls-cert", "", "PEM certificate of the HTTPS listener")
	f.String("tls-key", "", "PEM private key of the HTTPS listener")
	f.String("domain", "", "deployments are addressed as <id>.<domain> (default: the platform's domain, localhost)")
	f.String("metrics-addr", "", "serve /metrics, /healthz, /readyz on this address")
	f.Bool("pprof", false, "serve /debug/pprof/ on --metrics-addr (profiling)")
	f.String("cache-file", "", "disk copy of the routing table (default <state-dir>/proxy/<id>/routes.json)")
	f.String("routes-file", "", "serve this fixed routing table, without ZooKeeper")
	f.String("access-log", "-", "access log file (\"-\" stderr, \"\" off)")
	f.String("backend-cert", "", "proxy-role certificate presented to allocator node tunnels (default: <state-dir>/tls/proxy.crt when this host joined); reloaded on SIGHUP and every minute")
	f.String("backend-key", "", "private key of --backend-cert")
	f.String("backend-ca", "", "platform CA the allocator tunnels' certificates must chain to (with --backend-cert)")
	f.String("backend-crl", "", "revocation list of the platform CA (PEM, optional, with --backend-cert)")
	f.Duration("connect-timeout", 2*time.Second, "dial timeout to a backend")
	f.Duration("upstream-timeout", 60*time.Second, "wait for a backend's answer before 504")
	f.Duration("pause-timeout", 30*time.Second, "how long requests wait on a paused route before 503")
	f.String("trusted-proxies", "", "load balancers (CIDR,...) whose X-Forwarded-For names the client, for traffic filters and the access log")
	f.Bool("proxy-protocol", false, "every connection begins with a PROXY protocol v2 header (from --trusted-proxies when set)")
	f.Int("event-loops", 0, "epoll event loops serving the HTTP listener (0: one per GOMAXPROCS; -1: a goroutine per connection instead)")
	AddJoinFlags(c)
	return c
}

// runProxy maps the flags to proxy.Config and runs the proxy.
func runProxy(cmd *cobra.Command, app *App) error {
	v := app.V
	id := v.GetString("id")
	if id == "" {
		id = proxy.DefaultID()
	}
	cfg := proxy.Config{
		ID:              id,
		HTTPAddr:        v.GetString("http-addr"),
		HTTPSAddr:       v.GetString("https-addr"),
		TLSCertFile:     v.GetString("tls-cert"),
		TLSKeyFile:      v.GetString("tls-key"),
		Domain:          v.GetString("domain"),
		MetricsAddr:     v.GetString("metrics-addr"),
		Pprof:           v.GetBool("pprof"),
		Logger:          app.Log,
		ConnectTimeout:  v.GetDuration("connect-timeout"),
		UpstreamTimeout: v.GetDuration("upstream-timeout"),
		PauseTimeout:    v.GetDuration("pause-timeout"),
		EventLoops:      v.GetInt("event-loops"),
		ProxyProtocol:   v.GetBool("proxy-protocol"),
	}
	var err error
	if cfg.TrustedProxies, err = proxy.ParsePrefixes(v.GetString("trusted-proxies")); err != nil {
		return usageErr("--trusted-proxies: %v", err)
	}
	if cfg.TLSCertFile == "" && cfg.HTTPSAddr != "" {
		if cmd.Flags().Changed("https-addr") {
			return usageErr("--https-addr needs --tls-cert and --tls-key")
		}
		cfg.HTTPSAddr = ""
		app.Log.Info("HTTPS listener off: pass --tls-cert and --tls-key to serve 9243")
	}
	ctx := cmd.Context()
	cfg.Registry = agentkit.NewRegistry()
	if f := v.GetString("routes-file"); f != "" {
		// A fixed table, without ZooKeeper.
		cfg.CacheFile = f
	} else {
		// Joined hosts (and `paddock up`'s) hold a proxy
		// certificate: ZooKeeper through the director's tunnel,
		// and the allocators' node tunnels (backends with tls)
		// with mutual TLS, renewed while the proxy runs.
		l, err := app.agentLink(ctx, cmd, engine.RoleProxy, stunnel.NewMetrics(cfg.Registry))
		if err != nil {
			return err
		}
		cfg.BackendLoader = l.Loader()
		cfg.Connect = func(ctx context.Context) (*engine.Store, error) { return l.Connect(ctx, nil) }
		if cfg.CacheFile = v.GetString("cache-file"); cfg.CacheFile == "" {
			cfg.CacheFile = filepath.Join(app.StateDir(), "proxy", id, "routes.json")
		}
	}
	bl, err := proxy.BackendFiles(ctx, v.GetString("backend-cert"), v.GetString("backend-key"),
		v.GetString("backend-ca"), v.GetString("backend-crl"), app.Log)
	if err != nil {
		return err
	} else if bl != nil {
		cfg.BackendLoader = bl
	}
	if cfg.BackendLoader == nil {
		app.Log.Info("no proxy certificate on this host: backends behind allocator tunnels (tls) cannot be reached; join with --join DIRECTOR --token T or pass --backend-cert/--backend-key/--backend-ca")
	}
	access, closeAccess, err := proxy.OpenAccessLog(v.GetString("access-log"), app.Err)
	if err != nil {
		return err
	}
	defer closeAccess()
	cfg.AccessLog = access
	return proxy.Run(ctx, cfg)
}
