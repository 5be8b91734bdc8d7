package cmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"paddock/agents/proxy"
	"paddock/engine"
)

func newProxyCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "proxy",
		Short: "Run a proxy: route client traffic to deployments by id",
		Long: `Run a proxy: requests to <id>.<domain> (or with X-Found-Cluster: <id>)
go to the deployment's healthy Elasticsearch nodes, <id>.kb.<domain> to its
Kibana. The routing table comes from ZooKeeper and is kept on disk, so the
proxy keeps serving (and can start) while ZooKeeper is down.

--routes-file serves a fixed table (the disk cache format) without
ZooKeeper: for benchmarks and isolated tests.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := app.V
			id := v.GetString("id")
			if id == "" {
				host, _ := os.Hostname()
				id = "proxy-" + host
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
			}
			if cfg.TLSCertFile == "" && cfg.HTTPSAddr != "" {
				if cmd.Flags().Changed("https-addr") {
					return usageErr("--https-addr needs --tls-cert and --tls-key")
				}
				cfg.HTTPSAddr = ""
				app.Log.Info("HTTPS listener off: pass --tls-cert and --tls-key to serve 9243")
			}
			tc, err := backendTLS(v.GetString("backend-ca"), v.GetString("backend-cert"), v.GetString("backend-key"))
			if err != nil {
				return err
			}
			cfg.BackendTLS = tc
			if f := v.GetString("routes-file"); f != "" {
				cfg.CacheFile = f
			} else {
				cfg.CacheFile = v.GetString("cache-file")
				if cfg.CacheFile == "" {
					cfg.CacheFile = filepath.Join(app.StateDir(), "proxy", id, "routes.json")
				}
				cfg.Connect = func(ctx context.Context) (*engine.Store, error) {
					return app.Connect(ctx, engine.RoleProxy, nil)
				}
				if _, err := app.Credential(engine.RoleProxy); err != nil {
					return err
				}
			}
			switch al := v.GetString("access-log"); al {
			case "":
			default:
				var w io.Writer = app.Err
				if al != "-" {
					f, err := os.OpenFile(al, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
					if err != nil {
						return fmt.Errorf("access log %s: %w (choose another path with --access-log, or \"\" to turn it off)", al, err)
					}
					defer f.Close()
					w = f
				}
				bw := proxy.NewBufferedWriter(w, 200*time.Millisecond)
				defer bw.Close()
				cfg.AccessLog = bw
			}
			return proxy.Run(cmd.Context(), cfg)
		},
	}
	f := c.Flags()
	f.String("id", "", "proxy id under /paddock/proxies (default proxy-<hostname>)")
	f.String("http-addr", ":9200", "HTTP listen address")
	f.String("https-addr", ":9243", "HTTPS listen address (needs --tls-cert/--tls-key; \"\" turns it off)")
	f.String("tls-cert", "", "PEM certificate of the HTTPS listener")
	f.String("tls-key", "", "PEM private key of the HTTPS listener")
	f.String("domain", "", "deployments are addressed as <id>.<domain> (default: the platform's domain, localhost)")
	f.String("metrics-addr", "", "serve /metrics, /healthz, /readyz on this address")
	f.Bool("pprof", false, "serve /debug/pprof/ on --metrics-addr (profiling)")
	f.String("cache-file", "", "disk copy of the routing table (default <state-dir>/proxy/<id>/routes.json)")
	f.String("routes-file", "", "serve this fixed routing table, without ZooKeeper")
	f.String("access-log", "-", "access log file (\"-\" stderr, \"\" off)")
	f.String("backend-ca", "", "CA certificate to verify allocator tunnels (backends with tls)")
	f.String("backend-cert", "", "client certificate presented to allocator tunnels")
	f.String("backend-key", "", "client key presented to allocator tunnels")
	f.Duration("connect-timeout", 2*time.Second, "dial timeout to a backend")
	f.Duration("upstream-timeout", 60*time.Second, "wait for a backend's answer before 504")
	f.Duration("pause-timeout", 30*time.Second, "how long requests wait on a paused route before 503")
	return c
}

// backendTLS builds the client side of the allocator tunnels' mTLS.
func backendTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("backend CA %s: %w", caFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("backend CA %s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("backend client certificate %s / %s: %w", certFile, keyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
