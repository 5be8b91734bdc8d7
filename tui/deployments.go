package tui

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"paddock/engine"
	"paddock/tui/common"
	"paddock/tui/data"
)

// deployments is the deployment table; enter opens a deployment's
// detail: instances per zone, endpoint, plan activity. c creates
// (form), r resizes, u upgrades, R restarts, D deletes, x cancels the
// running plan.
type deployments struct {
	c      *common.Common
	app    *App
	snap   *data.Snapshot
	list   *common.List
	detail string
	scroll int
	// inst is the selected instance of the detail (l: its logs).
	inst int
	w, h int
}

func newDeployments(c *common.Common, app *App) *deployments {
	cols := []common.Column{
		{Title: "NAME", Width: 12, Flex: true},
		{Title: "ID", Width: 8},
		{Title: "HEALTH", Width: 11},
		{Title: "STATUS", Width: 13},
		{Title: "VERSION", Width: 7},
		{Title: "SIZE", Width: 5, Right: true},
		{Title: "Z", Width: 1, Right: true},
		{Title: "OK", Width: 5, Right: true},
		{Title: "PLAN", Width: 8, Flex: true},
		{Title: "REPL", Width: 6},
	}
	return &deployments{c: c, app: app, list: common.NewList(c, cols, 0)}
}

func (d *deployments) Title() string   { return "Deployments" }
func (d *deployments) Capturing() bool { return d.list.Editing() }

func (d *deployments) SetSize(w, h int) {
	d.w, d.h = w, h
	d.list.SetSize(w, h)
}

func (d *deployments) Update(msg tea.Msg) tea.Cmd {
	if m, ok := msg.(showDeployment); ok {
		d.open(m.ID)
	}
	return nil
}

// open shows a deployment's detail.
func (d *deployments) open(id string) {
	d.detail, d.scroll, d.inst = id, 0, 0
	d.list.Table.Select(id)
}

func (d *deployments) SetSnapshot(s *data.Snapshot) {
	d.snap = s
	st := d.c.Styles
	rows := make([]common.Row, 0, len(s.Deployments))
	for _, x := range s.Deployments {
		plan := x.LastPlanStatus
		if x.Pending != nil {
			plan = x.Pending.Action + " " + x.Pending.Status
		} else if x.LastPlan != nil {
			plan = x.LastPlan.Action + " " + x.LastPlan.Status
		}
		spec := x.Spec
		if spec.Version == "" && x.Pending != nil {
			spec = x.Pending.Spec
		}
		rows = append(rows, common.Row{
			Key: x.ID,
			Cells: []string{x.Name, common.ShortID(x.ID), healthMark(x.Health) + " " + x.Health, x.Status, spec.Version,
				size(spec.Elasticsearch.SizeMB), itoa(spec.Elasticsearch.Zones), itoa(x.Healthy) + "/" + itoa(len(x.Members)), plan, orDash(x.Replication)},
			StyleCol: 2, Style: healthStyle(st, x.Health),
		})
	}
	d.list.SetRows(rows)
}

func (d *deployments) ShortHelp() []key.Binding {
	k := d.c.Keys
	if d.detail != "" {
		return []key.Binding{k.Back, k.Logs, k.Resize, k.Upgrade, k.Restart, k.Delete, k.Cancel, k.Retry}
	}
	return []key.Binding{k.Enter, k.Create, k.Filter, k.Sort, k.Resize, k.Delete}
}

func (d *deployments) FullHelp() [][]key.Binding {
	k := d.c.Keys
	return [][]key.Binding{{k.Create, k.Resize, k.Upgrade, k.Restart, k.Delete, k.Cancel, k.Retry}}
}

func (d *deployments) selected() (data.Deployment, bool) {
	id := d.detail
	if id == "" {
		id = d.list.Table.SelectedKey()
	}
	if id == "" || d.snap == nil {
		return data.Deployment{}, false
	}
	return d.snap.Deployment(id)
}

