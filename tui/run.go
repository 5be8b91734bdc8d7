package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/themes"
	"paddock/tui/data"
)

// RunOptions say where the console runs.
type RunOptions struct {
	// Store is the admin store the console reads (live caches) and acts
	// through (engine/service, actor "console").
	Store   *engine.Store
	Styles  themes.Styles
	Screen  int // 1-based; 0 opens the first
	Mouse   bool
	In      io.Reader
	Out     io.Writer
	Logger  *slog.Logger // warnings (never on the screen)
	Program []tea.ProgramOption
	// ReadOnly refuses every action (`paddock console --read-only`).
	ReadOnly bool
	// APIKey, when set, is the key whose role limits the console's
	// actions (a platform-viewer key: none) and names its actor.
	APIKey string
	// NodeLogs reaches the allocators' log endpoints (the admin role's
	// certificate): instance logs in the console. Nil: no logs.
	NodeLogs service.NodeLogs
	// CertDir holds this host's role certificates (the doctor checks
	// their expiry).
	CertDir string
}

// access decides what the console may do: every action as the
// operator holding the admin credential, none when read-only, and what
// the role of the API key allows when one is given (its actor then
// names the key in the audit log).
func access(ctx context.Context, svc *service.Service, readOnly bool, apiKey string) (Permissions, Actions, error) {
	perm := Permissions{ReadOnly: readOnly}
	var actor service.Actor = "console"
	if apiKey != "" {
		p, err := svc.AuthenticateKey(ctx, apiKey)
		if err != nil {
			return perm, nil, fmt.Errorf("console: the API key was refused (%w): check api-key in the config file or PADDOCK_API_KEY, or create one with `paddock api key create`", err)
		}
		perm.Role, perm.Who = p.Role, p.Kind+" "+p.Name
		actor = service.Actor("console/" + string(p.Actor()))
	}
	if err := perm.Check(service.AccessDeployments); err != nil {
		return perm, NoActions{Reason: err}, nil
	}
	return perm, ServiceActions{Svc: svc, Actor: actor, Perm: perm}, nil
}

// Run opens the console until the operator quits or ctx ends.
func Run(ctx context.Context, o RunOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A terminal that hangs up (an SSH session that drops, a closed
	// tmux pane) ends the console. Go's default exit on SIGHUP does not
	// apply: the certificate loader of the ZooKeeper tunnel catches it
	// to reload, so consoles outlived their terminals, each holding its
	// ZooKeeper session and API connections.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		select {
		case <-hup:
			cancel()
		case <-ctx.Done():
		}
	}()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The headroom recomputed after each change reads the inventory and
	// every deployment: from the service's own watch cache, not from
	// ZooKeeper each time (as the API does).
	cache := service.NewCache(o.Store)
	cacheDone := make(chan struct{})
	go func() {
		defer close(cacheDone)
		if err := cache.Run(ctx); err != nil {
			log.Warn("console: service cache stopped", "err", err)
		}
	}()
	defer func() { cancel(); <-cacheDone }()
	sopts := []service.Option{service.WithLogger(log), service.WithCertDir(o.CertDir), service.WithCache(cache)}
	if o.NodeLogs != nil {
		sopts = append(sopts, service.WithNodeLogs(o.NodeLogs))
	}
	svc := service.New(o.Store, sopts...)
	var logs LogSource
	if o.NodeLogs != nil {
		logs = svc
	}
	perm, acts, err := access(ctx, svc, o.ReadOnly, o.APIKey)
	if err != nil {
		return err
	}
	live := data.NewLive(o.Store, log)
	done := make(chan error, 1)
	go func() { done <- live.Run(ctx) }()
	out := o.Out
	m := New(ctx, Options{Source: live, Actions: acts, Styles: o.Styles, Screen: max(o.Screen-1, 0), Permissions: perm, Reports: svc, Doctor: svc, Logs: logs,
		Clipboard: func(s string) error {
			// OSC 52: the terminal (and tmux with set-clipboard on, and
			// ssh) puts it on the operator's own clipboard.
			_, err := io.WriteString(out, ansi.SetSystemClipboard(s))
			return err
		}})
	opts := append([]tea.ProgramOption{tea.WithAltScreen(), tea.WithContext(ctx), tea.WithInput(o.In), tea.WithOutput(o.Out)}, o.Program...)
	if o.Mouse {
		opts = append(opts, tea.WithMouseCellMotion())
	}
	_, err = tea.NewProgram(m, opts...).Run()
	cancel()
	<-done
	if err != nil && !errors.Is(err, tea.ErrProgramKilled) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}
