package cmd

import "github.com/spf13/cobra"

// addAllocatorAdminCmds adds the admin verbs under `paddock allocator`.
func addAllocatorAdminCmds(app *App, c *cobra.Command) {
	for _, u := range []string{"list", "maintenance ID", "vacate ID"} {
		u := u
		c.AddCommand(&cobra.Command{Use: u, Short: u,
			RunE: func(cmd *cobra.Command, _ []string) error { return notYet("paddock allocator " + u) }})
	}
}
