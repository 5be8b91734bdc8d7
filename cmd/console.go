package cmd

import "github.com/spf13/cobra"

func newConsoleCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "console",
		Short: "Open the terminal console",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return notYet("paddock console")
		},
	}
}
