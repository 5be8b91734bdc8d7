package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	tea "github.com/charmbracelet/bubbletea"

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
}

// Run opens the console until the operator quits or ctx ends.
func Run(ctx context.Context, o RunOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	live := data.NewLive(o.Store, log)
	done := make(chan error, 1)
	go func() { done <- live.Run(ctx) }()
	acts := ServiceActions{Svc: service.New(o.Store, service.WithLogger(log)), Actor: "console"}
	m := New(ctx, Options{Source: live, Actions: acts, Styles: o.Styles, Screen: max(o.Screen-1, 0)})
	opts := append([]tea.ProgramOption{tea.WithAltScreen(), tea.WithContext(ctx), tea.WithInput(o.In), tea.WithOutput(o.Out)}, o.Program...)
	if o.Mouse {
		opts = append(opts, tea.WithMouseCellMotion())
	}
	_, err := tea.NewProgram(m, opts...).Run()
	cancel()
	<-done
	if err != nil && !errors.Is(err, tea.ErrProgramKilled) && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}
