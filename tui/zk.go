package tui

import (
	"context"
	"errors"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"paddock/engine/service"
	"paddock/tui/common"
	"paddock/tui/data"
)

// zkView (`:zk`) is the console's own view of ZooKeeper: the servers
// it talks to, whether its session is live, how fresh its copy of the
// platform is, and the constructor leader elected through it.
type zkView struct {
	c    *common.Common
	doc  Doctor
	snap *data.Snapshot
	// ens is the doctor's ZooKeeper check (quorum, follower lag).
	ens  *service.Check
	err  error
	w, h int
}

type zkCheckMsg struct {
	c   *service.Check
	err error
}

func newZKView(c *common.Common, doc Doctor) *zkView { return &zkView{c: c, doc: doc} }

// Init asks the doctor for the ensemble's health (srvr on each server).
func (z *zkView) Init() tea.Cmd {
	if z.doc == nil {
		return nil
	}
	doc, ctx := z.doc, z.c.Ctx
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, reportTimeout)
		defer cancel()
		rep, err := doc.Doctor(ctx)
		if err != nil {
			return zkCheckMsg{err: err}
		}
		for _, c := range rep.Checks {
			if c.ID == "zookeeper" {
				return zkCheckMsg{c: &c}
			}
		}
		return zkCheckMsg{err: errors.New("the doctor ran no ZooKeeper check")}
	}
}

func (z *zkView) Title() string                        { return "ZooKeeper" }
func (z *zkView) SetSize(w, h int)                     { z.w, z.h = w, h }
func (z *zkView) SetSnapshot(s *data.Snapshot)         { z.snap = s }
func (z *zkView) Capturing() bool                      { return false }
func (z *zkView) HandleKey(tea.KeyMsg) (tea.Cmd, bool) { return nil, false }
func (z *zkView) ShortHelp() []key.Binding             { return []key.Binding{z.c.Keys.Back} }
func (z *zkView) FullHelp() [][]key.Binding            { return nil }

func (z *zkView) Update(msg tea.Msg) tea.Cmd {
	if m, ok := msg.(zkCheckMsg); ok {
		z.ens, z.err = m.c, m.err
	}
	return nil
}

func (z *zkView) View() string {
	st := z.c.Styles
	s := z.snap
	now := z.c.Now()
	lines := []string{section(st, "ZooKeeper", z.w)}
	servers := s.ZooKeeper
	if servers == "" {
		servers = "?"
	}
	lines = append(lines, st.Label.Render(" servers    ")+servers)
	state := st.Good.Render("connected, watches armed")
	if !s.Connected {
		state = st.Bad.Render("lost, reconnecting")
		if !s.StaleSince.IsZero() {
			state += st.Bad.Render(" (for " + common.Age(now.Sub(s.StaleSince)) + ")")
		}
	}
	lines = append(lines, st.Label.Render(" session    ")+state)
	sync := "never"
	if !s.LastSync.IsZero() {
		sync = common.Age(now.Sub(s.LastSync)) + " ago"
	}
	lines = append(lines, st.Label.Render(" last sync  ")+sync)
	leader := s.Leader
	if leader == "" {
		leader = st.Warn.Render("none: plans will not progress")
	}
	lines = append(lines, st.Label.Render(" leader     ")+leader+st.Muted.Render(" (constructor)"))
	lines = append(lines, st.Label.Render(" mirrored   ")+itoa(len(s.Allocators))+" allocators, "+itoa(len(s.Deployments))+" deployments, "+
		itoa(len(s.Proxies))+" proxies, "+itoa(s.PendingPlans)+" plans")
	if s.Frozen != "" {
		lines = append(lines, st.Bad.Render(" rescheduling frozen: "+s.Frozen))
	}
	switch {
	case z.ens != nil:
		mark := st.Good.Render("✓ ")
		switch z.ens.Severity {
		case service.SeverityCritical:
			mark = st.Bad.Render("✗ ")
		case service.SeverityWarning:
			mark = st.Warn.Render("! ")
		}
		lines = append(lines, st.Label.Render(" ensemble   ")+mark+z.ens.Detail)
		for _, it := range z.ens.Items {
			lines = append(lines, "            "+it)
		}
		if z.ens.Action != "" {
			lines = append(lines, st.Label.Render(" what to do ")+z.ens.Action)
		}
	case z.err != nil:
		lines = append(lines, st.Label.Render(" ensemble   ")+st.Warn.Render("unknown: "+z.err.Error()))
	case z.doc != nil:
		lines = append(lines, st.Label.Render(" ensemble   ")+st.Muted.Render("asking every server (srvr)…"))
	}
	lines = append(lines, "", st.Muted.Render(wrap("The console reads the platform through ZooKeeper watches (no polling): what it shows is as of the last sync.", z.w-2)))
	return strings.Join(lines, "\n")
}
