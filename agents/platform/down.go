package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"paddock/engine/zkserver"
)

// DownConfig says what Down stops.
type DownConfig struct {
	StateDir string
	// Purge also deletes the data: node volumes, ZooKeeper's data,
	// credentials and config.
	Purge bool
	// Wait bounds the wait for the supervisor to stop.
	Wait time.Duration
	// Out gets one line per thing done; Err the warnings.
	Out, Err io.Writer
}

// Down stops what up started from the state dir: the supervisor
// (SIGTERM: its services stop gracefully), the platform and node
// containers and networks (found by the paddock.up label), and
// ZooKeeper. Data is kept unless Purge.
func Down(ctx context.Context, dc DownConfig) error {
	dir := dc.StateDir
	if pid, ok := RunningPid(dir); ok {
		fmt.Fprintf(dc.Out, "stopping the platform supervisor (pid %d)\n", pid)
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signal supervisor %d: %w", pid, err)
		}
		wctx, cancel := context.WithTimeout(ctx, dc.Wait)
		err := waitFor(wctx, "the supervisor did not stop", nil, func(context.Context) error {
			if _, ok := RunningPid(dir); ok {
				return errors.New("still running")
			}
			return nil
		})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("the supervisor (pid %d) did not stop within --wait: kill it (kill -9 %d) and run `paddock down` again", pid, pid)
		}
	} else {
		fmt.Fprintln(dc.Out, "no platform supervisor running")
	}
	if err := removeDocker(ctx, dc, Label(dir)); err != nil {
		return err
	}
	n, err := zkserver.StopDir(filepath.Join(dir, "zookeeper"))
	if err != nil {
		return fmt.Errorf("stop ZooKeeper: %w", err)
	}
	if n > 0 {
		fmt.Fprintf(dc.Out, "stopped ZooKeeper\n")
	}
	os.Remove(filepath.Join(dir, StatusFile))
	if !dc.Purge {
		fmt.Fprintf(dc.Out, "data kept in %s (paddock down --purge deletes it)\n", dir)
		return nil
	}
	for _, p := range []string{"zookeeper", "allocators", "snapshots", objectStoreDir, "credentials", "director", "tls", "logs", "run", "config.yaml", "proxy-routes.json", "console.log", StatusFile} {
		if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
			return fmt.Errorf("purge %s: %w", p, err)
		}
	}
	fmt.Fprintf(dc.Out, "purged the data in %s\n", dir)
	return nil
}

// removeDocker removes the containers (and networks; volumes on purge)
// labelled paddock.up=<label>: platform containers first, so their
// allocators stop making nodes, then the node containers.
func removeDocker(ctx context.Context, dc DownConfig, label string) error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil
	}
	defer cli.Close()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, perr := cli.Ping(pctx)
	cancel()
	if perr != nil {
		fmt.Fprintf(dc.Err, "Docker unreachable (%v): node containers, if any, were not removed\n", perr)
		return nil
	}
	f := filters.NewArgs(filters.Arg("label", LabelUp+"="+label))
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
	n, err := remove(filters.NewArgs(filters.Arg("label", LabelUp+"="+label), filters.Arg("label", LabelService)))
	if err != nil {
		return err
	}
	if n > 0 {
		fmt.Fprintf(dc.Out, "removed %d platform container(s)\n", n)
	}
	nodes, err := remove(f)
	if err != nil {
		return err
	}
	if nodes > 0 {
		fmt.Fprintf(dc.Out, "removed %d node container(s)\n", nodes)
	}
	if nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: f}); err == nil {
		for _, n := range nets {
			cli.NetworkRemove(ctx, n.ID)
		}
	}
	if !dc.Purge {
		return nil
	}
	vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return nil
	}
	for _, v := range vols.Volumes {
		if err := cli.VolumeRemove(ctx, v.Name, true); err != nil {
			return fmt.Errorf("remove volume %s: %w", v.Name, err)
		}
	}
	if len(vols.Volumes) > 0 {
		fmt.Fprintf(dc.Out, "removed %d data volume(s)\n", len(vols.Volumes))
	}
	return nil
}

// Spawn starts `paddock up --headless` (args from Config.Args) from
// binary in its own session, its output in <state-dir>/logs/up.log.
func Spawn(binary, stateDir string, args []string, progress io.Writer) error {
	if err := os.MkdirAll(filepath.Join(stateDir, "logs"), 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(stateDir, LogFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	os.Remove(filepath.Join(stateDir, StatusFile))
	cmd := newDetached(binary, args, logf)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the platform supervisor: %w", err)
	}
	fmt.Fprintf(progress, "starting paddock (supervisor pid %d, log %s)\n", cmd.Process.Pid, filepath.Join(stateDir, LogFile))
	go cmd.Wait() // reap if it exits while we watch
	return nil
}

// Follow prints the supervisor's steps until it is ready, fails or
// exits, within limit.
func Follow(ctx context.Context, stateDir string, limit time.Duration, w io.Writer) (Status, error) {
	logFile := filepath.Join(stateDir, LogFile)
	began, last := time.Now(), ""
	var st Status
	fctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	b := backoff.NewConstantBackOff(150 * time.Millisecond)
	_, err := backoff.Retry(fctx, func() (struct{}, error) {
		var err error
		if st, err = ReadStatus(stateDir); err == nil {
			if st.Step != last && st.Step != "" {
				fmt.Fprintf(w, "  [%4.1fs] %s\n", time.Since(began).Seconds(), st.Step)
				last = st.Step
			}
			if st.Error != "" {
				return struct{}{}, backoff.Permanent(fmt.Errorf("paddock up failed: %s (log: %s)", st.Error, logFile))
			}
			if st.Ready {
				fmt.Fprintf(w, "  [%4.1fs] ready\n", time.Since(began).Seconds())
				return struct{}{}, nil
			}
		}
		if _, ok := RunningPid(stateDir); !ok && time.Since(began) > 5*time.Second {
			return struct{}{}, backoff.Permanent(fmt.Errorf("the platform supervisor exited before it was ready: see %s", logFile))
		}
		return struct{}{}, errors.New("not ready")
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0))
	if err != nil && ctx.Err() == nil && fctx.Err() != nil {
		return st, fmt.Errorf("paddock did not become ready in time: see %s", logFile)
	}
	return st, err
}

// childEnv is set in the supervisor Spawn starts: its parent shows the
// progress (from up.json), so the child prints none.
const childEnv = "PADDOCK_UP_CHILD"

// IsSpawned says whether this process is the supervisor Spawn started.
func IsSpawned() bool { return os.Getenv(childEnv) == "1" }
