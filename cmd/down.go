package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"paddock/engine/zkserver"
)

// `paddock down` stops what `paddock up` started from this state dir:
// the supervisor (SIGTERM, its services stop gracefully), the node
// containers and networks its allocators created (found by the
// paddock.up label), and ZooKeeper. Data — ZooKeeper's, the node
// volumes, credentials — is kept unless --purge.
func newDownCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "down",
		Short: "Stop the platform started by paddock up (data kept unless --purge)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDown(cmd.Context(), app, app.V.GetBool("purge"))
		},
	}
	c.Flags().Bool("purge", false, "also delete data: node volumes, ZooKeeper data, credentials and config in the state dir")
	c.Flags().Duration("wait", 60*time.Second, "how long to wait for the supervisor to stop")
	return c
}

func runDown(ctx context.Context, app *App, purge bool) error {
	dir := app.StateDir()
	label := upLabel(dir)
	if pid, ok := runningPid(dir); ok {
		fmt.Fprintf(app.Out, "stopping the platform supervisor (pid %d)\n", pid)
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signal supervisor %d: %w", pid, err)
		}
		deadline := time.Now().Add(app.V.GetDuration("wait"))
		for {
			if _, ok := runningPid(dir); !ok {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the supervisor (pid %d) did not stop within --wait: kill it (kill -9 %d) and run `paddock down` again", pid, pid)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	} else {
		fmt.Fprintln(app.Out, "no platform supervisor running")
	}
	if err := removeDocker(ctx, app, label, purge); err != nil {
		return err
	}
	n, err := zkserver.StopDir(filepath.Join(dir, "zookeeper"))
	if err != nil {
		return fmt.Errorf("stop ZooKeeper: %w", err)
	}
	if n > 0 {
		fmt.Fprintf(app.Out, "stopped ZooKeeper\n")
	}
	os.Remove(filepath.Join(dir, upStatusFile))
	if purge {
		for _, p := range []string{"zookeeper", "allocators", "snapshots", "credentials", "director", "tls", "logs", "config.yaml", "proxy-routes.json", "console.log", upStatusFile} {
			if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
				return fmt.Errorf("purge %s: %w", p, err)
			}
		}
		fmt.Fprintf(app.Out, "purged the data in %s\n", dir)
	} else {
		fmt.Fprintf(app.Out, "data kept in %s (paddock down --purge deletes it)\n", dir)
	}
	return nil
}

// removeDocker removes the containers (and networks; volumes on purge)
// labelled paddock.up=<label> — platform containers first, so their
// allocators stop making nodes — then the node containers (allocators
// started by up, in-process or in containers, add that label).
func removeDocker(ctx context.Context, app *App, label string, purge bool) error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil
	}
	defer cli.Close()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, perr := cli.Ping(pctx)
	cancel()
	if perr != nil {
		fmt.Fprintf(app.Err, "Docker unreachable (%v): node containers, if any, were not removed\n", perr)
		return nil
	}
	f := filters.NewArgs(filters.Arg("label", labelUp+"="+label))
	remove := func(f filters.Args) (int, error) {
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil {
			return 0, fmt.Errorf("list containers: %w", err)
		}
		for _, c := range cs {
			if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
				return 0, fmt.Errorf("remove container %s: %w", c.ID[:12], err)
			}
		}
		return len(cs), nil
	}
	n, err := remove(filters.NewArgs(filters.Arg("label", labelUp+"="+label), filters.Arg("label", labelService)))
	if err != nil {
		return err
	}
	if n > 0 {
		fmt.Fprintf(app.Out, "removed %d platform container(s)\n", n)
	}
	nodes, err := remove(f)
	if err != nil {
		return err
	}
	if nodes > 0 {
		fmt.Fprintf(app.Out, "removed %d node container(s)\n", nodes)
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err == nil {
		for _, n := range nets {
			cli.NetworkRemove(ctx, n.ID)
		}
	}
	if purge {
		vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
		if err == nil {
			for _, v := range vols.Volumes {
				if err := cli.VolumeRemove(ctx, v.Name, true); err != nil {
					return fmt.Errorf("remove volume %s: %w", v.Name, err)
				}
			}
			if len(vols.Volumes) > 0 {
				fmt.Fprintf(app.Out, "removed %d data volume(s)\n", len(vols.Volumes))
			}
		}
	}
	return nil
}
