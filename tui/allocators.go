package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"paddock/tui/common"
	"paddock/tui/data"
)

// allocators is the sortable, filterable allocator table; enter opens
// an allocator's detail with its instances. m toggles maintenance, v
// vacates (both confirmed).
type allocators struct {
	c      *common.Common
	app    *App
	snap   *data.Snapshot
	list   *common.List
	detail string // allocator id shown, "" for the table
	inst   common.Table
	w, h   int
}

func newAllocators(c *common.Common, app *App) *allocators {
	cols := []common.Column{
		{Title: "ID", Width: 12, Flex: true},
		{Title: "ZONE", Width: 8},
		{Title: "STATE", Width: 11},
		{Title: "USED", Width: 6, Right: true},
		{Title: "CAPACITY", Width: 8, Right: true},
		{Title: "USE%", Width: 5, Right: true},
		{Title: "INST", Width: 4, Right: true},
		{Title: "OK", Width: 4, Right: true},
		{Title: "HOST", Width: 10, Flex: true},
	}
	a := &allocators{c: c, app: app, list: common.NewList(c, cols, 0)}
	a.inst.Columns = []common.Column{
		{Title: "INSTANCE", Width: 14, Flex: true},
		{Title: "DEPLOYMENT", Width: 10},
		{Title: "KIND", Width: 6},
		{Title: "SIZE", Width: 5, Right: true},
		{Title: "STATE", Width: 10},
		{Title: "OK", Width: 3},
		{Title: "ADDRESS", Width: 15, Flex: true},
		{Title: "RST", Width: 3, Right: true},
	}
	return a
}

func (a *allocators) Title() string   { return "Allocators" }
func (a *allocators) Capturing() bool { return a.list.Editing() }
func (a *allocators) Update(msg tea.Msg) tea.Cmd {
	return nil
}

func (a *allocators) SetSize(w, h int) {
	a.w, a.h = w, h
	a.list.SetSize(w, h)
	a.inst.Width = w
}

func (a *allocators) SetSnapshot(s *data.Snapshot) {
	a.snap = s
	st := a.c.Styles
	rows := make([]common.Row, 0, len(s.Allocators))
	for _, al := range s.Allocators {
		state := al.State()
		rows = append(rows, common.Row{
			Key: al.ID,
			Cells: []string{al.ID, al.Zone, state, size(al.UsedMB()), size(al.CapacityMB()),
				common.Percent(al.UsedMB(), al.CapacityMB()), itoa(len(al.Instances)), itoa(al.Healthy()), al.Host},
			StyleCol: 2, Style: allocStyle(st, state),
		})
	}
	a.list.SetRows(rows)
	a.refreshDetail()
}

// open shows an allocator's detail.
func (a *allocators) open(id string) {
	a.detail = id
	a.inst.Cursor = 0
	a.list.Table.Select(id)
	a.refreshDetail()
}

func (a *allocators) refreshDetail() {
	if a.detail == "" || a.snap == nil {
		return
	}
	al, ok := a.snap.Allocator(a.detail)
	if !ok {
		return
	}
	st := a.c.Styles
	var rows []common.Row
	for _, in := range al.Instances {
		state, healthy := instState(in.Status)
		addr, rst := "", ""
		if in.Status != nil {
			addr, rst = in.Status.Address, itoa(in.Status.Restarts)
		}
		name := common.ShortID(in.DeploymentID)
		if d, ok := a.snap.Deployment(in.DeploymentID); ok {
			name = d.Name
		}
		hs := st.Bad
		if healthy {
			hs = st.Good
		}
		rows = append(rows, common.Row{Key: in.ID,
			Cells:    []string{in.ID, name, kindShort(in.Kind), size(in.SizeMB), state, yesNo(healthy), addr, rst},
			StyleCol: 5, Style: hs})
	}
	a.inst.SetRows(rows)
}

func (a *allocators) ShortHelp() []key.Binding {
	k := a.c.Keys
	if a.detail != "" {
		return []key.Binding{k.Back, k.Maintenance, k.Vacate}
	}
	return []key.Binding{k.Enter, k.Filter, k.Sort, k.Maintenance, k.Vacate}
}

func (a *allocators) FullHelp() [][]key.Binding {
	k := a.c.Keys
	return [][]key.Binding{{k.Maintenance, k.Vacate}}
}

func (a *allocators) selected() string {
	if a.detail != "" {
		return a.detail
	}
	return a.list.Table.SelectedKey()
}

func (a *allocators) HandleKey(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := a.c.Keys
	if a.detail == "" {
		if cmd, ok := a.list.Update(msg); ok {
			return cmd, true
		}
	}
	switch {
	case key.Matches(msg, k.Enter) && a.detail == "":
		if id := a.list.Table.SelectedKey(); id != "" {
			a.open(id)
		}
	case key.Matches(msg, k.Back) && a.detail != "":
		a.detail = ""
	case a.detail != "" && key.Matches(msg, k.Up):
		a.inst.Move(-1)
	case a.detail != "" && key.Matches(msg, k.Down):
		a.inst.Move(1)
	case key.Matches(msg, k.Maintenance):
		if al, ok := a.snap.Allocator(a.selected()); ok {
			return a.app.maintenance(al), true
		}
	case key.Matches(msg, k.Vacate):
		if al, ok := a.snap.Allocator(a.selected()); ok {
			return a.app.vacate(al), true
		}
	default:
		return nil, false
	}
	return nil, true
}

func (a *allocators) View() string {
	if a.detail == "" {
		return a.list.View()
	}
	st := a.c.Styles
	al, ok := a.snap.Allocator(a.detail)
	if !ok {
		return st.Warn.Render("allocator " + a.detail + " is gone (esc: back)")
	}
	var b strings.Builder
	b.WriteString(st.Title.Render("Allocator "+al.ID) + "  " + allocStyle(st, al.State()).Render(al.State()) + "\n")
	b.WriteString(st.Label.Render("zone ") + al.Zone + st.Label.Render("  host ") + al.Host + st.Label.Render("  runtime ") + al.Runtime + st.Label.Render("  version ") + al.Version + "\n")
	barW := max(10, min(50, a.w-40))
	b.WriteString(st.Label.Render("memory ") + common.Bar(st, al.UsedMB(), al.CapacityMB(), barW) + " " + size(al.UsedMB()) + " used of " + size(al.CapacityMB()) + ", " + size(al.CapacityMB()-al.UsedMB()) + " free\n")
	if al.Alive != nil {
		b.WriteString(st.Label.Render("alive since ") + common.Age(a.c.Now().Sub(al.Alive.StartedAt)) + st.Label.Render("  docker ") + yesNo(al.Alive.DockerOK))
		if al.Alive.Error != "" {
			b.WriteString(st.Bad.Render("  " + al.Alive.Error))
		}
		b.WriteString("\n")
	} else {
		b.WriteString(st.Bad.Render("no session: allocator lost") + "\n")
	}
	head := 6
	if v := vacateWords(a.c, a.snap, a.app.hr, al.ID); v != "" {
		b.WriteString(st.Label.Render("if vacated ") + v + "\n")
		head++
	}
	b.WriteString(section(st, "Instances ("+itoa(len(al.Instances))+")", a.w) + "\n")
	a.inst.Height = max(2, a.h-head)
	b.WriteString(a.inst.View(st, true))
	return b.String()
}
