package cmd

import "github.com/spf13/cobra"

func newTokenCmd(app *App) *cobra.Command {
	c := &cobra.Command{Use: "token", Short: "Roles tokens for adding hosts"}
	create := &cobra.Command{Use: "create", Short: "Create a roles token",
		RunE: func(cmd *cobra.Command, _ []string) error { return notYet("paddock token create") }}
	create.Flags().StringSlice("roles", nil, "roles the token grants (allocator, proxy, constructor, director, api)")
	create.Flags().Duration("ttl", 0, "token lifetime (default 1h)")
	c.AddCommand(create)
	return c
}
