package cmd

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"paddock/agents/api/client"
	"paddock/engine/headroom"
)

// newPlatformCmd groups the platform-wide operator verbs.
func newPlatformCmd(app *App) *cobra.Command {
	c := &cobra.Command{Use: "platform", Short: "Platform-wide checks: zone-loss headroom"}
	c.AddCommand(&cobra.Command{
		Use:   "headroom",
		Short: "Can the platform survive losing each zone, and what would vacating each allocator need?",
		Long: `Runs the constructor's placement as a dry-run: for each zone, could every
instance in it be re-placed in the other zones if it were lost; for each
allocator holding instances, could it be vacated. Names the deployments
that could not be re-placed or would lose high availability, and the
memory missing (shortfall). -o json prints the API's answer.`,
		Args: cobra.NoArgs,
		RunE: apiCall[headroom.Report]{
			call: func(ctx context.Context, cl *client.Client, _ []string) (headroom.Report, []byte, error) {
				return cl.Headroom(ctx)
			},
			text: func(w io.Writer, r headroom.Report) { r.WriteText(w) },
		}.runE(app),
	})
	return c
}
