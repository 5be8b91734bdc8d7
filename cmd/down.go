package cmd

import "github.com/spf13/cobra"

func newDownCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop the platform started by paddock up",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return notYet("paddock down")
		},
	}
}
