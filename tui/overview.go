package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"paddock/tui/common"
	"paddock/tui/data"
)

// overview is the first screen: zones with capacity bars and their
// allocators, deployments by health, running plans, alerts.
type overview struct {
	c    *common.Common
	app  *App
	snap *data.Snapshot
	w, h int
	// scroll is the first line shown when the content is taller than
	// the screen (j/k scroll).
	scroll int
}

func newOverview(c *common.Common, a *App) *overview { return &overview{c: c, app: a} }

func (o *overview) Title() string                { return "Overview" }
func (o *overview) SetSize(w, h int)             { o.w, o.h = w, h }
func (o *overview) SetSnapshot(s *data.Snapshot) { o.snap = s }
func (o *overview) Capturing() bool              { return false }
func (o *overview) Update(tea.Msg) tea.Cmd       { return nil }
func (o *overview) ShortHelp() []key.Binding {
	k := o.c.Keys
	return []key.Binding{k.NextTab, k.Tab1, k.Up, k.Down}
}
func (o *overview) FullHelp() [][]key.Binding { return nil }

func (o *overview) HandleKey(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := o.c.Keys
	switch {
	case key.Matches(msg, k.Down):
		o.scroll++
	case key.Matches(msg, k.Up):
		o.scroll = max(0, o.scroll-1)
	case key.Matches(msg, k.Top):
		o.scroll = 0
	default:
		return nil, false
	}
	return nil, true
}

// View lays out the sections inside the body: alerts and plans get
// their lines first (they matter most on call), zones and allocators
// take what is left, allocators beyond the budget are summarised.
func (o *overview) View() string {
	s := o.snap
	st := o.c.Styles
	w := o.w
	if s == nil || !s.Loaded && len(s.Allocators) == 0 {
		return st.Muted.Render("\n  waiting for ZooKeeper…")
	}
	now := o.c.Now()

	// Fixed sections.
	var tail []string
	if o.app.reports != nil {
		tail = append(tail, headroomLines(o.c, s, o.app.hr, w)...)
	}
	tail = append(tail, section(st, "Deployments", w))
	tail = append(tail, o.deploymentsLine())
	plans := s.RunningPlans()
	tail = append(tail, section(st, "Plans ("+itoa(len(plans))+" running)", w))
	maxPlans := 3
	if o.h >= 40 {
		maxPlans = 8
	}
	for i, d := range plans {
		if i == maxPlans {
			tail = append(tail, st.Muted.Render("  … "+itoa(len(plans)-maxPlans)+" more (4 Plans)"))
			break
		}
		p := d.Pending
		step := common.Pad(p.Status, 24)
		if n := len(p.Steps); n > 0 {
			step = common.Pad(p.Steps[n-1].Name+" "+p.Steps[n-1].Status, 24)
		}
		if bs, ok := blockedStep(p, now); ok {
			step = st.Bad.Render(common.Pad(bs.Name+" BLOCKED", 24))
		}
		tail = append(tail, "  "+st.Accent.Render(common.Pad(d.Name, 18))+" "+common.Pad(p.Action, 8)+" "+step+" "+st.Muted.Render(common.Age(now.Sub(p.CreatedAt))))
	}
	if len(plans) == 0 {
		tail = append(tail, st.Muted.Render("  none"))
	}
	tail = append(tail, section(st, "Alerts", w))
	maxAlerts := 4
	if o.h >= 40 {
		maxAlerts = 10
	}
	alerts := append(blockedAlerts(s, now), s.Alerts...)
	alerts = append(alerts, snapshotAlerts(s, now)...)
	data.SortAlerts(alerts)
	for i, a := range alerts {
		if i == maxAlerts {
			tail = append(tail, st.Muted.Render("  … "+itoa(len(alerts)-maxAlerts)+" more"))
			break
		}
		switch a.Severity {
		case data.SevCritical:
			tail = append(tail, st.Bad.Render("  ✗ ")+a.Message)
		case data.SevWarning:
			tail = append(tail, st.Warn.Render("  ! ")+a.Message)
		default:
			tail = append(tail, st.Info.Render("  i ")+a.Message)
		}
	}
	if len(alerts) == 0 {
		tail = append(tail, st.Good.Render("  ✓ no alerts"))
	}
	zk := "ZooKeeper "
	if s.Connected {
		zk += st.Good.Render("connected")
	} else {
		zk += st.Bad.Render("lost, reconnecting")
	}
	leader := s.Leader
	if leader == "" {
		leader = st.Warn.Render("none")
	}
	tail = append(tail, st.Muted.Render(zk+" · leader "+leader+" · "+itoa(len(s.Proxies))+" proxies"))

	// Zones and allocators get the remaining lines.
	budget := o.h - len(tail) - 1
	head := []string{section(st, "Zones", w)}
	head = append(head, o.zones(budget-1)...)
	lines := append(head, tail...)
	if o.scroll > max(0, len(lines)-o.h) {
		o.scroll = max(0, len(lines)-o.h)
	}
	return strings.Join(lines[o.scroll:], "\n")
}

