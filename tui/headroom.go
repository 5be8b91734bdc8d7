package tui

import (
	"context"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"paddock/engine/headroom"
	"paddock/engine/service"
	"paddock/tui/common"
	"paddock/tui/data"
)

// Reports are the reports the console shows beside the snapshot,
// computed by the engine's service (the API's own functions): the
// zone-loss headroom (a dry-run of the real placement).
type Reports interface {
	Headroom(ctx context.Context) (headroom.Report, error)
}

// reportTimeout bounds one report request.
const reportTimeout = 10 * time.Second

type (
	headroomMsg struct {
		rep headroom.Report
		err error
	}
	headroomAgain struct{}
)

// headroomState is the last report and whether one is being computed.
type headroomState struct {
	rep *headroom.Report
	err error
	// busy: a request is out; dirty: the platform changed meanwhile
	// (ask again once it is answered).
	busy, dirty bool
}

// headroomCmd asks for the report after a change, one request at a
// time; a change during a request asks again after it.
func (a *App) headroomCmd() tea.Cmd {
	if a.reports == nil {
		return nil
	}
	if a.hr.busy {
		a.hr.dirty = true
		return nil
	}
	a.hr.busy = true
	r, ctx := a.reports, a.c.Ctx
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, reportTimeout)
		defer cancel()
		rep, err := r.Headroom(ctx)
		return headroomMsg{rep: rep, err: err}
	}
}

// gotHeadroom keeps a report. The service answers from a cache younger
// than HeadroomMaxAge: after a change during the request, ask again
// once that cache has expired, so the panel catches up within a second.
func (a *App) gotHeadroom(m headroomMsg) tea.Cmd {
	a.hr.busy = false
	if m.err != nil {
		a.hr.err = m.err
	} else {
		rep := m.rep
		a.hr.rep, a.hr.err = &rep, nil
	}
	if !a.hr.dirty {
		return nil
	}
	a.hr.dirty = false
	return tea.Tick(service.HeadroomMaxAge, func(time.Time) tea.Msg { return headroomAgain{} })
}

// names turns deployment ids into the names operators know: up to n
// of them (n < 0: all), and how many more.
func names(s *data.Snapshot, ids []string, n int) string {
	if n < 0 || n > len(ids) {
		n = len(ids)
	}
	out := make([]string, n)
	for i, id := range ids[:n] {
		out[i] = common.ShortID(id)
		if d, ok := s.Deployment(id); ok {
			out[i] = d.Name
		}
	}
	more := ""
	if len(ids) > n {
		more = " +" + itoa(len(ids)-n)
	}
	return strings.Join(out, ", ") + more
}

// headroomLines is the Overview's panel: one line per zone, red when
// its loss cannot be absorbed.
func headroomLines(c *common.Common, s *data.Snapshot, hr headroomState, w int) []string {
	st := c.Styles
	title := "Headroom: if a zone is lost"
	if hr.rep != nil {
		bad := 0
		for _, z := range hr.rep.Zones {
			if !z.Survivable {
				bad++
			}
		}
		if bad > 0 {
			title += " (" + itoa(bad) + " not absorbed)"
		}
	}
	out := []string{section(st, title, w)}
	switch {
	case hr.rep == nil && hr.err != nil:
		return append(out, st.Warn.Render("  headroom unavailable: "+hr.err.Error()))
	case hr.rep == nil:
		return append(out, st.Muted.Render("  computing…"))
	case len(hr.rep.Zones) == 0:
		return append(out, st.Muted.Render("  no zone"))
	}
	for _, z := range hr.rep.Zones {
		out = append(out, zoneHeadroom(c, s, z))
	}
	if hr.err != nil {
		out = append(out, st.Warn.Render("  last recomputation failed: "+hr.err.Error()))
	}
	return out
}

func zoneHeadroom(c *common.Common, s *data.Snapshot, z headroom.Zone) string {
	st := c.Styles
	var parts []string
	if !z.Survivable {
		if z.ShortfallMB > 0 {
			parts = append(parts, "short "+size(z.ShortfallMB))
		}
		if len(z.Unplaceable) > 0 {
			parts = append(parts, "cannot re-place "+names(s, z.Unplaceable, 3))
		}
	} else {
		parts = append(parts, "needs "+size(z.NeededMB)+" of "+size(z.FreeElsewhereMB)+" free elsewhere")
	}
	if len(z.LostHA) > 0 {
		parts = append(parts, "HA lost: "+names(s, z.LostHA, 3))
	}
	if z.Frozen != "" {
		parts = append(parts, "rescheduling would freeze")
	}
	detail := strings.Join(parts, " · ")
	if z.Instances == 0 {
		detail = "no instance there"
	}
	if !z.Survivable {
		return st.Bad.Render("  ✗ " + common.Pad(z.Zone, 14) + " NOT absorbed  " + detail)
	}
	mark := st.Good.Render("  ✓ ")
	if len(z.LostHA) > 0 {
		mark = st.Warn.Render("  ! ")
	}
	return mark + common.Pad(z.Zone, 14) + " absorbed      " + detail
}

