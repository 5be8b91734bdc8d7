package cmd

import (
	"context"
	"errors"

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
do; the worst come first. Exits 1 when a check is critical (0 with
warnings only), so scripts and monitors can run it as a probe.`,
		Args: cobra.NoArgs,
		RunE: apiCall[service.DoctorReport]{
			call: func(ctx context.Context, cl *client.Client, _ []string) (service.DoctorReport, []byte, error) {
				return cl.Doctor(ctx)
			},
			text: client.WriteDoctor,
			after: func(_ *cobra.Command, _ *client.Client, rep service.DoctorReport) error {
				if rep.Status == service.SeverityCritical {
					return &ExitError{Code: ExitFailure, Err: errors.New("doctor: critical findings above")}
				}
				return nil
			},
		}.runE(app),
	}
}
