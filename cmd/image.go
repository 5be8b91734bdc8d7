package cmd

import "github.com/spf13/cobra"

func newImageCmd(app *App) *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Build the local node and platform images"}
	c.AddCommand(&cobra.Command{Use: "build", Short: "Build paddock/node:<version> images from this binary",
		RunE: func(cmd *cobra.Command, _ []string) error { return notYet("paddock image build") }})
	return c
}
