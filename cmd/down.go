package cmd

import (
	"time"

	"github.com/spf13/cobra"

	"paddock/agents/platform"
)

// `paddock down` stops what `paddock up` started from this state dir
// (platform.Down). Data is kept unless --purge.
func newDownCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "down",
		Short: "Stop the platform started by paddock up (data kept unless --purge)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return platform.Down(cmd.Context(), platform.DownConfig{StateDir: app.StateDir(), Purge: app.V.GetBool("purge"),
				Wait: app.V.GetDuration("wait"), Out: app.Out, Err: app.Err})
		},
	}
	c.Flags().Bool("purge", false, "also delete data: node volumes, ZooKeeper data, credentials and config in the state dir")
	c.Flags().Duration("wait", 60*time.Second, "how long to wait for the supervisor to stop")
	return c
}
