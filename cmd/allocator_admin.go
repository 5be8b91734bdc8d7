package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"paddock/agents/api"
	"paddock/agents/api/client"
	"paddock/engine"
	"paddock/engine/service"
)

// addAllocatorAdminCmds adds the admin verbs under `paddock allocator`:
// list, show, maintenance, vacate, settings. They are API clients
// (apiCall).
func addAllocatorAdminCmds(app *App, c *cobra.Command) {
	v := app.V
	list := &cobra.Command{Use: "list", Short: "List allocators: zone, id, host, capacity, free, instances, connected, maintenance", Args: cobra.NoArgs,
		RunE: apiCall[api.AllocatorList]{
			call: func(ctx context.Context, cl *client.Client, _ []string) (api.AllocatorList, []byte, error) {
				return cl.ListAllocators(ctx)
			},
			text: func(w io.Writer, l api.AllocatorList) { printAllocators(w, l.Allocators) },
		}.runE(app)}
	show := &cobra.Command{Use: "show ID", Short: "Show one allocator and its instances", Args: cobra.ExactArgs(1),
		RunE: apiCall[service.AllocatorView]{call: byID((*client.Client).GetAllocator), text: printAllocator}.runE(app)}
	maint := &cobra.Command{Use: "maintenance ID --on|--off", Short: "Turn maintenance mode on (no new instances) or off", Args: cobra.ExactArgs(1),
		RunE: apiCall[service.AllocatorView]{
			check: func([]string) error {
				if v.GetBool("on") == v.GetBool("off") {
					return usageErr("give exactly one of --on and --off")
				}
				return nil
			},
			call: func(ctx context.Context, cl *client.Client, args []string) (service.AllocatorView, []byte, error) {
				return cl.Maintenance(ctx, args[0], v.GetBool("on"), v.GetString("reason"))
			},
			text: func(w io.Writer, a service.AllocatorView) {
				state := "off"
				if a.Maintenance {
					state = "on"
				}
				fmt.Fprintf(w, "allocator %s: maintenance %s\n", a.ID, state)
			},
		}.runE(app)}
	maint.Flags().Bool("on", false, "start maintenance mode")
	maint.Flags().Bool("off", false, "stop maintenance mode")
	maint.Flags().String("reason", "", "why (recorded with the flag)")
	vacate := &cobra.Command{Use: "vacate ID", Short: "Move every deployment's instances off an allocator (one move plan per deployment)", Args: cobra.ExactArgs(1),
		RunE: apiCall[service.VacateResult]{
			call: func(ctx context.Context, cl *client.Client, args []string) (service.VacateResult, []byte, error) {
				return cl.Vacate(ctx, args[0], v.GetStringSlice("target"))
			},
			text: printVacate,
			after: func(cmd *cobra.Command, cl *client.Client, res service.VacateResult) error {
				var errs []error
				failed := 0
				for _, m := range res.Moves {
					if m.ErrorMessage != "" {
						failed++
					} else if err := app.maybeTrack(cmd, cl, m.DeploymentID, m.PlanID); err != nil {
						errs = append(errs, err)
					}
				}
				if failed > 0 {
					errs = append(errs, fmt.Errorf("%d deployment(s) could not be moved off %s", failed, res.Allocator))
				}
				if len(errs) > 0 {
					return &ExitError{Code: ExitFailure, Err: errors.Join(errs...)}
				}
				return nil
			},
		}.runE(app)}
	vacate.Flags().StringSlice("target", nil, "allocators to move to (default: anywhere placement allows)")
	addTrackFlags(vacate)
	var capMB int
	settings := &cobra.Command{Use: "settings ID --capacity SIZE", Short: "Override an allocator's capacity (applied live; 0 uses what it advertises)", Args: cobra.ExactArgs(1),
		RunE: apiCall[service.AllocatorView]{
			check: func([]string) (err error) {
				if capMB, err = engine.ParseSize(v.GetString("capacity")); err != nil {
					return usageErr("--capacity: %v", err)
				}
				return nil
			},
			call: func(ctx context.Context, cl *client.Client, args []string) (service.AllocatorView, []byte, error) {
				return cl.AllocatorSettings(ctx, args[0], capMB, v.GetStringMapString("tags"))
			},
			text: func(w io.Writer, a service.AllocatorView) {
				fmt.Fprintf(w, "allocator %s: capacity %s\n", a.ID, engine.FormatSize(a.CapacityMB))
			},
		}.runE(app)}
	settings.Flags().String("capacity", "0", "capacity override such as 8g (0: what the allocator advertises)")
	settings.Flags().StringToString("tags", nil, "operator tags, such as --tags type=hot")
	for _, sub := range []*cobra.Command{list, show, maint, vacate, settings} {
		addAPIClientFlags(sub, false)
		c.AddCommand(sub)
	}
}

func printVacate(w io.Writer, res service.VacateResult) {
	if len(res.Moves) == 0 {
		fmt.Fprintf(w, "allocator %s runs no instances: nothing to move\n", res.Allocator)
	}
	for _, m := range res.Moves {
		if m.ErrorMessage != "" {
			fmt.Fprintf(w, "deployment %s: not moved: %s\n", m.DeploymentID, m.ErrorMessage)
		} else {
			fmt.Fprintf(w, "deployment %s: move plan %s written\n", m.DeploymentID, m.PlanID)
		}
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func printAllocators(w io.Writer, as []service.AllocatorView) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tID\tHOST\tCAPACITY\tFREE\tINSTANCES\tCONNECTED\tMAINTENANCE")
	for _, a := range as {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", a.Zone, a.ID, a.Host, engine.FormatSize(a.CapacityMB), engine.FormatSize(a.FreeMB),
			len(a.Instances), yesNo(a.Connected), yesNo(a.Maintenance))
	}
	tw.Flush()
}

func printAllocator(w io.Writer, a service.AllocatorView) {
	printAllocators(w, []service.AllocatorView{a})
	if len(a.Instances) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tDEPLOYMENT\tKIND\tSIZE\tVERSION\tSTATE\tHEALTHY\tRESTARTS")
	for _, in := range a.Instances {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", in.ID, in.DeploymentID, in.Kind, engine.FormatSize(in.SizeMB), in.Version, in.State, yesNo(in.Healthy), in.Restarts)
	}
	tw.Flush()
}
