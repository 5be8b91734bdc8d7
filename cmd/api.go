package cmd

import "github.com/spf13/cobra"

func newAPICmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "api",
		Short: "Run the REST API",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return notYet("paddock api")
		},
	}
}
