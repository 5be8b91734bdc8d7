package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"paddock/agents/allocator"
	"paddock/agents/director"
	"paddock/engine"
	"paddock/engine/service"
	"paddock/themes"
	"paddock/tui"
)

func newConsoleCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "console",
		Short: "Open the terminal console (live allocators, deployments, plans; actions)",
		Long: `The console shows the platform live from ZooKeeper watches: zones and
allocator capacity, deployments and their health, running plans,
proxies. It triggers the same actions as the API (create, resize,
upgrade, restart, delete, cancel plan, maintenance, vacate).

Keys: tab/shift-tab or 1-6 between screens, arrows or j/k, / filter,
s sort, enter detail, esc back, : command (tab completes: :dep NAME logs,
:alloc zone-2, :plan ID, :zk), ? help, q quit. Every destructive action
asks first and shows the same action as a CLI command (ctrl+y copies it).
--read-only, or an API key of role platform-viewer, refuses every action.
Themes: --theme dark|light|high-contrast|no-color (NO_COLOR respected).
For scripts use 'paddock status'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return RunConsole(cmd.Context(), app, 0)
		},
	}
	c.Flags().String("theme", "dark", "colour theme: "+fmt.Sprint(themes.Names()))
	c.Flags().Bool("mouse", false, "mouse: wheel scrolls, click on a tab switches screens (terminal text selection then needs shift)")
	c.Flags().Int("screen", 1, "screen to open (1 Overview, 2 Allocators, 3 Deployments, 4 Plans, 5 Proxies, 6 Doctor)")
	c.Flags().Bool("read-only", false, "refuse every action (watch only); each refused action says why")
	c.Flags().String("api-key", "", "act with this API key's role (PADDOCK_API_KEY or the config's api-key; a platform-viewer key acts on nothing)")
	return c
}

// RunConsole opens the console on the configured platform until the
// operator quits or ctx ends. `paddock up` calls it after start-up.
func RunConsole(ctx context.Context, app *App, screen int) error {
	styles, err := themes.Resolve(app.V.GetString("theme"))
	if err != nil {
		return usageErr("%v", err)
	}
	if screen == 0 {
		screen = app.V.GetInt("screen")
	}
	if !isTerminal(app.Out) {
		return usageErr("paddock console needs a terminal: for scripts use 'paddock status [-o json]'")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Through the director's tunnel (`paddock up` writes zk-tls): the
	// certificate stays renewed while the console is open.
	l, s, err := app.agentStore(ctx, nil, engine.RoleAdmin)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	defer s.Close()
	// Logs would tear the screen: keep warnings in a file in the state dir.
	log := slog.New(slog.DiscardHandler)
	if f, err := os.OpenFile(app.StateDir()+"/console.log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
		defer f.Close()
		log = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	// Instance logs come from the allocators' node tunnels, with this
	// host's admin certificate (never from a Docker socket here).
	var nodeLogs service.NodeLogs
	if ld := l.Loader(); ld != nil {
		if lc, err := allocator.NewLogClient(ld, log); err == nil {
			nodeLogs = lc
		} else {
			log.Warn("console: no instance logs", "err", err)
		}
	}
	return tui.Run(ctx, tui.RunOptions{Store: s, Styles: styles, Screen: screen, Mouse: app.V.GetBool("mouse"), In: app.In, Out: app.Out, Logger: log,
		ReadOnly: app.V.GetBool("read-only"), APIKey: strings.TrimSpace(app.V.GetString("api-key")),
		NodeLogs: nodeLogs, CertDir: director.TLSDir(app.StateDir())})
}
