package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"paddock/engine"
	"paddock/tui/common"
	"paddock/tui/data"
)

// proxies lists registered proxies and the routing table's state.
type proxies struct {
	c    *common.Common
	snap *data.Snapshot
	list *common.List
	w, h int
}

func newProxies(c *common.Common) *proxies {
	cols := []common.Column{
		{Title: "ID", Width: 10, Flex: true},
		{Title: "HTTP", Width: 15, Flex: true},
		{Title: "HTTPS", Width: 15, Flex: true},
		{Title: "STATE", Width: 8},
		{Title: "ROUTES", Width: 6, Right: true},
		{Title: "UP", Width: 6, Right: true},
	}
	return &proxies{c: c, list: common.NewList(c, cols, 0)}
}

func (p *proxies) Title() string          { return "Proxies" }
func (p *proxies) Capturing() bool        { return p.list.Editing() }
func (p *proxies) Update(tea.Msg) tea.Cmd { return nil }
func (p *proxies) SetSize(w, h int) {
	p.w, p.h = w, h
	p.list.SetSize(w, max(3, h-3))
}

func (p *proxies) SetSnapshot(s *data.Snapshot) {
	p.snap = s
	now := p.c.Now()
	rows := make([]common.Row, 0, len(s.Proxies))
	for _, x := range s.Proxies {
		st := p.c.Styles.Good
		if x.State != "serving" && x.State != "" {
			st = p.c.Styles.Warn
		}
		rows = append(rows, common.Row{Key: x.ID, Cells: []string{x.ID, x.HTTPAddr, x.HTTPSAddr, x.State, itoa(x.Routes), common.Age(now.Sub(x.StartedAt))},
			StyleCol: 3, Style: st})
	}
	p.list.SetRows(rows)
}

func (p *proxies) ShortHelp() []key.Binding {
	k := p.c.Keys
	return []key.Binding{k.Filter, k.Sort, k.NextTab}
}
func (p *proxies) FullHelp() [][]key.Binding { return nil }

func (p *proxies) HandleKey(msg tea.KeyMsg) (tea.Cmd, bool) { return p.list.Update(msg) }

func (p *proxies) View() string {
	st := p.c.Styles
	live, paused, backends := 0, 0, 0
	for _, d := range p.snap.Deployments {
		if d.Route == nil {
			continue
		}
		backends += len(d.Route.Backends)
		if d.Route.State == engine.RoutePaused {
			paused++
		} else {
			live++
		}
	}
	var b strings.Builder
	b.WriteString(p.list.View())
	b.WriteString("\n" + section(st, "Routes", p.w) + "\n")
	b.WriteString("  " + itoa(live) + " live · " + itoa(paused) + " paused · " + itoa(backends) + " backends")
	if len(p.snap.Proxies) > 0 {
		b.WriteString(st.Muted.Render("  e.g. curl " + endpoint(p.snap, "<id>") + "/"))
	}
	return b.String()
}
