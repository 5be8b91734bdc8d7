package cmd

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"paddock/engine/zkserver"
)

func newZookeeperCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:     "zookeeper",
		Aliases: []string{"zk"},
		Short:   "Start, stop or inspect local ZooKeeper servers (Debian's zookeeper package)",
	}
	dir := func() string {
		if d := app.V.GetString("dir"); d != "" {
			return d
		}
		return filepath.Join(app.StateDir(), "zookeeper")
	}
	start := &cobra.Command{
		Use:   "start",
		Short: "Start a standalone server or an ensemble on loopback and wait until it serves",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d := dir()
			if st, ok := zkserver.ServingIn(d); ok {
				return fmt.Errorf("ZooKeeper already runs from %s (server %d on %s): stop it first with `paddock zookeeper stop`", d, st.ID, st.Addr)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), app.V.GetDuration("wait"))
			defer cancel()
			cl, err := zkserver.Start(ctx, zkserver.Config{
				Dir: d, Servers: app.V.GetInt("ensemble"), ClientPort: app.V.GetInt("port"),
				SuperPassword: app.V.GetString("super-password"), Detach: true,
			})
			if err != nil {
				return err
			}
			return app.output(map[string]any{"connect": cl.ConnectString(), "dir": d, "servers": len(cl.Nodes)}, func() {
				fmt.Fprintf(app.Out, "ZooKeeper serving on %s (%d server(s), data in %s)\n", cl.ConnectString(), len(cl.Nodes), d)
			})
		},
	}
	start.Flags().Int("ensemble", 1, "number of servers: 1 (standalone) or 3/5 (ensemble with dynamic reconfig)")
	start.Flags().Int("port", 2181, "client port of the first server (the others use the next ports); 0 picks free ports")
	start.Flags().String("dir", "", "directory for configuration and data (default <state-dir>/zookeeper)")
	start.Flags().Duration("wait", 60*time.Second, "how long to wait for the servers to serve")
	start.Flags().String("super-password", "", "enable ZooKeeper's super user with this password (reconfig)")
	stop := &cobra.Command{
		Use:   "stop",
		Short: "Stop the servers started from --dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := zkserver.StopDir(dir())
			if err != nil {
				return err
			}
			fmt.Fprintf(app.Out, "stopped %d ZooKeeper server(s)\n", n)
			return nil
		},
	}
	stop.Flags().String("dir", "", "directory given to start")
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the servers under --dir and their mode",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sts := zkserver.StatusDir(dir())
			if app.JSON() {
				return app.PrintJSON(sts)
			}
			if len(sts) == 0 {
				return fmt.Errorf("no ZooKeeper configured under %s: start one with `paddock zookeeper start`", dir())
			}
			serving := zkserver.WriteStatus(app.Out, sts)
			if serving == 0 {
				return &ExitError{Code: ExitFailure, Err: fmt.Errorf("no server serving")}
			}
			return nil
		},
	}
	status.Flags().String("dir", "", "directory given to start")
	c.AddCommand(start, stop, status)
	return c
}