func (o *overview) deploymentsLine() string {
	s := o.snap
	st := o.c.Styles
	parts := []string{"  " + itoa(len(s.Deployments)) + " total"}
	for _, h := range []string{data.HealthHealthy, data.HealthDegraded, data.HealthDown, data.HealthPending, data.HealthDeleting} {
		if n := s.ByHealth[h]; n > 0 {
			parts = append(parts, healthStyle(st, h).Render(healthMark(h)+" "+h+" "+itoa(n)))
		}
	}
	return strings.Join(parts, "  ")
}

// zones renders one line per zone and, within budget, one line per
// allocator under it.
func (o *overview) zones(budget int) []string {
	s := o.snap
	st := o.c.Styles
	w := o.w
	barW := max(8, min(40, w-72))
	var out []string
	if len(s.Zones) == 0 {
		return []string{st.Muted.Render("  no zones")}
	}
	perZone := map[string][]data.Allocator{}
	for _, a := range s.Allocators {
		perZone[a.Zone] = append(perZone[a.Zone], a)
	}
	// Allocator lines allowed per zone after the zone lines, handed
	// out round-robin so small zones show all their allocators.
	spare := budget - len(s.Zones)
	allow := map[string]int{}
	for progress := true; spare > 0 && progress; {
		progress = false
		for _, z := range s.Zones {
			if spare > 0 && allow[z.Name] < len(perZone[z.Name]) {
				allow[z.Name]++
				spare--
				progress = true
			}
		}
	}
	for _, z := range s.Zones {
		alive := itoa(z.Alive) + "/" + itoa(z.Allocators)
		aliveS := st.Good
		if z.Alive < z.Allocators {
			aliveS = st.Warn
		}
		if z.Allocators > 0 && z.Alive == 0 {
			aliveS = st.Bad
		}
		line := " " + st.Title.Render(common.Pad(z.Name, 17)) + " " + aliveS.Render(common.Pad(alive, 11)) + " " +
			common.Bar(st, z.UsedMB, z.CapacityMB, barW) + " " +
			common.PadLeft(size(z.UsedMB)+"/"+size(z.CapacityMB), 11) + " " + common.PadLeft(common.Percent(z.UsedMB, z.CapacityMB), 4) +
			"  inst " + common.PadLeft(itoa(z.Instances), 3) + " ✓" + itoa(z.Healthy)
		if z.Maintenance > 0 {
			line += st.Warn.Render(" maint " + itoa(z.Maintenance))
		}
		out = append(out, line)
		as := perZone[z.Name]
		show := allow[z.Name]
		if show < len(as) {
			show = max(0, show-1) // keep a line for "… more"
		}
		for _, a := range as[:show] {
			state := a.State()
			out = append(out, "   "+common.Pad(a.ID, 15)+" "+allocStyle(st, state).Render(common.Pad(state, 11))+" "+
				common.Bar(st, a.UsedMB(), a.CapacityMB(), barW)+" "+
				common.PadLeft(size(a.UsedMB())+"/"+size(a.CapacityMB()), 11)+" "+common.PadLeft(common.Percent(a.UsedMB(), a.CapacityMB()), 4)+
				"  inst "+common.PadLeft(itoa(len(a.Instances)), 3)+" ✓"+itoa(a.Healthy()))
		}
		if show < len(as) && allow[z.Name] > 0 {
			out = append(out, st.Muted.Render("   … "+itoa(len(as)-show)+" more allocators (2 Allocators)"))
		}
	}
	return out
}
