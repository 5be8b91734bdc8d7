package cmd

import "github.com/spf13/cobra"

func newNodeCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "node",
		Short: "Run the stand-in search node (inside a container)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return notYet("paddock node")
		},
	}
}
