package cmd

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"paddock/engine"
	"paddock/engine/service"
)

// addAllocatorAdminCmds adds the admin verbs under `paddock allocator`:
// list, show, maintenance, vacate, settings. They are API clients.
func addAllocatorAdminCmds(app *App, c *cobra.Command) {
	list := &cobra.Command{
		Use:   "list",
		Short: "List allocators: zone, id, host, capacity, free, instances, connected, maintenance",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := app.apiClient()
			if err != nil {
				return err
			}
			ctx, cancel := app.apiContext(cmd)
			defer cancel()
			l, raw, err := cl.ListAllocators(ctx)
			if err != nil {
				return apiFailure(err)
			}
			return app.emit(raw, func() { printAllocators(app.Out, l.Allocators) })
		},
	}
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one allocator and its instances",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := app.apiClient()
			if err != nil {
				return err
			}
			ctx, cancel := app.apiContext(cmd)
			defer cancel()
			a, raw, err := cl.GetAllocator(ctx, args[0])
			if err != nil {
				return apiFailure(err)
			}
			return app.emit(raw, func() { printAllocator(app.Out, a) })
		},
	}
	maint := &cobra.Command{
		Use:   "maintenance ID --on|--off",
		Short: "Turn maintenance mode on (no new instances) or off",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			on, off := app.V.GetBool("on"), app.V.GetBool("off")
			if on == off {
				return usageErr("give exactly one of --on and --off")
			}
			cl, err := app.apiClient()
			if err != nil {
				return err
			}
			ctx, cancel := app.apiContext(cmd)
			defer cancel()
			a, raw, err := cl.Maintenance(ctx, args[0], on, app.V.GetString("reason"))
			if err != nil {
				return apiFailure(err)
			}
			return app.emit(raw, func() {
				state := "off"
				if a.Maintenance {
					state = "on"
				}
				fmt.Fprintf(app.Out, "allocator %s: maintenance %s\n", a.ID, state)
			})
		},
	}
	maint.Flags().Bool("on", false, "start maintenance mode")
	maint.Flags().Bool("off", false, "stop maintenance mode")
	maint.Flags().String("reason", "", "why (recorded with the flag)")
	vacate := &cobra.Command{
		Use:   "vacate ID",
		Short: "Move every deployment's instances off an allocator (one move plan per deployment)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := app.apiClient()
			if err != nil {
				return err
			}
			ctx, cancel := app.apiContext(cmd)
			defer cancel()
			res, raw, err := cl.Vacate(ctx, args[0], app.V.GetStringSlice("target"))
			if err != nil {
				return apiFailure(err)
			}
			failed := 0
			if err := app.emit(raw, func() {
				if len(res.Moves) == 0 {
					fmt.Fprintf(app.Out, "allocator %s runs no instances: nothing to move\n", res.Allocator)
				}
				for _, m := range res.Moves {
					if m.ErrorMessage != "" {
						fmt.Fprintf(app.Out, "deployment %s: not moved: %s\n", m.DeploymentID, m.ErrorMessage)
					} else {
						fmt.Fprintf(app.Out, "deployment %s: move plan %s written\n", m.DeploymentID, m.PlanID)
					}
				}
			}); err != nil {
				return err
			}
			var errs []error
			for _, m := range res.Moves {
				if m.ErrorMessage != "" {
					failed++
					continue
				}
				if err := app.maybeTrack(cmd, cl, m.DeploymentID, m.PlanID); err != nil {
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
	}
	vacate.Flags().StringSlice("target", nil, "allocators to move to (default: anywhere placement allows)")
	addTrackFlags(vacate)
	settings := &cobra.Command{
		Use:   "settings ID --capacity SIZE",
		Short: "Override an allocator's capacity (applied live; 0 uses what it advertises)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			capMB, err := engine.ParseSize(app.V.GetString("capacity"))
			if err != nil {
				return usageErr("--capacity: %v", err)
			}
			cl, err := app.apiClient()
			if err != nil {
				return err
			}
			ctx, cancel := app.apiContext(cmd)
			defer cancel()
			tags, _ := cmd.Flags().GetStringToString("tags")
			a, raw, err := cl.AllocatorSettings(ctx, args[0], capMB, tags)
			if err != nil {
				return apiFailure(err)
			}
			return app.emit(raw, func() { fmt.Fprintf(app.Out, "allocator %s: capacity %s\n", a.ID, engine.FormatSize(a.CapacityMB)) })
		},
	}
	settings.Flags().String("capacity", "0", "capacity override such as 8g (0: what the allocator advertises)")
	settings.Flags().StringToString("tags", nil, "operator tags, such as --tags type=hot")
	for _, sub := range []*cobra.Command{list, show, maint, vacate, settings} {
		addAPIClientFlags(sub, false)
		c.AddCommand(sub)
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
