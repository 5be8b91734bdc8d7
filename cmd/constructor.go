package cmd

import "github.com/spf13/cobra"

func newConstructorCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "constructor",
		Short: "Run the constructor: the scheduler that places instances and drives plans",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return notYet("paddock constructor")
		},
	}
}
