package cmd

import "github.com/spf13/cobra"

func newDirectorCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "director",
		Short: "Run the director: certificate authority, roles tokens, ZooKeeper tunnels and ensemble",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return notYet("paddock director")
		},
	}
}
