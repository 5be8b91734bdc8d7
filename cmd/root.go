package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"paddock/agents/agentkit"
)

// Version is set at build time (-ldflags "-X paddock/cmd.Version=...").
var Version = "0.1.0-dev"

// Exit codes of the CLI contract.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// ExitError carries an exit code with its message.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// usageErr marks an error as a usage error (exit 2).
func usageErr(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// App is what every subcommand shares: configuration, output, logger.
// It is built once per invocation and passed down (no globals).
type App struct {
	V   *viper.Viper
	In  io.Reader
	Out io.Writer
	Err io.Writer
	Log *slog.Logger
	Ctx context.Context
	// ran is set once a command's RunE starts (exit codes: before
	// it, an error is cobra's usage error).
	ran bool
}

// Run executes the paddock CLI and returns its exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := &App{V: viper.New(), In: stdin, Out: stdout, Err: stderr, Ctx: ctx}
	root := NewRoot(app)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "paddock: %v\n", err)
	return exitCode(err, app.ran)
}

// exitCode chooses the exit code by the error's type: an *ExitError
// says it; an agent Config the operator must correct
// (*agentkit.ConfigError) is a usage error; so is
// every error cobra returns before a command ran (unknown command,
// arguments: flags are typed by the flag error func); the rest failed.
func exitCode(err error, ran bool) int {
	var ee *ExitError
	var ce *agentkit.ConfigError
	switch {
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &ce), !ran:
		return ExitUsage
	}
	return ExitFailure
}

// markRun wraps every RunE of the tree to record that a command ran.
func markRun(c *cobra.Command, ran *bool) {
	if run := c.RunE; run != nil {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			*ran = true
			return run(cmd, args)
		}
	}
	for _, sub := range c.Commands() {
		markRun(sub, ran)
	}
}

// NewRoot builds the command tree.
func NewRoot(app *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "paddock",
		Short: "Self-hosted search platform: control plane, allocators, proxies and console",
		Long: `paddock runs search clusters ("deployments") on your own hosts.

Start a whole platform on this host with 'paddock up'; run each part on
its own with 'paddock director|constructor|api|proxy|allocator'.
Configuration: flags > PADDOCK_* environment > ~/.paddock/config.yaml.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return app.init(cmd)
		},
	}
	pf := root.PersistentFlags()
	pf.String("config", "", "config file (default ~/.paddock/config.yaml)")
	pf.StringP("output", "o", "text", "output format: text or json")
	pf.String("log-level", "info", "log level: debug, info, warn, error")
	pf.String("log-format", "auto", "log format: auto (text on a terminal, JSON otherwise), text, json")
	pf.String("zk", "127.0.0.1:2181", "ZooKeeper connection string (host:port,...)")
	pf.String("state-dir", agentkit.DefaultStateDir(), "state directory (credentials, keys, local caches)")
	pf.String("zk-credential", "", "ZooKeeper credential file of this role (default <state-dir>/credentials/<role>.json)")
	pf.Duration("timeout", 10*time.Second, "how long to wait for ZooKeeper or the API before giving up")
	pf.Bool("zk-tls", false, "reach ZooKeeper (--zk) through the director's mutual-TLS tunnel with this host's certificate of the role (<state-dir>/tls/<role>.crt); paddock up sets it in config.yaml")

	for _, add := range []func(*App) *cobra.Command{
		newVersionCmd, newStatusCmd, newZookeeperCmd, newInitCmd,
		newUpCmd, newDownCmd, newConsoleCmd,
		newDeploymentCmd, newAllocatorCmd, newPlatformCmd, newDoctorCmd, newTokenCmd,
		newDirectorCmd, newConstructorCmd, newAPICmd, newProxyCmd, newNodeCmd,
		newImageCmd, newTunnelCmd, newTrafficFilterCmd, newRepositoryCmd,
	} {
		root.AddCommand(add(app))
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &ExitError{Code: ExitUsage, Err: err} })
	markRun(root, &app.ran)
	return root
}

// init binds flags, environment and the config file into viper
// (agentkit.BindSettings), and sets up logging.
func (app *App) init(cmd *cobra.Command) error {
	v := app.V
	if err := agentkit.BindSettings(v, cmd.Flags()); err != nil {
		return err
	}
	switch o := v.GetString("output"); o {
	case "text", "json":
	default:
		return usageErr("invalid --output %q: use text or json", o)
	}
	log, err := agentkit.NewLogger(app.Err, v.GetString("log-level"), v.GetString("log-format"))
	if err != nil {
		return &ExitError{Code: ExitUsage, Err: err}
	}
	app.Log = log
	slog.SetDefault(log)
	return nil
}

func isTerminal(w io.Writer) bool { return agentkit.IsTerminal(w) }

// JSON reports whether -o json was asked for.
func (app *App) JSON() bool { return app.V.GetString("output") == "json" }

// PrintJSON writes v as indented JSON on stdout.
func (app *App) PrintJSON(v any) error {
	enc := json.NewEncoder(app.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// StateDir is the configured state directory.
func (app *App) StateDir() string { return app.V.GetString("state-dir") }

// output prints v as indented JSON with -o json, else runs text.
func (app *App) output(v any, text func()) error {
	if app.JSON() {
		return app.PrintJSON(v)
	}
	text()
	return nil
}
