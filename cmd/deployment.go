package cmd

import "github.com/spf13/cobra"

func newDeploymentCmd(app *App) *cobra.Command {
	c := &cobra.Command{Use: "deployment", Aliases: []string{"deployments", "dep"}, Short: "Create and manage deployments"}
	create := &cobra.Command{Use: "create", Short: "Create a deployment",
		RunE: func(cmd *cobra.Command, _ []string) error { return notYet("paddock deployment create") }}
	create.Flags().String("name", "", "deployment name")
	create.Flags().String("version", "", "stack version")
	create.Flags().String("size", "1g", "memory per Elasticsearch instance")
	create.Flags().Int("zones", 1, "availability zones (1..3)")
	create.Flags().String("kibana-size", "0", "memory of the Kibana instance (0: none)")
	c.AddCommand(create)
	for _, u := range []string{"list", "show ID", "resize ID", "upgrade ID", "delete ID", "activity ID"} {
		u := u
		c.AddCommand(&cobra.Command{Use: u, Short: u + " deployment",
			RunE: func(cmd *cobra.Command, _ []string) error { return notYet("paddock deployment " + u) }})
	}
	return c
}
