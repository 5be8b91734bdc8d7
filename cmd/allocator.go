package cmd

import "github.com/spf13/cobra"

// newAllocatorCmd: `paddock allocator [flags]` runs the agent;
// its subcommands (list, maintenance, vacate) are admin verbs, added by
// addAllocatorAdminCmds (allocator_admin.go).
func newAllocatorCmd(app *App) *cobra.Command {
	c := &cobra.Command{Use: "allocator", Short: "Run an allocator agent, or manage allocators (list, maintenance, vacate)",
		RunE: func(cmd *cobra.Command, _ []string) error { return notYet("paddock allocator") }}
	addAllocatorAdminCmds(app, c)
	return c
}
