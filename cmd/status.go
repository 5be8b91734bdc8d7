package cmd

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"paddock/agents/director"
	"paddock/engine"
)

func newStatusCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "One-screen summary of the platform (zones, allocators, capacity, deployments, plans)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), app.V.GetDuration("timeout")+5e9)
			defer cancel()
			s, err := app.Connect(ctx, engine.RoleAdmin, nil)
			if err != nil {
				return err
			}
			defer s.Close()
			sum, err := s.Summary(ctx)
			if err != nil {
				return err
			}
			// The ZooKeeper ensemble (members, leader, quorum), when the
			// servers run with dynamic configuration.
			ens, err := director.Ensemble(ctx, s.Conn())
			if err != nil || len(ens.Members) == 0 {
				ens = director.EnsembleStatus{}
			}
			if app.JSON() {
				out := struct {
					engine.PlatformSummary
					Ensemble *director.EnsembleStatus `json:"ensemble,omitempty"`
				}{PlatformSummary: sum}
				if len(ens.Members) > 0 {
					out.Ensemble = &ens
				}
				return app.PrintJSON(out)
			}
			printSummary(app, sum)
			printEnsemble(app, ens)
			return nil
		},
	}
}

func printSummary(app *App, sum engine.PlatformSummary) {
	w := app.Out
	fmt.Fprintf(w, "ZooKeeper    %s\n", sum.ZooKeeper)
	fmt.Fprintf(w, "Allocators   %d/%d alive\n", sum.AllocatorsAlive, sum.AllocatorsTotal)
	fmt.Fprintf(w, "Capacity     %s used of %s\n", engine.FormatSize(sum.UsedMB), engine.FormatSize(sum.CapacityMB))
	fmt.Fprintf(w, "Deployments  %d", sum.Deployments)
	for _, st := range []string{engine.DeploymentRunning, engine.DeploymentInitializing, engine.DeploymentReconfiguring, engine.DeploymentFailed, engine.DeploymentDeleting} {
		if n := sum.DeploymentsByStatus[st]; n > 0 {
			fmt.Fprintf(w, "  %s %d", st, n)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Plans        %d pending\n", sum.PendingPlans)
	fmt.Fprintf(w, "Proxies      %d\n", sum.Proxies)
	if sum.ConstructorLeader != "" {
		fmt.Fprintf(w, "Constructor  leader %s\n", sum.ConstructorLeader)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tALLOCATORS\tALIVE\tMAINT\tCAPACITY\tUSED\tINSTANCES")
	for _, z := range sum.Zones {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t%d\n", z.Name, z.Allocators, z.AllocatorsAlive, z.Maintenance,
			engine.FormatSize(z.CapacityMB), engine.FormatSize(z.UsedMB), z.Instances)
	}
	tw.Flush()
}
