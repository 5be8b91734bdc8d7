package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"paddock/tui/common"
	"paddock/tui/data"
)

// plans is the plan activity screen: every running plan, oldest first,
// and the live steps of the selected one with elapsed times.
type plans struct {
	c     *common.Common
	snap  *data.Snapshot
	table common.Table
	w, h  int
}

func newPlans(c *common.Common) *plans {
	p := &plans{c: c}
	p.table.Columns = []common.Column{
		{Title: "DEPLOYMENT", Width: 14, Flex: true},
		{Title: "ACTION", Width: 7},
		{Title: "STATUS", Width: 8},
		{Title: "STEP", Width: 16, Flex: true},
		{Title: "ELAPSED", Width: 7, Right: true},
	}
	p.table.SortCol = -1
	return p
}

func (p *plans) Title() string          { return "Plans" }
func (p *plans) Capturing() bool        { return false }
func (p *plans) Update(tea.Msg) tea.Cmd { return nil }
func (p *plans) SetSize(w, h int) {
	p.w, p.h = w, h
	p.table.Width = w
}

func (p *plans) SetSnapshot(s *data.Snapshot) {
	p.snap = s
	p.table.SetRows(p.rows())
}

func (p *plans) rows() []common.Row {
	now := p.c.Now()
	var rows []common.Row
	for _, d := range p.snap.RunningPlans() {
		pl := d.Pending
		step := "-"
		if n := len(pl.Steps); n > 0 {
			step = pl.Steps[n-1].Name
		}
		rows = append(rows, common.Row{Key: d.ID, Cells: []string{d.Name, pl.Action, pl.Status, step, common.Age(now.Sub(pl.CreatedAt))},
			StyleCol: 2, Style: p.c.Styles.Warn})
	}
	return rows
}

func (p *plans) ShortHelp() []key.Binding {
	k := p.c.Keys
	return []key.Binding{k.Up, k.Down, k.NextTab}
}
func (p *plans) FullHelp() [][]key.Binding { return nil }

func (p *plans) HandleKey(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := p.c.Keys
	switch {
	case key.Matches(msg, k.Up):
		p.table.Move(-1)
	case key.Matches(msg, k.Down):
		p.table.Move(1)
	case key.Matches(msg, k.Enter):
		if id := p.table.SelectedKey(); id != "" {
			return func() tea.Msg { return showPlanOf{ID: id} }, true
		}
	default:
		return nil, false
	}
	return nil, true
}

func (p *plans) View() string {
	st := p.c.Styles
	// Elapsed times move with the clock: refresh the cells on render.
	p.table.SetRows(p.rows())
	if len(p.table.Rows) == 0 {
		return st.Muted.Render("\n  no plan running") + p.recent()
	}
	listH := min(len(p.table.Rows)+1, max(3, p.h/3))
	p.table.Height = listH
	var b strings.Builder
	b.WriteString(p.table.View(st, true))
	id := p.table.SelectedKey()
	if d, ok := p.snap.Deployment(id); ok && d.Pending != nil {
		b.WriteString("\n" + section(st, "Steps of "+d.Name, p.w) + "\n")
		b.WriteString(strings.Join(planLines(p.c, d.Pending), "\n"))
	}
	return b.String()
}

// recent lists the last finished plans when none runs.
func (p *plans) recent() string {
	st := p.c.Styles
	var out []string
	for _, d := range p.snap.Deployments {
		if d.LastPlan != nil && len(out) < p.h-4 {
			out = append(out, "  "+common.Pad(d.Name, 20)+" "+common.Pad(d.LastPlan.Action, 8)+" "+planStatus(p.c, d.LastPlan.Status))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "\n\n" + section(st, "Last plans", p.w) + "\n" + strings.Join(out, "\n")
}