// headroomView (`:headroom`) is the whole report: each zone's loss
// with every deployment named, and the allocators that could not be
// vacated.
type headroomView struct {
	c      *common.Common
	app    *App
	snap   *data.Snapshot
	scroll int
	w, h   int
}

func newHeadroomView(c *common.Common, a *App) *headroomView { return &headroomView{c: c, app: a} }

func (v *headroomView) Title() string                { return "Headroom" }
func (v *headroomView) SetSize(w, h int)             { v.w, v.h = w, h }
func (v *headroomView) SetSnapshot(s *data.Snapshot) { v.snap = s }
func (v *headroomView) Capturing() bool              { return false }
func (v *headroomView) Update(tea.Msg) tea.Cmd       { return nil }
func (v *headroomView) ShortHelp() []key.Binding {
	k := v.c.Keys
	return []key.Binding{k.Back, k.Up, k.Down}
}
func (v *headroomView) FullHelp() [][]key.Binding { return nil }

func (v *headroomView) HandleKey(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := v.c.Keys
	switch {
	case key.Matches(msg, k.Down):
		v.scroll++
	case key.Matches(msg, k.Up):
		v.scroll = max(0, v.scroll-1)
	default:
		return nil, false
	}
	return nil, true
}

func (v *headroomView) View() string {
	st := v.c.Styles
	hr := v.app.hr
	lines := headroomLines(v.c, v.snap, hr, v.w)
	if hr.rep != nil {
		rep := hr.rep
		if !rep.ComputedAt.IsZero() {
			lines[0] = section(st, "Headroom: if a zone is lost (computed "+common.Age(v.c.Now().Sub(rep.ComputedAt))+" ago)", v.w)
		}
		for _, z := range rep.Zones {
			if len(z.Unplaceable) > 3 || len(z.LostHA) > 3 {
				lines = append(lines, st.Label.Render("  "+z.Zone+": ")+wrap(names(v.snap, append(append([]string{}, z.Unplaceable...), z.LostHA...), 200), v.w-4))
			}
			if z.Frozen != "" {
				lines = append(lines, st.Warn.Render("  "+z.Zone+": the constructor would freeze rescheduling ("+z.Frozen+"): vacate its allocators by hand"))
			}
		}
		var blocked []headroom.Allocator
		for _, a := range rep.Allocators {
			if !a.Vacatable {
				blocked = append(blocked, a)
			}
		}
		lines = append(lines, "", section(st, "Vacating one allocator", v.w))
		if len(blocked) == 0 {
			lines = append(lines, st.Good.Render("  ✓ every allocator holding instances ("+itoa(len(rep.Allocators))+") could be vacated"))
		} else {
			lines = append(lines, st.Muted.Render("  "+itoa(len(blocked))+" of "+itoa(len(rep.Allocators))+" allocators holding instances could not be vacated:"))
			for _, a := range blocked {
				l := "  ✗ " + common.Pad(a.ID, 16) + " " + common.Pad(a.Zone, 8) + " " + itoa(a.Instances) + " instances, " + size(a.NeededMB)
				if a.ShortfallMB > 0 {
					l += " · short " + size(a.ShortfallMB)
				}
				if len(a.Unplaceable) > 0 {
					l += " · cannot re-place " + names(v.snap, a.Unplaceable, 3)
				}
				if len(a.LostHA) > 0 {
					l += " · HA lost: " + names(v.snap, a.LostHA, 3)
				}
				lines = append(lines, st.Bad.Render(l))
			}
		}
	}
	lines = append(lines, "", st.Muted.Render(wrap("A dry-run of the constructor's own placement over the live inventory: recomputed on every capacity or deployment change. Same report: paddock platform headroom.", v.w-2)))
	if v.scroll > max(0, len(lines)-v.h) {
		v.scroll = max(0, len(lines)-v.h)
	}
	return strings.Join(lines[v.scroll:], "\n")
}

// vacateWords says what vacating allocator id would need, from the last
// headroom report ("" when there is none or it holds no instance).
func vacateWords(c *common.Common, s *data.Snapshot, hr headroomState, id string) string {
	st := c.Styles
	if hr.rep == nil {
		return ""
	}
	for _, a := range hr.rep.Allocators {
		if a.ID != id {
			continue
		}
		if a.Vacatable {
			out := st.Good.Render("✓ its " + itoa(a.Instances) + " instances (" + size(a.NeededMB) + ") fit elsewhere")
			if len(a.LostHA) > 0 {
				out += st.Warn.Render(" · HA lost: " + names(s, a.LostHA, 3))
			}
			return out
		}
		out := "✗ not everything fits elsewhere"
		if a.ShortfallMB > 0 {
			out += ": short " + size(a.ShortfallMB)
		}
		if len(a.Unplaceable) > 0 {
			out += " · cannot re-place " + names(s, a.Unplaceable, 3)
		}
		return st.Bad.Render(out)
	}
	return ""
}
