package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// UpOptions say how `paddock up` meets the operator: in the foreground
// (Headless) or through a detached supervisor and the console.
type UpOptions struct {
	// Headless runs the platform in this process until ctx ends and
	// prints where everything listens; otherwise a detached supervisor
	// runs it and Console opens once it is ready.
	Headless bool
	// LogLevel is handed to the detached supervisor.
	LogLevel string
	// Out gets where everything listens; Err the progress.
	Out, Err io.Writer
	// Console opens the console on the ready platform (attaching to one
	// already up).
	Console func(context.Context, Status) error
}

// Up is `paddock up`: it attaches to the platform of cfg.StateDir when
// one is up (or starting), else starts it (in process with Headless,
// detached otherwise; in containers with cfg.Containers), then opens
// the console unless Headless.
func Up(ctx context.Context, cfg Config, o UpOptions) error {
	if st, err := ReadStatus(cfg.StateDir); err == nil && st.Containers && st.Ready && len(cfg.Scale) == 0 {
		cfg.Containers = true // the platform runs in containers: attach to it
	}
	if !cfg.Containers && !o.Headless {
		if err := cfg.Validate(); err != nil {
			return err // before a supervisor starts with it
		}
		return upDetached(ctx, cfg, o)
	}
	if !IsSpawned() {
		cfg.Progress = o.Err
		cfg.OnReady = func(st Status) {
			PrintWhere(o.Out, st)
			if cfg.Containers {
				fmt.Fprintf(o.Out, "platform containers run on; `paddock down` removes them\n")
			}
		}
	}
	cfg.Detached = !o.Headless
	err := Run(ctx, cfg)
	var up *AlreadyUpError
	switch {
	case errors.As(err, &up) && up.Containers > 0:
		fmt.Fprintf(o.Err, "%v: attaching\n", up)
		if err := ensureZooKeeper(ctx, cfg.StateDir, up.Status, o.Err); err != nil {
			return err
		}
		if o.Headless {
			PrintWhere(o.Out, up.Status)
			return nil
		}
		return o.Console(ctx, up.Status)
	case errors.As(err, &up):
		fmt.Fprintln(o.Out, up)
		if err := ensureZooKeeper(ctx, cfg.StateDir, up.Status, o.Err); err != nil {
			return err
		}
		PrintWhere(o.Out, up.Status)
		return nil
	case err != nil || o.Headless:
		return err
	}
	st, err := ReadStatus(cfg.StateDir)
	if err != nil {
		return err
	}
	return o.Console(ctx, st)
}

// upDetached starts the supervisor detached (unless it runs), shows its
// progress, then opens the console.
func upDetached(ctx context.Context, cfg Config, o UpOptions) error {
	dir := cfg.StateDir
	if pid, ok := RunningPid(dir); ok {
		st, err := ReadStatus(dir)
		if err == nil && st.Ready {
			fmt.Fprintf(o.Err, "paddock is already up (pid %d): attaching the console\n", pid)
			if err := ensureZooKeeper(ctx, dir, st, o.Err); err != nil {
				return err
			}
			return o.Console(ctx, st)
		}
		fmt.Fprintf(o.Err, "paddock is starting (pid %d): following its progress\n", pid)
	} else if err := Spawn(cfg.Binary, dir, cfg.Args(o.LogLevel), o.Err); err != nil {
		return err
	}
	st, err := Follow(ctx, dir, cfg.StartTimeout+30*time.Second, o.Err)
	if err != nil {
		return err
	}
	return o.Console(ctx, st)
}
