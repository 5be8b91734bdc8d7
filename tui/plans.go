package tui

import (
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"paddock/engine"
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
		status, style := pl.Status, st.Warn
		if _, ok := blockedStep(pl, now); ok {
			status, style = "BLOCKED", st.Bad
		}
		rows = append(rows, common.Row{Key: d.ID, Cells: []string{d.Name, pl.Action, status, step, common.Age(now.Sub(pl.CreatedAt))},
			StyleCol: 2, Style: style})
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

// planLines renders a plan followed live: its header, each step with
// its duration, and under the running step what it waits for right now
// and its deadline (past it the step is blocked: red, and an alert).
func planLines(c *common.Common, p *engine.Plan) []string {
	st := c.Styles
	now := c.Now()
	elapsed := now.Sub(p.CreatedAt)
	if p.EndedAt != nil {
		elapsed = p.EndedAt.Sub(p.CreatedAt)
	}
	head := " " + st.Accent.Render(p.Action) + " " + planStatus(c, p.Status) + st.Muted.Render("  "+p.ID+"  "+common.Age(elapsed))
	if p.CancelRequested {
		head += st.Warn.Render("  cancel requested")
	}
	out := []string{head}
	live := p.EndedAt == nil
	for _, s := range p.Steps {
		end := now
		if s.Ended != nil {
			end = *s.Ended
		}
		blocked := live && s.Blocked(now)
		mark := stepMark(c, s.Status)
		if blocked {
			mark = st.Bad.Render("!")
		}
		out = append(out, "  "+mark+" "+common.Pad(s.Name, 22)+" "+common.PadLeft(common.Age(end.Sub(s.Started)), 6)+"  "+s.Message)
		if !live || s.Status != engine.PlanRunning || s.Ended != nil {
			continue
		}
		if s.Waiting != "" {
			out = append(out, "      "+st.Label.Render("now: ")+s.Waiting)
		}
		switch {
		case blocked:
			out = append(out, st.Bad.Render("      BLOCKED "+common.Age(now.Sub(*s.Deadline))+" past its deadline: x cancels (rolls back), then t retries"))
		case s.Deadline != nil:
			out = append(out, st.Muted.Render("      deadline in "+common.Age(s.Deadline.Sub(now))))
		}
	}
	if len(p.Steps) == 0 {
		if p.Status == engine.PlanPending || p.Status == engine.PlanRunning || p.Status == "" {
			out = append(out, st.Muted.Render("  waiting for the constructor…"))
		} else {
			out = append(out, st.Muted.Render("  no steps logged"))
		}
	}
	return out
}

// blockedStep is the running step of p stuck past its deadline at now.
func blockedStep(p *engine.Plan, now time.Time) (engine.PlanStep, bool) {
	if p == nil || p.EndedAt != nil {
		return engine.PlanStep{}, false
	}
	for _, s := range p.Steps {
		if s.Blocked(now) {
			return s, true
		}
	}
	return engine.PlanStep{}, false
}

// blockedAlerts are the Overview's alerts for plans stuck on a step.
func blockedAlerts(s *data.Snapshot, now time.Time) []data.Alert {
	var out []data.Alert
	for _, d := range s.RunningPlans() {
		if st, ok := blockedStep(d.Pending, now); ok {
			msg := "plan " + d.Pending.Action + " of " + d.Name + " blocked at " + st.Name + " for " + common.Age(now.Sub(*st.Deadline)) + " past its deadline"
			if st.Waiting != "" {
				msg += ": " + st.Waiting
			}
			out = append(out, data.Alert{Severity: data.SevCritical, Message: msg})
		}
	}
	return out
}

func planStatus(c *common.Common, s string) string {
	st := c.Styles
	switch s {
	case engine.PlanSuccess:
		return st.Good.Render(s)
	case engine.PlanError, engine.PlanRolledBack, engine.PlanCancelled:
		return st.Bad.Render(s)
	}
	return st.Warn.Render(s)
}

func stepMark(c *common.Common, s string) string {
	st := c.Styles
	switch s {
	case engine.PlanSuccess:
		return st.Good.Render("✓")
	case engine.PlanError, engine.PlanRolledBack, engine.PlanCancelled:
		return st.Bad.Render("✗")
	case engine.PlanRunning:
		return st.Warn.Render("▸")
	}
	return st.Muted.Render("·")
}
