package director

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"paddock/agents/agentkit"
	"paddock/engine"
	"paddock/stunnel"
)

// SecondaryConfig configures a director host that joined with the
// director role: it runs one ZooKeeper server of the ensemble and the
// tunnel in front of it. The CA and enrollment stay with the first
// director (the CA key never leaves its host).
type SecondaryConfig struct {
	// StateDir holds the host's join (tls/director.crt, join.json).
	StateDir string
	// ZKDir is where the local ZooKeeper server keeps its data.
	ZKDir string
	// Server is the local server's addresses (its id is assigned).
	Server ZKServer
	// SuperPassword is ZooKeeper's super password, the same on every
	// server of the ensemble.
	SuperPassword string
	TunnelAddr    string
	MetricsAddr   string
	Logger        *slog.Logger
	Ready         func(Addrs)
}

// RunSecondary grows the ensemble by a server on this host, runs the
// ZooKeeper tunnel in front of it until ctx ends, then removes the
// server from the ensemble (so the quorum stays right) and stops it.
func RunSecondary(ctx context.Context, cfg SecondaryConfig) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TunnelAddr == "" {
		cfg.TunnelAddr = DefaultTunnelAddr
	}
	log := cfg.Logger.With("agent", "director", "mode", "secondary")
	reg := agentkit.NewRegistry()
	tm := stunnel.NewMetrics(reg)
	at, err := NewAgentTLS(cfg.StateDir, "director", tm, cfg.Logger)
	if err != nil {
		return err
	}
	z, st, err := GrowEnsemble(ctx, cfg.StateDir, cfg.ZKDir, cfg.Server, cfg.SuperPassword)
	if err != nil {
		return err
	}
	log.Info("ZooKeeper server added to the ensemble", "server", z.Server.Line(), "voters", st.Voters, "leader", st.Leader)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := ShrinkEnsemble(sctx, cfg.StateDir, z.Server.ID); err != nil {
			log.Error("could not remove this ZooKeeper server from the ensemble: remove it by hand (reconfig -remove)", "id", z.Server.ID, "err", err)
		} else {
			log.Info("ZooKeeper server removed from the ensemble", "id", z.Server.ID)
		}
		z.Stop()
	}()
	srv, err := stunnel.NewServer(stunnel.ServerConfig{
		Options: stunnel.Options{Name: "zookeeper", Loader: at.Loader, Allow: stunnel.Allow{Roles: engine.RoleNames(TunnelRoles)}, Metrics: tm, DrainTimeout: 5 * time.Second},
		Target:  stunnel.DialTarget(z.Server.Client), TargetDesc: z.Server.Client, Logger: cfg.Logger,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.TunnelAddr)
	if err != nil {
		return fmt.Errorf("ZooKeeper tunnel: listen on %s: %w (choose another with --tunnel-addr)", cfg.TunnelAddr, err)
	}
	status := agentkit.NewStatus()
	maddr, err := agentkit.Serve(ctx, cfg.MetricsAddr, reg, status, cfg.Logger, map[string]http.Handler{"/status": stunnel.StatusHandler(srv)})
	if err != nil {
		ln.Close()
		return err
	}
	go at.Run(ctx)
	status.SetReady(true)
	if cfg.Ready != nil {
		cfg.Ready(Addrs{Tunnel: ln.Addr().String(), Metrics: maddr})
	}
	return srv.Serve(ctx, ln)
}
