package cmd

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"paddock/agents/platform"
)

// newInitCmd: `paddock init` creates a platform in a running ZooKeeper:
// fresh role credentials in the state dir, the tree with its ACLs, the
// zones, and a config file for the other commands. `paddock up` calls
// the same code (platform.Init).
func newInitCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a platform in a running ZooKeeper (credentials, tree, ACLs, zones)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), app.V.GetDuration("timeout")+10e9)
			defer cancel()
			zones := app.V.GetStringSlice("zone-names")
			if len(zones) == 0 {
				zones = platform.ZoneNames(app.V.GetInt("zones"))
			}
			res, err := platform.Init(ctx, platform.InitConfig{ZooKeeper: app.V.GetString("zk"), StateDir: app.StateDir(), Zones: zones,
				KeepZones: !app.V.IsSet("zones") && !app.V.IsSet("zone-names"), Timeout: app.V.GetDuration("timeout"), Logger: app.Log})
			if err != nil {
				return err
			}
			if app.JSON() {
				return app.PrintJSON(res)
			}
			if res.Created {
				fmt.Fprintf(app.Out, "platform created in ZooKeeper %s (zones: %s)\ncredentials in %s\n", res.ZooKeeper, strings.Join(zones, ", "), res.CredentialsDir)
			} else {
				fmt.Fprintf(app.Out, "platform already present in ZooKeeper %s; credentials in %s\n", res.ZooKeeper, res.CredentialsDir)
			}
			return nil
		},
	}
	c.Flags().Int("zones", 3, "number of zones to create (zone-1 … zone-N)")
	c.Flags().StringSlice("zone-names", nil, "explicit zone names (instead of --zones)")
	return c
}
