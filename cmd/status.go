package cmd

import (
	"context"

	"github.com/spf13/cobra"

	"paddock/agents/platform"
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
			sum, err := platform.ReadSummary(ctx, s)
			if err != nil {
				return err
			}
			return app.output(sum, func() { sum.WriteText(app.Out) })
		},
	}
}
