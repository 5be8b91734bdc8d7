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

// updateInput feeds a key to a text input one rune at a time: a fast
// typist, a paste or tmux send-keys delivers several runes in one
// message, and "delete" typed at once must not read as the delete key.
func updateInput(ti *textinput.Model, msg tea.Msg) tea.Cmd {
	km, ok := msg.(tea.KeyMsg)
	if !ok || km.Type != tea.KeyRunes || len(km.Runes) < 2 {
		var cmd tea.Cmd
		*ti, cmd = ti.Update(msg)
		return cmd
	}
	var cmds []tea.Cmd
	for _, r := range km.Runes {
		var cmd tea.Cmd
		*ti, cmd = ti.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: km.Alt})
		cmds = append(cmds, cmd)
	}
	return tea.Batch(cmds...)
}

// copyMsg asks the frame to copy a CLI command to the clipboard.
type copyMsg struct{ Text string }

func copyCmd(s string) tea.Cmd { return func() tea.Msg { return copyMsg{Text: s} } }

// cliLine shows the CLI command doing the same as the dialog's action.
func cliLine(c *common.Common, cmd string, w int) string {
	if cmd == "" {
		return ""
	}
	st := c.Styles
	return st.Label.Render("same as: ") + wrap(cmd, w-9) + "\n"
}

// dialogBox frames a dialog's body with its state line: working, the
// error, or the keys it takes (pairs of key and what it does).
func dialogBox(c *common.Common, bw int, body string, busy bool, err string, keys ...string) string {
	st := c.Styles
	switch {
	case busy:
		body += st.Muted.Render("working…")
	case err != "":
		body += st.Error.Render(wrap(err, bw-4))
	default:
		var parts []string
		for i := 0; i+1 < len(keys); i += 2 {
			parts = append(parts, st.Accent.Render(keys[i])+" "+keys[i+1])
		}
		body += strings.Join(parts, "   ")
	}
	return "\n" + st.Box.Width(bw-2).Padding(0, 1).Render(body)
}

// confirm asks y/n before a destructive action, naming what it will do.
type confirm struct {
	c    *common.Common
	o    op
	busy bool
}

func newConfirm(c *common.Common, o op) *confirm { return &confirm{c: c, o: o} }

func (d *confirm) Update(msg tea.Msg) (tea.Cmd, bool) {
	km, ok := msg.(tea.KeyMsg)
	if !ok || d.busy {
		return nil, false
	}
	k := d.c.Keys
	switch {
	case key.Matches(km, k.Yes):
		d.busy = true
		return run(d.c, d.o.Run), true
	case key.Matches(km, k.Copy), km.String() == "c":
		return copyCmd(d.o.CLI), true
	case key.Matches(km, k.No), km.String() == "q":
		return func() tea.Msg { return closeDialog{} }, true
	}
	return nil, true
}

func (d *confirm) View(w int) string {
	st := d.c.Styles
	bw := min(w-2, 76)
	body := st.Title.Render("Confirm: "+d.o.What) + "\n\n" + wrap(d.o.Message, bw-4) + "\n\n" + cliLine(d.c, d.o.CLI, bw-4) + "\n"
	return dialogBox(d.c, bw, body, d.busy, "", "y", "confirm", "n/esc", "cancel", "c", "copy as CLI")
}

func (d *confirm) Help() []key.Binding {
	return []key.Binding{d.c.Keys.Yes, d.c.Keys.No, d.c.Keys.Copy}
}

// typedConfirm asks the operator to type a name (the deployment's)
// before an action that cannot be taken back lightly: cancel, delete.
type typedConfirm struct {
	c     *common.Common
	o     op
	input textinput.Model
	err   string
	busy  bool
}

func newTypedConfirm(c *common.Common, o op) *typedConfirm {
	ti := textinput.New()
	ti.Prompt = "> "
	ti.Placeholder = o.Typed
	ti.Focus()
	return &typedConfirm{c: c, o: o, input: ti}
}

func (d *typedConfirm) Update(msg tea.Msg) (tea.Cmd, bool) {
	if d.busy {
		return nil, false
	}
	if km, ok := msg.(tea.KeyMsg); ok {
		switch {
		case km.String() == "esc":
			return func() tea.Msg { return closeDialog{} }, true
		case key.Matches(km, d.c.Keys.Copy):
			return copyCmd(d.o.CLI), true
		case km.String() == "enter":
			if v := strings.TrimSpace(d.input.Value()); v != d.o.Typed {
				d.err = "type " + d.o.Typed + " exactly to confirm (esc leaves it as it is)"
				return nil, true
			}
			d.busy = true
			return run(d.c, d.o.Run), true
		}
	}
	cmd := updateInput(&d.input, msg)
	d.err = ""
	return cmd, true
}

