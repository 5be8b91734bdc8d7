package cmd

import "github.com/spf13/cobra"

func newProxyCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "proxy",
		Short: "Run a proxy: route client traffic to deployments by id",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return notYet("paddock proxy")
		},
	}
}
