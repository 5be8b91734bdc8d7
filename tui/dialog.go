package tui

import (
	"context"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"paddock/tui/common"
)

// actionTimeout bounds one action call (the service writes to
// ZooKeeper and returns once the plan is accepted).
const actionTimeout = 20 * time.Second

// run executes an action off the UI goroutine.
func run(c *common.Common, fn func(ctx context.Context) actionDone) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(c.Ctx, actionTimeout)
		defer cancel()
		return fn(ctx)
	}
}

// confirm asks y/n before a destructive action.
type confirm struct {
	c       *common.Common
	message string
	what    string
	fn      func(ctx context.Context) actionDone
	busy    bool
}

func newConfirm(c *common.Common, message, what string, fn func(ctx context.Context) actionDone) *confirm {
	return &confirm{c: c, message: message, what: what, fn: fn}
}

func (d *confirm) Update(msg tea.Msg) (tea.Cmd, bool) {
	km, ok := msg.(tea.KeyMsg)
	if !ok || d.busy {
		return nil, false
	}
	k := d.c.Keys
	switch {
	case key.Matches(km, k.Yes):
		d.busy = true
		return run(d.c, d.fn), true
	case key.Matches(km, k.No), km.String() == "q":
		return func() tea.Msg { return closeDialog{} }, true
	}
	return nil, true
}

func (d *confirm) View(w int) string {
	st := d.c.Styles
	bw := min(w-2, 70)
	body := st.Title.Render("Confirm: "+d.what) + "\n\n" + wrap(d.message, bw-4) + "\n\n"
	if d.busy {
		body += st.Muted.Render("working…")
	} else {
		body += st.Accent.Render("y") + " confirm   " + st.Accent.Render("n/esc") + " cancel"
	}
	return "\n" + st.Box.Width(bw-2).Padding(0, 1).Render(body)
}

func (d *confirm) Help() []key.Binding { return []key.Binding{d.c.Keys.Yes, d.c.Keys.No} }

// prompt asks for one value (size, version) and validates it.
type prompt struct {
	c     *common.Common
	title string
	hint  string
	input textinput.Model
	check func(string) error
	fn    func(ctx context.Context, v string) actionDone
	err   string
	busy  bool
}

func newPrompt(c *common.Common, title, hint, value string, check func(string) error, fn func(ctx context.Context, v string) actionDone) *prompt {
	ti := textinput.New()
	ti.Prompt = "> "
	ti.SetValue(value)
	ti.CursorEnd()
	ti.Focus()
	return &prompt{c: c, title: title, hint: hint, input: ti, check: check, fn: fn}
}

func (d *prompt) Update(msg tea.Msg) (tea.Cmd, bool) {
	if d.busy {
		return nil, false
	}
	if km, ok := msg.(tea.KeyMsg); ok {
		switch km.String() {
		case "esc":
			return func() tea.Msg { return closeDialog{} }, true
		case "enter":
			v := strings.TrimSpace(d.input.Value())
			if err := d.check(v); err != nil {
				d.err = err.Error()
				return nil, true
			}
			d.busy = true
			fn := d.fn
			return run(d.c, func(ctx context.Context) actionDone { return fn(ctx, v) }), true
		}
	}
	var cmd tea.Cmd
	d.input, cmd = d.input.Update(msg)
	d.err = ""
	return cmd, true
}

func (d *prompt) View(w int) string {
	st := d.c.Styles
	bw := min(w-2, 70)
	d.input.Width = bw - 8
	body := st.Title.Render(d.title) + "\n" + st.Muted.Render(wrap(d.hint, bw-4)) + "\n\n" + d.input.View() + "\n"
	switch {
	case d.busy:
		body += st.Muted.Render("working…")
	case d.err != "":
		body += st.Error.Render(wrap(d.err, bw-4))
	default:
		body += st.Accent.Render("enter") + " apply   " + st.Accent.Render("esc") + " cancel"
	}
	return "\n" + st.Box.Width(bw-2).Padding(0, 1).Render(body)
}

func (d *prompt) Help() []key.Binding {
	return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply")), key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel"))}
}

// wrap breaks text on spaces at w cells (dialog bodies only; tables
// never wrap).
func wrap(s string, w int) string {
	if w < 10 {
		return s
	}
	var out []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			if line != "" && lipgloss.Width(line)+1+lipgloss.Width(word) > w {
				out = append(out, line)
				line = word
				continue
			}
			if line != "" {
				line += " "
			}
			line += word
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
