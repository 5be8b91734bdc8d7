package cmd

import (
	"context"

	"github.com/spf13/cobra"

	"paddock/agents/api/client"
	"paddock/engine/service"
)

// newDoctorCmd: `paddock doctor`.
func newDoctorCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Run the operator's checks: ZooKeeper quorum and lag, capacity, certificates, stuck plans, stale proxies, headroom",
		Long: `Runs, through the API, the checks an experienced operator runs by hand:
ZooKeeper quorum and follower lag, a constructor leading, single-zone
deployments, allocators over 90% full, certificates expiring within 7 days
(the CA within 30), plans past their step deadline, proxies whose route
cache is stale, version skew between agents, snapshots, and zone-loss
headroom. Each finding has a severity (ok, warning, critical) and what to
do; the worst come first.`,
		Args: cobra.NoArgs,
		RunE: apiCall[service.DoctorReport]{
			call: func(ctx context.Context, cl *client.Client, _ []string) (service.DoctorReport, []byte, error) {
				return cl.Doctor(ctx)
			},
			text: client.WriteDoctor,
		}.runE(app),
	}
}
