package cmd

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"paddock/engine"
)

// newDeploymentLogsCmd: `paddock deployment logs ID`.
func newDeploymentLogsCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "logs ID",
		Short: "An instance's container log, read through its allocator (--follow for new lines)",
		Long: `Prints the last lines of one instance's container log (the deployment's
first Elasticsearch instance unless --instance names one, by id or a unique
prefix). The log comes from the instance's allocator, through its node
tunnel; a container the allocator replaced keeps its last lines, shown
first. The output is the log itself, also with -o json.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := app.V
			o := engine.LogOptions{Tail: v.GetInt("tail"), Follow: v.GetBool("follow"), Since: v.GetDuration("since")}
			if o.Tail < 0 || o.Since < 0 {
				return usageErr("--tail and --since must be positive")
			}
			cl, err := app.apiClient()
			if err != nil {
				return err
			}
			// A followed log lasts until interrupted; otherwise the usual
			// API deadline.
			ctx, cancel := app.apiContext(cmd)
			if o.Follow {
				cancel()
				ctx, cancel = context.WithCancel(cmd.Context())
			}
			defer cancel()
			rc, err := cl.Logs(ctx, args[0], v.GetString("instance"), o)
			if err != nil {
				return apiFailure(err)
			}
			defer rc.Close()
			if _, err := io.Copy(app.Out, rc); err != nil && ctx.Err() == nil {
				return err
			}
			return nil
		},
	}
	f := c.Flags()
	f.String("instance", "", "instance id or unique prefix (default: the first Elasticsearch instance)")
	f.BoolP("follow", "f", false, "keep printing new lines until interrupted")
	f.Duration("since", 0, "only lines newer than this, e.g. 10m")
	f.Int("tail", engine.DefaultLogTail, "number of last lines")
	return c
}
