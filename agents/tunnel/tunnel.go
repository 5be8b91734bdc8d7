// Package tunnel is `paddock tunnel server|client` as an agent: one end
// of a mutual-TLS tunnel (package stunnel) with the agents' status
// endpoint (/metrics, /healthz, /readyz, /status) and certificate
// reloads. It owns no state; stunnel does the TLS and the forwarding.
package tunnel

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"paddock/agents/agentkit"
	"paddock/stunnel"
)

// Config is one tunnel end.
type Config struct {
	// Mode is server (TLS in, plain to Target) or client (plain in, TLS
	// to Connect).
	Mode, Listen string
	Target       string
	Connect, SNI string
	// Options: name, the certificate loader, who is admitted, timeouts.
	Options stunnel.Options
	// ReloadInterval re-reads the certificate files (0: on SIGHUP only).
	ReloadInterval time.Duration
	MetricsAddr    string
	Logger         *slog.Logger
}

// Run serves the tunnel end until ctx ends (live connections drain for
// Options.DrainTimeout). A Config to correct is an *agentkit.ConfigError.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("agent", "tunnel")
	opts := cfg.Options
	reg := agentkit.NewRegistry()
	opts.Metrics = stunnel.NewMetrics(reg)
	var end stunnel.Statuser
	var serve func(context.Context, string) error
	switch cfg.Mode {
	case "server":
		s, err := stunnel.NewServer(stunnel.ServerConfig{Options: opts, Target: stunnel.DialTarget(cfg.Target), TargetDesc: cfg.Target, Logger: log})
		if err != nil {
			return &agentkit.ConfigError{Err: err}
		}
		end, serve = s, s.ListenAndServe
	case "client":
		if cfg.Connect == "" {
			return agentkit.ConfigErrorf("--connect host:port is required: the tunnel server to reach")
		}
		c, err := stunnel.NewClient(stunnel.ClientConfig{Options: opts, Remote: cfg.Connect, ServerName: cfg.SNI, Logger: log})
		if err != nil {
			return &agentkit.ConfigError{Err: err}
		}
		end, serve = c, c.ListenAndServe
	default:
		return agentkit.ConfigErrorf("tunnel mode %q: use server or client", cfg.Mode)
	}
	st := agentkit.NewStatus()
	opts.Loader.OnLoad(func(_ *stunnel.Material, err error) {
		if err != nil {
			st.Set("certificate", "last reload failed, old certificate in use: "+err.Error())
		} else {
			st.Set("certificate", "")
		}
	})
	if _, err := agentkit.Serve(ctx, cfg.MetricsAddr, reg, st, log, map[string]http.Handler{"/status": stunnel.StatusHandler(end)}); err != nil {
		return err
	}
	go opts.Loader.WatchReload(ctx, cfg.ReloadInterval, log)
	st.SetReady(true)
	m := opts.Loader.Current()
	log.Info("tunnel started", "mode", cfg.Mode, "listen", cfg.Listen, "identity", m.Identity.String(),
		"allow", opts.Allow.String(), "cert_not_after", m.Leaf.NotAfter)
	return serve(ctx, cfg.Listen)
}