func (d *deployments) HandleKey(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := d.c.Keys
	if d.detail == "" {
		if cmd, ok := d.list.Update(msg); ok {
			return cmd, true
		}
	}
	switch {
	case key.Matches(msg, k.Create):
		return d.app.createDeployment(), true
	case key.Matches(msg, k.Enter) && d.detail == "":
		if id := d.list.Table.SelectedKey(); id != "" {
			d.open(id)
		}
		return nil, true
	case key.Matches(msg, k.Back) && d.detail != "":
		d.detail = ""
		return nil, true
	case d.detail != "" && key.Matches(msg, k.PageDown):
		d.scroll += max(1, d.h/2)
		return nil, true
	case d.detail != "" && key.Matches(msg, k.PageUp):
		d.scroll = max(0, d.scroll-max(1, d.h/2))
		return nil, true
	}
	x, ok := d.selected()
	if !ok {
		return nil, false
	}
	if d.detail != "" {
		n := len(x.Members) + len(x.Incoming)
		switch {
		case key.Matches(msg, k.Down):
			if d.inst < n-1 {
				d.inst++
			} else {
				d.scroll++
			}
			return nil, true
		case key.Matches(msg, k.Up):
			if d.scroll > 0 {
				d.scroll--
			} else {
				d.inst = max(0, d.inst-1)
			}
			return nil, true
		case key.Matches(msg, k.Logs):
			if n == 0 {
				return func() tea.Msg { return common.FlashMsg{Text: x.Name + " has no instance placed yet: no logs"} }, true
			}
			cmd, err := d.app.openLogs(x, orderedMembers(x)[min(d.inst, n-1)].ID)
			if err != nil {
				return func() tea.Msg { return common.ErrorMsg{Err: err} }, true
			}
			return cmd, true
		}
	}
	switch {
	case key.Matches(msg, k.Resize):
		return d.app.resize(x), true
	case key.Matches(msg, k.Upgrade):
		return d.app.upgrade(x), true
	case key.Matches(msg, k.Restart):
		return d.app.restart(x), true
	case key.Matches(msg, k.Delete):
		return d.app.deleteDeployment(x), true
	case key.Matches(msg, k.Cancel):
		return d.app.cancelPlan(x), true
	case key.Matches(msg, k.Retry):
		return d.app.retryPlan(x), true
	}
	return nil, false
}

// orderedMembers are a deployment's instances as the detail lists them:
// by zone, then as placed; then the running plan's new ones.
func orderedMembers(x data.Deployment) []data.Member {
	ms := slices.Clone(x.Members)
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].Zone < ms[j].Zone })
	in := slices.Clone(x.Incoming)
	sort.SliceStable(in, func(i, j int) bool { return in[i].Zone < in[j].Zone })
	return append(ms, in...)
}

func newest(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	s := slices.Clone(vs)
	sort.Strings(s)
	return s[len(s)-1]
}

