package cmd

import (
	"context"
	"errors"
	"io"

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
			text: func(w io.Writer, l api.AllocatorList) { client.WriteAllocators(w, l.Allocators) },
		}.runE(app)}
	show := &cobra.Command{Use: "show ID", Short: "Show one allocator and its instances", Args: cobra.ExactArgs(1),
		RunE: apiCall[service.AllocatorView]{call: byID((*client.Client).GetAllocator), text: client.WriteAllocator}.runE(app)}
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
			text: client.WriteMaintenance,
		}.runE(app)}
	maint.Flags().Bool("on", false, "start maintenance mode")
	maint.Flags().Bool("off", false, "stop maintenance mode")
	maint.Flags().String("reason", "", "why (recorded with the flag)")
	vacate := &cobra.Command{Use: "vacate ID", Short: "Move every deployment's instances off an allocator (one move plan per deployment)", Args: cobra.ExactArgs(1),
		RunE: apiCall[service.VacateResult]{
			call: func(ctx context.Context, cl *client.Client, args []string) (service.VacateResult, []byte, error) {
				return cl.Vacate(ctx, args[0], v.GetStringSlice("target"))
			},
			text: client.WriteVacate,
			after: func(cmd *cobra.Command, cl *client.Client, res service.VacateResult) error {
				var errs []error
				for _, m := range res.Moves {
					if m.ErrorMessage == "" {
						errs = append(errs, app.maybeTrack(cmd, cl, m.DeploymentID, m.PlanID))
					}
				}
				return errors.Join(append(errs, client.VacateFailures(res))...)
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
			text: client.WriteCapacity,
		}.runE(app)}
	settings.Flags().String("capacity", "0", "capacity override such as 8g (0: what the allocator advertises)")
	settings.Flags().StringToString("tags", nil, "operator tags, such as --tags type=hot")
	for _, sub := range []*cobra.Command{list, show, maint, vacate, settings} {
		addAPIClientFlags(sub, false)
		c.AddCommand(sub)
	}
}
