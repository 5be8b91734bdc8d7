package cmd

import (
	"fmt"

	"github.com/spf13/cobra"

	"paddock/agents/node"
)

// newNodeCmd: `paddock node` runs the stand-in search node (the workload
// of node containers); `node healthcheck` is the images' HEALTHCHECK and
// `node dial` a reachability probe used to prove container isolation.
// The node parses its own flags (agents/node.Main): it runs inside
// FROM-scratch containers and needs none of the platform's
// configuration.
func newNodeCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "node [flags] | node healthcheck [flags] | node dial [flags] ADDRESS...",
		Short: "Run the stand-in search node (inside a container)",
		Long: `Run the stand-in search node: an Elasticsearch-compatible HTTP subset
(documents, search, bulk, snapshots) with its data under --data-dir.
Allocators run it inside paddock/node:<version> containers; it also runs
on a host for demos and tests. 'paddock node --help' lists its flags.`,
		DisableFlagParsing: true,
		// The node sets up its own logging; skip the root's config file.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := app.Ctx
			if ctx == nil {
				ctx = cmd.Context()
			}
			if code := node.Main(ctx, args, app.Out, app.Err); code != 0 {
				return &ExitError{Code: code, Err: fmt.Errorf("node exited with status %d", code)}
			}
			return nil
		},
	}
}