func (d *deployments) View() string {
	if d.detail == "" {
		return d.list.View()
	}
	st := d.c.Styles
	x, ok := d.snap.Deployment(d.detail)
	if !ok {
		return st.Warn.Render("deployment "+d.detail+" is gone") + st.Muted.Render(" (esc: back)")
	}
	now := d.c.Now()
	w := d.w
	var lines []string
	lines = append(lines, st.Title.Render(x.Name)+"  "+healthStyle(st, x.Health).Render(healthMark(x.Health)+" "+x.Health)+"  "+st.Muted.Render(x.Status))
	lines = append(lines, st.Label.Render("id ")+x.ID)
	spec := x.Spec
	if spec.Version == "" && x.Pending != nil {
		spec = x.Pending.Spec
	}
	kib := "none"
	if spec.Kibana.SizeMB > 0 {
		kib = size(spec.Kibana.SizeMB)
	}
	lines = append(lines, st.Label.Render("version ")+spec.Version+st.Label.Render("  size ")+size(spec.Elasticsearch.SizeMB)+
		st.Label.Render("  zones ")+itoa(spec.Elasticsearch.Zones)+st.Label.Render("  kibana ")+kib+st.Label.Render("  age ")+common.Age(now.Sub(x.CreatedAt)))
	route := "no route yet"
	if x.Route != nil {
		route = "route " + x.Route.State + ", " + itoa(len(x.Route.Backends)) + " backends, gen " + fmt.Sprint(x.Route.Generation)
	}
	if len(x.Filters) > 0 {
		route += ", traffic filters: " + strings.Join(x.Filters, ", ")
	}
	switch {
	case !x.Secured:
		route += ", no elastic user (reset-password creates one)"
	case x.PasswordResets > 0 && x.PasswordResetAt != nil:
		route += fmt.Sprintf(", password reset %d× (last %s ago)", x.PasswordResets, common.Age(now.Sub(*x.PasswordResetAt)))
	default:
		route += ", password as created"
	}
	lines = append(lines, st.Label.Render("endpoint ")+st.Accent.Render(endpoint(d.snap, x.ID))+st.Muted.Render("  "+route))
	if x.Repl != nil {
		rs := st.Good
		switch x.Replication {
		case "yellow":
			rs = st.Warn
		case "red":
			rs = st.Bad
		}
		line := st.Label.Render("replication ") + rs.Render(x.Replication) + st.Muted.Render(fmt.Sprintf("  term %d, primary %s, %d of %d copies in sync",
			x.Repl.Term, common.ShortID(x.Repl.Primary), len(x.Repl.InSync), len(x.Repl.Copies)))
		if x.ReplicationReason != "" {
			line += st.Muted.Render(": " + x.ReplicationReason)
		}
		lines = append(lines, line)
		if x.Repl.Reason != "" {
			lines = append(lines, st.Muted.Render("  last change: "+x.Repl.Reason))
		}
	}
	lines = append(lines, snapshotLine(d.c, x, now))

	lines = append(lines, section(st, "Instances", w))
	all := orderedMembers(x)
	d.inst = max(0, min(d.inst, len(all)-1))
	for i, m := range all {
		state, healthy := instState(m.Status)
		hs := st.Bad
		if healthy {
			hs = st.Good
		}
		addr := ""
		if m.Status != nil {
			addr = m.Status.Address
		}
		mark := " "
		if i == d.inst {
			mark = st.Accent.Render("▸")
		}
		if i >= len(x.Members) {
			addr = st.Muted.Render("new, plan "+x.Pending.Action) + " " + addr
		}
		if c := copyRole(x.Repl, m.ID); c != "" {
			addr = st.Muted.Render(c) + " " + addr
		}
		lines = append(lines, mark+common.Pad(m.Zone, 8)+" "+common.Pad(m.ID, 20)+" "+common.Pad(kindShort(m.Kind), 6)+" "+common.PadLeft(size(m.SizeMB), 5)+" "+
			common.Pad(m.Allocator, 15)+" "+hs.Render(common.Pad(state, 10))+" "+addr)
	}
	if len(all) == 0 {
		lines = append(lines, st.Muted.Render(" none placed yet"))
	}
	p := x.Pending
	title := "Plan activity"
	if p == nil {
		p = x.LastPlan
		title = "Last plan"
	}
	lines = append(lines, section(st, title, w))
	if p == nil {
		lines = append(lines, st.Muted.Render(" no plan yet"))
	} else {
		lines = append(lines, planLines(d.c, p)...)
	}
	if d.scroll > max(0, len(lines)-d.h) {
		d.scroll = max(0, len(lines)-d.h)
	}
	return strings.Join(lines[d.scroll:], "\n")
}

// copyRole is an instance's place in the replication group ("" when it
// is no copy).
func copyRole(r *engine.Replication, iid string) string {
	switch {
	case r == nil || !slices.Contains(r.Copies, iid):
		return ""
	case r.Primary == iid:
		return "primary"
	case r.IsInSync(iid):
		return "replica"
	}
	return "recovering"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
