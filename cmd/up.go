package cmd

import "github.com/spf13/cobra"

func newUpCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "up",
		Short: "Start a whole platform on this host and open the console",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return notYet("paddock up")
		},
	}
}
