package tui

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"paddock/engine/service"
	"paddock/tui/common"
	"paddock/tui/data"
)

// Doctor runs the checks an experienced operator runs by hand: the
// engine's service (`paddock doctor` prints the same report).
type Doctor interface {
	Doctor(ctx context.Context) (service.DoctorReport, error)
}

// doctorEvery is how often the Doctor screen runs the checks again
// while it is shown.
const doctorEvery = 15 * time.Second

type (
	doctorMsg struct {
		gen int
		rep service.DoctorReport
		err error
		at  time.Time
	}
	doctorAgain struct{ gen int }
)

// doctorScreen lists the findings, worst first; the selected one's
// action below. r runs the checks again.
type doctorScreen struct {
	c        *common.Common
	app      *App
	snap     *data.Snapshot
	table    common.Table
	findings []service.Check
	err      error
	at       time.Time
	busy     bool
	// gen ties the periodic re-runs to one visit of the screen.
	gen  int
	w, h int
}

func newDoctorScreen(c *common.Common, a *App) *doctorScreen {
	d := &doctorScreen{c: c, app: a}
	d.table.Columns = []common.Column{
		{Title: "SEVERITY", Width: 10},
		{Title: "CHECK", Width: 18, Flex: true},
		{Title: "FINDING", Width: 30, Flex: true},
	}
	d.table.SortCol = -1
	return d
}

func (d *doctorScreen) Title() string                { return "Doctor" }
func (d *doctorScreen) Capturing() bool              { return false }
func (d *doctorScreen) SetSnapshot(s *data.Snapshot) { d.snap = s }
func (d *doctorScreen) SetSize(w, h int) {
	d.w, d.h = w, h
	d.table.Width = w
}

func sevRank(s string) int {
	switch s {
	case service.SeverityCritical:
		return 0
	case service.SeverityWarning:
		return 1
	case service.SeverityOK:
		return 3
	}
	return 2
}

// run asks for the checks (one run at a time).
func (d *doctorScreen) run() tea.Cmd {
	if d.app.doctor == nil || d.busy {
		return nil
	}
	d.busy = true
	doc, ctx, gen, now := d.app.doctor, d.c.Ctx, d.gen, d.c.Now
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, reportTimeout)
		defer cancel()
		rep, err := doc.Doctor(ctx)
		at := rep.CheckedAt
		if at.IsZero() {
			at = now()
		}
		return doctorMsg{gen: gen, rep: rep, err: err, at: at}
	}
}

// shown starts a visit: run now, then every doctorEvery while shown.
func (d *doctorScreen) shown() tea.Cmd {
	d.gen++
	return d.run()
}

func (d *doctorScreen) Update(msg tea.Msg) tea.Cmd {
	switch m := msg.(type) {
	case doctorMsg:
		d.busy = false
		d.at = m.at
		if m.err != nil {
			d.err = m.err
		} else {
			d.findings, d.err = m.rep.Checks, nil
			sort.SliceStable(d.findings, func(i, j int) bool { return sevRank(d.findings[i].Severity) < sevRank(d.findings[j].Severity) })
			d.rows()
		}
		if m.gen != d.gen || d.app.screens[d.app.active] != screen(d) {
			return nil
		}
		gen := d.gen
		return tea.Tick(doctorEvery, func(time.Time) tea.Msg { return doctorAgain{gen: gen} })
	case doctorAgain:
		if m.gen == d.gen && d.app.screens[d.app.active] == screen(d) {
			return d.run()
		}
	}
	return nil
}

func (d *doctorScreen) rows() {
	st := d.c.Styles
	rows := make([]common.Row, 0, len(d.findings))
	for i, f := range d.findings {
		style := st.Good
		switch f.Severity {
		case service.SeverityCritical:
			style = st.Bad
		case service.SeverityWarning:
			style = st.Warn
		case service.SeverityOK:
		default:
			style = st.Info
		}
		rows = append(rows, common.Row{Key: itoa(i), Cells: []string{sevMark(f.Severity) + " " + f.Severity, f.Title, f.Detail}, StyleCol: 0, Style: style})
	}
	d.table.SetRows(rows)
}

func sevMark(s string) string {
	switch s {
	case service.SeverityCritical:
		return "✗"
	case service.SeverityWarning:
		return "!"
	case service.SeverityOK:
		return "✓"
	}
	return "i"
}

func (d *doctorScreen) ShortHelp() []key.Binding {
	k := d.c.Keys
	return []key.Binding{k.Up, k.Down, k.Rerun}
}
func (d *doctorScreen) FullHelp() [][]key.Binding { return [][]key.Binding{{d.c.Keys.Rerun}} }

func (d *doctorScreen) HandleKey(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := d.c.Keys
	switch {
	case key.Matches(msg, k.Up):
		d.table.Move(-1)
	case key.Matches(msg, k.Down):
		d.table.Move(1)
	case key.Matches(msg, k.Rerun):
		return d.run(), true
	default:
		return nil, false
	}
	return nil, true
}

func (d *doctorScreen) View() string {
	st := d.c.Styles
	if d.app.doctor == nil {
		return st.Muted.Render("\n  the doctor is not available in this console: run `paddock doctor`")
	}
	head := ""
	switch {
	case d.busy && d.at.IsZero():
		head = st.Muted.Render("running the checks…")
	case !d.at.IsZero():
		counts := map[string]int{}
		for _, f := range d.findings {
			counts[f.Severity]++
		}
		var parts []string
		for _, s := range []string{service.SeverityCritical, service.SeverityWarning, service.SeverityOK} {
			if counts[s] > 0 {
				parts = append(parts, itoa(counts[s])+" "+s)
			}
		}
		head = st.Muted.Render(itoa(len(d.findings))+" checks, run "+common.Age(d.c.Now().Sub(d.at))+" ago: ") + strings.Join(parts, ", ") + st.Muted.Render(" · r runs them again")
	}
	if d.err != nil {
		head += "\n" + st.Error.Render("✗ the checks failed: "+d.err.Error())
	}
	if len(d.findings) == 0 {
		return head
	}
	d.table.Height = min(len(d.findings)+1, max(3, d.h-8))
	var b strings.Builder
	b.WriteString(head + "\n" + d.table.View(st, true))
	i := d.table.Cursor
	if i >= 0 && i < len(d.findings) {
		f := d.findings[i]
		b.WriteString("\n" + section(st, f.Title, d.w) + "\n" + wrap(f.Detail, d.w-2))
		if len(f.Items) > 0 {
			b.WriteString("\n" + st.Label.Render("about: ") + wrap(strings.Join(f.Items, ", "), d.w-9))
		}
		if f.Action != "" {
			b.WriteString("\n" + st.Label.Render("what to do: ") + wrap(f.Action, d.w-14))
		}
	}
	return b.String()
}
