package tui

import (
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"paddock/engine/service"
	"paddock/tui/common"
	"paddock/tui/data"
)

// plans is the plan activity screen: every running plan, oldest first,
// then the plans that failed (retry with t); below, the selected plan
// followed live: each step with its duration and what it waits for.
// x cancels the selected running plan (typed confirmation).
type plans struct {
	c     *common.Common
	app   *App
	snap  *data.Snapshot
	table common.Table
	w, h  int
}

// maxFailedPlans bounds the failed plans listed under the running ones.
const maxFailedPlans = 20

func newPlans(c *common.Common, app *App) *plans {
	p := &plans{c: c, app: app}
	p.table.Columns = []common.Column{
		{Title: "DEPLOYMENT", Width: 14, Flex: true},
		{Title: "ACTION", Width: 7},
		{Title: "STATUS", Width: 11},
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

// failed lists deployments whose last plan failed and none runs, most
// recent first.
func (p *plans) failed() []data.Deployment {
	var out []data.Deployment
	for _, d := range p.snap.Deployments {
		if d.Pending == nil && service.Retryable(d.LastPlan) {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return planEnd(out[i]).After(planEnd(out[j])) })
	if len(out) > maxFailedPlans {
		out = out[:maxFailedPlans]
	}
	return out
}

func (p *plans) rows() []common.Row {
	st := p.c.Styles
	now := p.c.Now()
	var rows []common.Row
	for _, d := range p.snap.RunningPlans() {
		pl := d.Pending
		step := "-"
		if n := len(pl.Steps); n > 0 {
			step = pl.Steps[n-1].Name
		}
		rows = append(rows, common.Row{Key: d.ID, Cells: []string{d.Name, pl.Action, pl.Status, step, common.Age(now.Sub(pl.CreatedAt))},
			StyleCol: 2, Style: st.Warn})
	}
	for _, d := range p.failed() {
		pl := d.LastPlan
		step := "-"
		if n := len(pl.Steps); n > 0 {
			step = pl.Steps[n-1].Name
		}
		rows = append(rows, common.Row{Key: d.ID, Cells: []string{d.Name, pl.Action, pl.Status, step, common.Age(planEnd(d).Sub(pl.CreatedAt))},
			StyleCol: 2, Style: st.Bad})
	}
	return rows
}

func planEnd(d data.Deployment) time.Time {
	if d.LastPlan.EndedAt != nil {
		return *d.LastPlan.EndedAt
	}
	return d.LastPlan.CreatedAt
}

func (p *plans) ShortHelp() []key.Binding {
	k := p.c.Keys
	return []key.Binding{k.Up, k.Down, k.Enter, k.Cancel, k.Retry}
}
func (p *plans) FullHelp() [][]key.Binding {
	k := p.c.Keys
	return [][]key.Binding{{k.Cancel, k.Retry}}
}

func (p *plans) HandleKey(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := p.c.Keys
	id := p.table.SelectedKey()
	switch {
	case key.Matches(msg, k.Up):
		p.table.Move(-1)
	case key.Matches(msg, k.Down):
		p.table.Move(1)
	case key.Matches(msg, k.Enter):
		if id != "" {
			return func() tea.Msg { return showPlanOf{ID: id} }, true
		}
	case key.Matches(msg, k.Cancel), key.Matches(msg, k.Retry):
		d, ok := p.snap.Deployment(id)
		if !ok {
			return nil, true
		}
		if key.Matches(msg, k.Cancel) {
			return p.app.cancelPlan(d), true
		}
		return p.app.retryPlan(d), true
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
		return st.Muted.Render("\n  no plan running, none failed") + p.recent()
	}
	listH := min(len(p.table.Rows)+1, max(3, p.h/3))
	p.table.Height = listH
	var b strings.Builder
	b.WriteString(p.table.View(st, true))
	id := p.table.SelectedKey()
	if d, ok := p.snap.Deployment(id); ok {
		pl, title := d.Pending, "Steps of "+d.Name+" (live)"
		if pl == nil {
			pl, title = d.LastPlan, "Steps of "+d.Name+" (ended "+d.LastPlan.Status+"; t retries)"
		}
		if pl != nil {
			b.WriteString("\n" + section(st, title, p.w) + "\n")
			b.WriteString(strings.Join(planLines(p.c, pl), "\n"))
		}
	}
	return b.String()
}

// recent lists the last finished plans when none runs or failed.
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