func (d *typedConfirm) View(w int) string {
	st := d.c.Styles
	bw := min(w-2, 76)
	d.input.Width = bw - 8
	body := st.Title.Render("Confirm: "+d.o.What) + "\n\n" + wrap(d.o.Message, bw-4) + "\n\n" + cliLine(d.c, d.o.CLI, bw-4) + "\n" +
		"Type " + st.Accent.Render(d.o.Typed) + " to confirm:\n" + d.input.View() + "\n"
	return dialogBox(d.c, bw, body, d.busy, d.err, "enter", "confirm", "esc", "cancel", "ctrl+y", "copy as CLI")
}

func (d *typedConfirm) Help() []key.Binding {
	return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "confirm")), key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")), d.c.Keys.Copy}
}

// prompt asks for one value (size, version) and validates it.
type prompt struct {
	c     *common.Common
	title string
	hint  string
	input textinput.Model
	check func(string) error
	cli   func(string) string
	fn    func(ctx context.Context, v string) actionDone
	err   string
	busy  bool
}

func newPrompt(c *common.Common, title, hint, value string, check func(string) error, cli func(string) string, fn func(ctx context.Context, v string) actionDone) *prompt {
	ti := textinput.New()
	ti.Prompt = "> "
	ti.SetValue(value)
	ti.CursorEnd()
	ti.Focus()
	return &prompt{c: c, title: title, hint: hint, input: ti, check: check, cli: cli, fn: fn}
}

func (d *prompt) Update(msg tea.Msg) (tea.Cmd, bool) {
	if d.busy {
		return nil, false
	}
	if km, ok := msg.(tea.KeyMsg); ok {
		switch {
		case km.String() == "esc":
			return func() tea.Msg { return closeDialog{} }, true
		case key.Matches(km, d.c.Keys.Copy):
			return copyCmd(d.cli(strings.TrimSpace(d.input.Value()))), true
		case km.String() == "enter":
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
	cmd := updateInput(&d.input, msg)
	d.err = ""
	return cmd, true
}

func (d *prompt) View(w int) string {
	st := d.c.Styles
	bw := min(w-2, 76)
	d.input.Width = bw - 8
	body := st.Title.Render(d.title) + "\n" + st.Muted.Render(wrap(d.hint, bw-4)) + "\n\n" + d.input.View() + "\n\n" +
		cliLine(d.c, d.cli(strings.TrimSpace(d.input.Value())), bw-4)
	return dialogBox(d.c, bw, body, d.busy, d.err, "enter", "apply", "esc", "cancel", "ctrl+y", "copy as CLI")
}

func (d *prompt) Help() []key.Binding {
	return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply")), key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")), d.c.Keys.Copy}
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

// credentialsDialog shows a new deployment's elastic user and password
// once: only their hash is kept, so this is the operator's one chance
// to copy them (c copies the password, OSC 52).
type credentialsDialog struct {
	c  *common.Common
	cr Created
}

func newCredentialsDialog(c *common.Common, cr Created) *credentialsDialog {
	return &credentialsDialog{c: c, cr: cr}
}

func (d *credentialsDialog) Update(msg tea.Msg) (tea.Cmd, bool) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return nil, false
	}
	switch {
	case key.Matches(km, d.c.Keys.Copy), km.String() == "c":
		return copyCmd(d.cr.Password), true
	case km.String() == "enter", km.String() == "esc", km.String() == "q":
		return func() tea.Msg { return closeDialog{} }, true
	}
	return nil, true
}

func (d *credentialsDialog) View(w int) string {
	st := d.c.Styles
	bw := min(w-2, 76)
	body := st.Title.Render("Credentials of "+d.cr.ID) + "\n\n" +
		"user      " + st.Accent.Render(d.cr.Username) + "\n" +
		"password  " + st.Accent.Render(d.cr.Password) + "\n\n" +
		wrap("Shown this once: only a hash is kept. A lost password is replaced with `paddock deployment reset-password "+d.cr.ID+"`.", bw-4) + "\n\n"
	return dialogBox(d.c, bw, body, false, "", "c", "copy password", "enter/esc", "close")
}

func (d *credentialsDialog) Help() []key.Binding { return []key.Binding{d.c.Keys.Copy} }
