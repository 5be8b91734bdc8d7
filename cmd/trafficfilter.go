package cmd

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"paddock/agents/api"
	"paddock/agents/api/client"
	"paddock/engine/service"
)

// newTrafficFilterCmd: `paddock traffic-filter …` (rule sets of IP/CIDR
// sources enforced by the proxies; behaviour in agents/api/client).
func newTrafficFilterCmd(app *App) *cobra.Command {
	c := &cobra.Command{Use: "traffic-filter", Aliases: []string{"traffic-filters"}, Short: "IP traffic filters: rule sets the proxies enforce on the deployments they are attached to"}
	addAPIClientFlags(c, true)
	v := app.V
	one := func(m func(*client.Client, context.Context, string, string) (service.TrafficFilterView, []byte, error)) func(*cobra.Command, []string) error {
		return apiCall[service.TrafficFilterView]{call: func(ctx context.Context, cl *client.Client, a []string) (service.TrafficFilterView, []byte, error) {
			return m(cl, ctx, a[0], a[1])
		}, text: client.WriteTrafficFilter}.runE(app)
	}
	create := &cobra.Command{Use: "create", Short: "Create a rule set: --name office --source 10.0.0.0/8 --source 192.0.2.7=printer", Args: cobra.NoArgs,
		RunE: apiCall[service.TrafficFilterView]{call: func(ctx context.Context, cl *client.Client, _ []string) (service.TrafficFilterView, []byte, error) {
			return cl.CreateTrafficFilter(ctx, client.FilterBody(v.GetString("name"), v.GetString("description"), v.GetStringSlice("source"), v.GetBool("include-by-default")))
		}, text: client.WriteTrafficFilter}.runE(app)}
	create.Flags().String("name", "", "rule set name")
	create.Flags().String("description", "", "what the rule set is for")
	create.Flags().StringSlice("source", nil, "allowed source: IP address or CIDR block, optionally =DESCRIPTION (repeat or comma-separate)")
	create.Flags().Bool("include-by-default", false, "attach to deployments created from now on")
	list := &cobra.Command{Use: "list", Short: "List rule sets with their sources and deployments", Args: cobra.NoArgs,
		RunE: apiCall[api.TrafficFilterList]{call: func(ctx context.Context, cl *client.Client, _ []string) (api.TrafficFilterList, []byte, error) {
			return cl.ListTrafficFilters(ctx)
		}, text: client.WriteTrafficFilters}.runE(app)}
	attach := &cobra.Command{Use: "attach RULESET DEPLOYMENT", Short: "Attach a rule set: the deployment then accepts only the sources its rule sets allow", Args: cobra.ExactArgs(2),
		RunE: one((*client.Client).AttachTrafficFilter)}
	detach := &cobra.Command{Use: "detach RULESET DEPLOYMENT", Short: "Detach a rule set (no rule set left: open to every source)", Args: cobra.ExactArgs(2),
		RunE: one((*client.Client).DetachTrafficFilter)}
	del := &cobra.Command{Use: "delete RULESET", Short: "Delete a rule set (refused while attached unless --force)", Args: cobra.ExactArgs(1),
		RunE: apiCall[map[string]string]{call: func(ctx context.Context, cl *client.Client, a []string) (map[string]string, []byte, error) {
			return cl.DeleteTrafficFilter(ctx, a[0], v.GetBool("force"))
		}, text: func(w io.Writer, m map[string]string) { io.WriteString(w, "deleted "+m["id"]+"\n") }}.runE(app)}
	del.Flags().Bool("force", false, "detach it from every deployment first")
	c.AddCommand(create, list, attach, detach, del)
	return c
}
