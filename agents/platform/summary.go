package platform

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"paddock/agents/director"
	"paddock/engine"
)

// Summary is what `paddock status` shows: the platform's one-screen
// summary and, when the ZooKeeper servers run with dynamic
// configuration, the ensemble (members, leader, quorum).
type Summary struct {
	engine.PlatformSummary
	Ensemble *director.EnsembleStatus `json:"ensemble,omitempty"`
}

// ReadSummary reads the summary through s.
func ReadSummary(ctx context.Context, s *engine.Store) (Summary, error) {
	sum, err := s.Summary(ctx)
	if err != nil {
		return Summary{}, err
	}
	out := Summary{PlatformSummary: sum}
	if ens, err := director.Ensemble(ctx, s.Conn()); err == nil && len(ens.Members) > 0 {
		out.Ensemble = &ens
	}
	return out, nil
}

// WriteText writes the summary as `paddock status` prints it.
func (sum Summary) WriteText(w io.Writer) {
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
	if sum.Ensemble != nil {
		sum.Ensemble.WriteText(w)
	}
}
