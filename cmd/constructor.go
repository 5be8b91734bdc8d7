package cmd

import (
	"github.com/spf13/cobra"

	"paddock/agents/constructor"
	"paddock/engine"
)

func newConstructorCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "constructor",
		Short: "Run the constructor: the scheduler that places instances and drives plans",
		Long: `Run a constructor. Several may run; one leads (ZooKeeper election under
/paddock/leader/constructor) and the others take over within the session
timeout when it goes. The leader runs pending plans step by step (their
activity is in 'paddock deployment activity ID'), places instances over
zones with the platform's placement strategy, writes routes, and replaces
the instances of allocators lost longer than lost_allocator_grace_seconds
(platform config, read live).

--join DIRECTOR --token T enrolls this host with the constructor role
(once); from then on it reaches ZooKeeper through the director's
mutual-TLS tunnel, renewing its certificate while it runs, and calls the
deployment nodes (snapshots, restores, replication peers) through their
allocators' node tunnels with that certificate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := app.V
			ctx := cmd.Context()
			// Through the director's tunnel when this host joined (or
			// `paddock up` issued its certificates), renewed while it runs;
			// the same certificate opens the allocators' node tunnels:
			// snapshots, restores and peers go through them.
			l, s, err := app.agentStore(ctx, cmd, engine.RoleConstructor)
			if err != nil {
				return err
			}
			defer s.Close()
			return constructor.Run(ctx, constructor.Config{
				Store:             s,
				ID:                v.GetString("id"),
				MetricsAddr:       v.GetString("metrics-addr"),
				HealthyTimeout:    v.GetDuration("healthy-timeout"),
				StepTimeout:       v.GetDuration("step-timeout"),
				StepDeadline:      v.GetDuration("step-deadline"),
				PauseSettle:       v.GetDuration("pause-settle"),
				FailoverGrace:     v.GetDuration("failover-grace"),
				MigrateBySnapshot: v.GetBool("migrate-by-snapshot"),
				RecoveryStall:     v.GetDuration("recovery-stall"),
				NodeLoader:        l.Loader(),
				Logger:            app.Log,
			})
		},
	}
	AddJoinFlags(c)
	f := c.Flags()
	f.String("id", "", "constructor id in the election and plan activity (default constructor-<host>-<pid>)")
	f.String("metrics-addr", "127.0.0.1:9402", "address of /metrics, /healthz and /readyz (empty: none)")
	f.Duration("healthy-timeout", 0, "how long new instances may take to run healthy before a plan rolls back (default 3m)")
	f.Duration("step-timeout", 0, "bound of one node operation: snapshot, restore (default 2m)")
	f.Duration("step-deadline", 0, "a plan step that waits is blocked past this (alarm and paddock_plan_step_blocked; default 2m)")
	f.Duration("pause-settle", 0, "how long a route stays paused before the final sync (default 1s)")
	f.Bool("migrate-by-snapshot", false, "grow-and-shrink plans move data to new Elasticsearch nodes by snapshot, restore and a paused final sync (default: by replication recovery, route never paused, whenever the primary runs)")
	f.Duration("recovery-stall", 0, "recovery of new copies making no progress this long falls back to snapshot and restore (default 30s)")
	f.Bool("migrate-by-recovery", true, "no effect: recovery is the default (see --migrate-by-snapshot)")
	_ = f.MarkDeprecated("migrate-by-recovery", "recovery is the default; --migrate-by-snapshot opts out")
	f.Duration("failover-grace", 0, "how long a deployment's primary may look lost before an in-sync replica is promoted (default 3s)")
	return c
}
