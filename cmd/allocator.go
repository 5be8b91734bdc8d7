package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"paddock/agents/agentkit"
	"paddock/agents/allocator"
	"paddock/engine"
	"paddock/stunnel"
)

// newAllocatorCmd: `paddock allocator [flags]` runs the agent;
// its subcommands (list, maintenance, vacate) are admin verbs, added by
// addAllocatorAdminCmds (allocator_admin.go).
func newAllocatorCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "allocator",
		Short: "Run an allocator agent, or manage allocators (list, maintenance, vacate)",
		Long: `Run an allocator: register this host in ZooKeeper and run the node
containers the constructor assigns to it on the local Docker engine.

Node images paddock/node:<version> must exist (paddock image build), or
the allocator builds them itself when it runs from a static binary.
--runtime sim runs no containers and reports every instance running and
healthy at once: a scale-test mode for the control plane.

With --join DIRECTOR --token T the host enrolls first (allocator role).
A host holding an allocator certificate (it joined, or zk-tls is set)
reaches ZooKeeper through the director's mTLS tunnel, renews the
certificate while it runs, and serves its nodes to proxies (and the
constructor) only through its own mTLS tunnel on --tunnel-addr (:9400):
node ports stay published on --publish-ip (loopback by default).
Its nodes then reach their peers (replication, recovery, forwarding)
only through it: each node container gets a unix socket of its own
(<state-dir>/egress/<instance>, at /run/paddock in the container)
that forwards to the peer's allocator tunnel over mTLS.
--isolate-nodes puts this allocator's nodes on networks of their own
(paddock-dep-<deployment>-<allocator>), so nodes of two allocators of
one host have no plain path between them either.`,
		RunE: func(cmd *cobra.Command, _ []string) error { return runAllocator(cmd, app) },
	}
	AddJoinFlags(c)
	f := c.Flags()
	f.String("id", allocator.DefaultID(), "allocator id (unique in the platform)")
	f.String("zone", "zone-1", "availability zone of this host")
	f.String("host", "", "address proxies use to reach this host's nodes (default: --publish-ip)")
	f.String("publish-ip", "127.0.0.1", "host address node ports are published on (one interface, never 0.0.0.0)")
	f.String("capacity", "", "memory offered to nodes, such as 16g (default 85% of host memory)")
	f.StringToString("tags", nil, "allocator tags, such as --tags instance_family=io,ssd=true")
	f.String("runtime", allocator.RuntimeDocker, "docker, or sim (no containers; scale tests)")
	f.String("snapshot-dir", "", "shared snapshot repository directory mounted at /snapshots in nodes (default <state-dir>/snapshots)")
	f.String("image-repo", allocator.DefaultImageRepo, "repository of node images")
	f.String("node-binary", "", "static paddock binary to build missing node images with (default: this binary if it is static)")
	f.Bool("build-images", true, "build a missing node image from the static binary (false: report the instance failed)")
	f.Int64("pids-limit", 512, "process limit per node container")
	f.Duration("probe-interval", 0, "interval between node health probes (default 2s)")
	f.Duration("probe-timeout", 0, "timeout of one health probe (default 1s)")
	f.Int("failure-threshold", 3, "consecutive failed health probes before a node is restarted")
	f.Duration("start-timeout", 0, "restart a node not healthy this long after start (default 60s)")
	f.Duration("stop-timeout", 0, "time between SIGTERM and SIGKILL when stopping a node (default 10s)")
	f.Duration("volume-grace", 0, "keep the data volume of a removed node this long (default 24h)")
	f.String("metrics-addr", "127.0.0.1:9401", "address of /metrics, /healthz and /readyz (empty: none)")
	f.String("tunnel-addr", allocator.DefaultTunnelListen, "listen address of the mTLS tunnel in front of the nodes, used when this host holds an allocator certificate ('-': no tunnel)")
	f.Bool("isolate-nodes", false, "one Docker network per deployment for this allocator's nodes alone (their peers are reached through the node tunnels)")
	f.StringToString("label", nil, "extra labels on every Docker object this allocator creates (paddock up --containers: paddock.up=<platform>)")
	addAllocatorAdminCmds(app, c)
	return c
}

func runAllocator(cmd *cobra.Command, app *App) error {
	v := app.V
	ctx := app.Ctx
	capMB := 0
	if s := v.GetString("capacity"); s != "" {
		n, err := engine.ParseSize(s)
		if err != nil {
			return usageErr("--capacity: %v", err)
		}
		capMB = n
	}
	bin := v.GetString("node-binary")
	if !v.GetBool("build-images") {
		bin = ""
	} else if bin == "" && v.GetString("runtime") == allocator.RuntimeDocker {
		bin = allocator.SelfIfStatic(app.Log)
	}
	cfg := allocator.Config{
		ID: v.GetString("id"), Zone: v.GetString("zone"), Host: v.GetString("host"), PublishIP: v.GetString("publish-ip"),
		CapacityMB: capMB, Tags: v.GetStringMapString("tags"), StateDir: app.StateDir(), SnapshotDir: v.GetString("snapshot-dir"),
		Runtime: v.GetString("runtime"), ImageRepo: v.GetString("image-repo"), NodeBinary: bin, PidsLimit: v.GetInt64("pids-limit"),
		ProbeInterval: v.GetDuration("probe-interval"), ProbeTimeout: v.GetDuration("probe-timeout"),
		FailureThreshold: v.GetInt("failure-threshold"), StartTimeout: v.GetDuration("start-timeout"),
		StopTimeout: v.GetDuration("stop-timeout"), VolumeGrace: v.GetDuration("volume-grace"),
		MetricsAddr: v.GetString("metrics-addr"), Logger: app.Log, Version: Version, Labels: v.GetStringMapString("label"),
		IsolateNodes: v.GetBool("isolate-nodes"),
	}
	if err := allocatorTLS(ctx, cmd, app, &cfg); err != nil {
		return err
	}
	if err := allocator.Run(ctx, cfg); err != nil {
		return fmt.Errorf("allocator %s: %w", cfg.ID, err)
	}
	return nil
}

// allocatorTLS wires the host's allocator certificate into cfg: the
// ZooKeeper connection through the director's tunnel (when this host
// joined or zk-tls is set), renewed while the allocator runs, and the
// node tunnel (--tunnel-addr) presenting the same certificate. A host
// without a certificate connects directly and runs no tunnel.
func allocatorTLS(ctx context.Context, cmd *cobra.Command, app *App, cfg *allocator.Config) error {
	reg := agentkit.NewRegistry()
	metrics := stunnel.NewMetrics(reg)
	cfg.Registry, cfg.TunnelMetrics = reg, metrics
	l, err := app.agentLink(ctx, cmd, engine.RoleAllocator, metrics)
	if err != nil {
		return err
	}
	cfg.ZK, cfg.TunnelLoader, cfg.TunnelListen = l.Options(), l.Loader(), app.V.GetString("tunnel-addr")
	return nil
}
