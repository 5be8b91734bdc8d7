package tui

import (
	"context"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"paddock/themes"
	"paddock/tui/common"
	"paddock/tui/data"
	"paddock/tui/keymap"
)

// Options configure the console.
type Options struct {
	Source  data.Source
	Actions Actions
	Styles  themes.Styles
	// Now is the clock (fixed in golden tests); time.Now by default.
	Now func() time.Time
	// Tick is how often ages and elapsed times refresh (1s; 0 keeps the
	// default, negative disables: golden tests).
	Tick time.Duration
	// Screen opens on this screen index (0 Overview).
	Screen int
	// Permissions restrict the actions (read-only, an API key's role).
	Permissions Permissions
	// Clipboard copies text to the operator's clipboard (production:
	// OSC 52 on the terminal); nil shows the command only.
	Clipboard func(string) error
	// Logs reads instances' container logs (nil: not available).
	Logs LogSource
	// Reports computes headroom (nil: the panel is left out).
	Reports Reports
	// Doctor runs the operator's checks (nil: the screen says so).
	Doctor Doctor
}

// Tabs, in order.
const (
	tabOverview = iota
	tabAllocators
	tabDeployments
	tabPlans
	tabProxies
	tabDoctor
)

// screen is a tab: the common contract plus the snapshot it renders.
type screen interface {
	common.Screen
	SetSnapshot(s *data.Snapshot)
}

// dialog is a modal over the screens: form, confirmation or prompt.
type dialog interface {
	Update(msg tea.Msg) (tea.Cmd, bool)
	View(w int) string
	Help() []key.Binding
}

// Messages.
type (
	snapshotMsg struct{}
	tickMsg     time.Time
	openDialog  struct{ d dialog }
	closeDialog struct{}
	// actionDone reports an action's result; DeploymentID (when set)
	// is shown with its plan after success.
	actionDone struct {
		What         string
		DeploymentID string
		// ShowPlans opens the Plans screen after success (vacate starts
		// one plan per deployment).
		ShowPlans bool
		// Credentials of a created deployment, shown once in a dialog.
		Credentials *Created
		Err         error
	}
	// showDeployment opens a deployment's detail.
	showDeployment struct{ ID string }
	// showPlanOf opens a deployment's detail from the Plans screen.
	showPlanOf struct{ ID string }
)

// App is the console's root model.
type App struct {
	c       *common.Common
	src     data.Source
	actions Actions
	tick    time.Duration
	snap    data.Snapshot
	screens []screen
	active  int
	dialog  dialog
	help    help.Model
	full    bool
	flash   string
	flashAt time.Time
	isErr   bool
	perm    Permissions
	clip    func(string) error
	logs    LogSource
	// cmd is the open `:` command line; over an overlay shown instead of
	// the active tab (`:zk`, logs), esc closes it.
	cmd  *cmdline
	over screen
	// reports and the last headroom report.
	reports Reports
	hr      headroomState
	doctor  Doctor
}

// New builds the console.
func New(ctx context.Context, o Options) *App {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Actions == nil {
		o.Actions = NoActions{}
	}
	if o.Tick == 0 {
		o.Tick = time.Second
	}
	c := &common.Common{Ctx: ctx, Width: 80, Height: 24, Styles: o.Styles, Keys: keymap.Default(), Now: o.Now}
	a := &App{c: c, src: o.Source, actions: o.Actions, tick: o.Tick, help: help.New(), perm: o.Permissions, clip: o.Clipboard, logs: o.Logs, reports: o.Reports, doctor: o.Doctor}
	a.help.Styles.ShortKey = o.Styles.Accent
	a.help.Styles.FullKey = o.Styles.Accent
	a.help.Styles.ShortDesc = o.Styles.Muted
	a.help.Styles.FullDesc = o.Styles.Muted
	a.screens = []screen{
		newOverview(c, a), newAllocators(c, a), newDeployments(c, a), newPlans(c, a), newProxies(c), newDoctorScreen(c, a),
	}
	a.active = max(0, min(o.Screen, len(a.screens)-1))
	a.snap = o.Source.Snapshot()
	a.layout()
	for _, s := range a.screens {
		s.SetSnapshot(&a.snap)
	}
	return a
}

// Init starts listening to the source and the clock.
func (a *App) Init() tea.Cmd {
	var doc tea.Cmd
	if d, ok := a.screens[a.active].(*doctorScreen); ok {
		doc = d.shown()
	}
	return tea.Batch(a.waitChange(), a.tickCmd(), a.headroomCmd(), doc)
}

func (a *App) waitChange() tea.Cmd {
	ch := a.src.Changed()
	ctx := a.c.Ctx
	return func() tea.Msg {
		select {
		case <-ch:
			return snapshotMsg{}
		case <-ctx.Done():
			return tea.Quit()
		}
	}
}

func (a *App) tickCmd() tea.Cmd {
	if a.tick < 0 {
		return nil
	}
	return tea.Tick(a.tick, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Snapshot is the snapshot on screen (tests).
func (a *App) Snapshot() data.Snapshot { return a.snap }

// Active is the active screen's title (tests).
func (a *App) Active() string { return a.screens[a.active].Title() }

func (a *App) layout() {
	// Frame: tab line, body, status line, help line.
	bodyH := max(3, a.c.Height-3)
	for _, s := range a.screens {
		s.SetSize(a.c.Width, bodyH)
	}
	if a.over != nil {
		a.over.SetSize(a.c.Width, bodyH)
	}
	a.help.Width = a.c.Width
}

// showOverlay shows v instead of the active tab until esc.
func (a *App) showOverlay(v screen) tea.Cmd {
	a.closeOverlay()
	a.over = v
	v.SetSnapshot(&a.snap)
	a.layout()
	if i, ok := v.(interface{ Init() tea.Cmd }); ok {
		return i.Init()
	}
	return nil
}

func (a *App) closeOverlay() {
	if c, ok := a.over.(interface{ Close() }); ok {
		c.Close()
	}
	a.over = nil
}

// current is the screen on view: the overlay, else the active tab.
func (a *App) current() screen {
	if a.over != nil {
		return a.over
	}
	return a.screens[a.active]
}

// Update routes messages: global keys, dialogs, then the active screen.
func (a *App) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	k := a.c.Keys
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		a.c.Width, a.c.Height = msg.Width, msg.Height
		a.layout()
		return a, nil
	case snapshotMsg:
		a.snap = a.src.Snapshot()
		for _, s := range a.screens {
			s.SetSnapshot(&a.snap)
		}
		if a.over != nil {
			a.over.SetSnapshot(&a.snap)
		}
		return a, tea.Batch(a.waitChange(), a.headroomCmd())
	case headroomMsg:
		return a, a.gotHeadroom(msg)
	case headroomAgain:
		return a, a.headroomCmd()
	case doctorMsg, doctorAgain:
		return a, a.screens[tabDoctor].Update(msg)
	case tickMsg:
		// Ages and elapsed times move; the view reads the clock.
		return a, a.tickCmd()
	case openDialog:
		a.dialog = msg.d
		return a, nil
	case closeDialog:
		a.dialog = nil
		return a, nil
	case actionDone:
		a.dialog = nil
		if msg.Err != nil {
			a.setFlash(msg.What+" failed: "+msg.Err.Error(), true)
			return a, nil
		}
		if msg.ShowPlans {
			a.setFlash(msg.What+": plans accepted, following them below", false)
			a.switchTo(tabPlans)
			return a, nil
		}
		if msg.DeploymentID == "" {
			a.setFlash(msg.What+": done", false)
			return a, nil
		}
		a.setFlash(msg.What+": plan accepted, following it below", false)
		a.switchTo(tabDeployments)
		if msg.Credentials != nil {
			a.dialog = newCredentialsDialog(a.c, *msg.Credentials)
		}
		return a, a.screens[tabDeployments].Update(showDeployment{ID: msg.DeploymentID})
	case showPlanOf:
		a.switchTo(tabDeployments)
		return a, a.screens[tabDeployments].Update(showDeployment{ID: msg.ID})
	case common.ErrorMsg:
		a.setFlash(msg.Err.Error(), true)
		return a, nil
	case common.FlashMsg:
		a.setFlash(msg.Text, false)
		return a, nil
	case copyMsg:
		return a, a.copy(msg.Text)
	case tea.KeyMsg:
		if a.dialog != nil {
			cmd, _ := a.dialog.Update(msg)
			return a, cmd
		}
		if a.cmd != nil {
			cmd, done := a.cmd.Update(msg)
			if done {
				a.cmd = nil
			}
			return a, cmd
		}
		if msg.String() == "ctrl+c" {
			return a, tea.Quit
		}
		cur := a.current()
		if cur.Capturing() {
			cmd, _ := cur.HandleKey(msg)
			return a, cmd
		}
		if a.full && !key.Matches(msg, k.Quit) {
			a.full = false
			return a, nil
		}
		switch {
		case key.Matches(msg, k.Quit):
			return a, tea.Quit
		case key.Matches(msg, k.Command):
			a.cmd = newCmdline(a)
			return a, nil
		case key.Matches(msg, k.Help):
			a.full = !a.full
			return a, nil
		case msg.String() == "tab" || msg.String() == "shift+tab":
			return a, a.switchTo(a.active + map[bool]int{true: 1, false: -1}[msg.String() == "tab"])
		case key.Matches(msg, k.Tab1), key.Matches(msg, k.Tab2), key.Matches(msg, k.Tab3), key.Matches(msg, k.Tab4), key.Matches(msg, k.Tab5), key.Matches(msg, k.Tab6):
			return a, a.switchTo(int(msg.String()[0] - '1'))
		}
		// Screens handle their keys first (detail views use left/right
		// for nothing, so h/l fall through to tab switching).
		if cmd, ok := cur.HandleKey(msg); ok {
			return a, cmd
		}
		if a.over != nil && key.Matches(msg, k.Back) {
			a.closeOverlay()
			return a, nil
		}
		switch {
		case key.Matches(msg, k.NextTab):
			return a, a.switchTo(a.active + 1)
		case key.Matches(msg, k.PrevTab):
			return a, a.switchTo(a.active - 1)
		}
		return a, nil
	case tea.MouseMsg:
		return a, a.mouse(msg)
	}
	if a.dialog != nil {
		if cmd, ok := a.dialog.Update(msg); ok {
			return a, cmd
		}
	}
	if a.over != nil {
		return a, a.over.Update(msg)
	}
	return a, a.screens[a.active].Update(msg)
}

// copy puts a CLI command on the clipboard and says so; the command is
// on screen in the dialog either way.
func (a *App) copy(s string) tea.Cmd {
	if s == "" {
		return nil
	}
	if a.clip == nil {
		a.setFlash("no clipboard here: the command is shown above — "+s, false)
		return nil
	}
	if err := a.clip(s); err != nil {
		a.setFlash("copy failed ("+err.Error()+"): "+s, true)
		return nil
	}
	a.setFlash("copied (OSC 52): "+s, false)
	return nil
}

// open shows a dialog at once (not through a command, so keys typed
// right after the opening key land in the dialog).
func (a *App) open(d dialog) tea.Cmd {
	a.dialog = d
	return nil
}

// mouse: the wheel scrolls like the arrows; a click on the tab line
// switches screens (enabled with `paddock console --mouse`).
func (a *App) mouse(m tea.MouseMsg) tea.Cmd {
	if a.dialog != nil || a.full {
		return nil
	}
	cur := a.current()
	switch {
	case m.Button == tea.MouseButtonWheelUp:
		cmd, _ := cur.HandleKey(tea.KeyMsg{Type: tea.KeyUp})
		return cmd
	case m.Button == tea.MouseButtonWheelDown:
		cmd, _ := cur.HandleKey(tea.KeyMsg{Type: tea.KeyDown})
		return cmd
	case m.Button == tea.MouseButtonLeft && m.Action == tea.MouseActionPress && m.Y == 0:
		x := lipgloss.Width(a.c.Styles.Title.Render("paddock"))
		// The same labels as the tab line (short ones when narrow).
		right := lipgloss.Width(a.connState())
		if b := a.perm.Badge(); b != "" {
			right += lipgloss.Width(a.c.Styles.Warn.Render(b)) + 1
		}
		over := 0
		if a.over != nil {
			over = lipgloss.Width(a.c.Styles.TabActive.Render(a.over.Title()))
		}
		for i, label := range a.tabLabels(a.c.Width - x - over - right - 1) {
			w := lipgloss.Width(a.c.Styles.Tab.Render(label))
			if m.X >= x && m.X < x+w {
				return a.switchTo(i)
			}
			x += w
		}
	}
	return nil
}

func (a *App) switchTo(i int) tea.Cmd {
	a.closeOverlay()
	n := len(a.screens)
	prev := a.active
	a.active = ((i % n) + n) % n
	if d, ok := a.screens[a.active].(*doctorScreen); ok && a.active != prev {
		return d.shown()
	}
	return nil
}

func (a *App) setFlash(s string, isErr bool) {
	a.flash, a.isErr, a.flashAt = s, isErr, a.c.Now()
}

// View renders the frame: tabs with the connection state, the active
// screen (or a dialog over it), the status line and the help line.
func (a *App) View() string {
	w, h := a.c.Width, a.c.Height
	st := a.c.Styles
	var b strings.Builder
	b.WriteString(a.tabs())
	b.WriteByte('\n')
	bodyH := max(3, h-3)
	var body string
	switch {
	case a.full:
		body = a.fullHelp()
	case a.dialog != nil:
		body = a.dialog.View(w)
	default:
		body = a.current().View()
	}
	b.WriteString(common.FitLines(body, w, bodyH))
	b.WriteByte('\n')
	if a.cmd != nil {
		line, hint := a.cmd.View(w)
		b.WriteString(line + "\n" + hint)
		return st.App.Render(b.String())
	}
	b.WriteString(common.Truncate(a.statusLine(), w))
	b.WriteByte('\n')
	var hk []key.Binding
	if a.dialog != nil {
		hk = a.dialog.Help()
	} else {
		hk = append(a.current().ShortHelp(), a.c.Keys.Command, a.c.Keys.Help, a.c.Keys.Quit)
	}
	b.WriteString(common.Truncate(a.help.ShortHelpView(hk), w))
	return st.App.Render(b.String())
}

// shortTitles keep the tab line on narrow terminals.
var shortTitles = map[string]string{"Overview": "Over", "Allocators": "Allocs", "Deployments": "Deps", "Proxies": "Proxy"}

// tabLabels are the tab labels that fit the width (short ones when the
// full ones do not), as the tab line shows them and mouse clicks read.
func (a *App) tabLabels(room int) []string {
	st := a.c.Styles
	for _, short := range []bool{false, true} {
		labels := make([]string, len(a.screens))
		w := 0
		for i, s := range a.screens {
			t := s.Title()
			if short && shortTitles[t] != "" {
				t = shortTitles[t]
			}
			labels[i] = string(rune('1'+i)) + " " + t
			w += lipgloss.Width(st.Tab.Render(labels[i]))
		}
		if w <= room || short {
			return labels
		}
	}
	return nil
}

func (a *App) tabs() string {
	st := a.c.Styles
	right := a.connState()
	if b := a.perm.Badge(); b != "" {
		right = st.Warn.Render(b) + " " + right
	}
	title := st.Title.Render("paddock")
	over := ""
	if a.over != nil {
		over = st.TabActive.Render(a.over.Title())
	}
	parts := []string{title}
	for i, label := range a.tabLabels(a.c.Width - lipgloss.Width(title) - lipgloss.Width(over) - lipgloss.Width(right) - 1) {
		if i == a.active && a.over == nil {
			parts = append(parts, st.TabActive.Render(label))
		} else {
			parts = append(parts, st.Tab.Render(label))
		}
	}
	left := strings.Join(parts, "") + over
	gap := a.c.Width - lipgloss.Width(left) - lipgloss.Width(right)
	if gap < 1 {
		// Narrow: cut the tabs to keep the state visible.
		return common.Truncate(left, a.c.Width-lipgloss.Width(right)-1) + " " + right
	}
	return left + strings.Repeat(" ", gap) + right
}

func (a *App) connState() string {
	st := a.c.Styles
	s := a.snap
	switch {
	case !s.Loaded && s.Connected:
		return st.Warn.Render("◌ loading")
	case !s.Loaded:
		return st.Warn.Render("◌ connecting")
	case !s.Connected:
		// The state shown is as of the moment the connection dropped.
		age := "?"
		if !s.StaleSince.IsZero() {
			age = common.Age(a.c.Now().Sub(s.StaleSince))
		} else if !s.LastSync.IsZero() {
			age = common.Age(a.c.Now().Sub(s.LastSync))
		}
		return st.Bad.Render("✗ STALE " + age)
	}
	return st.Good.Render("● live")
}

func (a *App) statusLine() string {
	st := a.c.Styles
	if a.flash != "" && a.c.Now().Sub(a.flashAt) < 15*time.Second {
		if a.isErr {
			return st.Error.Render("✗ " + a.flash)
		}
		return st.Info.Render("✓ " + a.flash)
	}
	s := a.snap
	zk := s.ZooKeeper
	if zk == "" {
		zk = "ZooKeeper"
	}
	state := "connected"
	if !s.Connected {
		state = "reconnecting"
	}
	return st.StatusBar.Render("zk " + zk + " " + state + " · " + itoa(len(s.Allocators)) + " allocators · " + itoa(len(s.Deployments)) + " deployments · " + itoa(s.PendingPlans) + " plans")
}

func (a *App) fullHelp() string {
	k := a.c.Keys
	groups := [][]key.Binding{
		{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom},
		{k.NextTab, k.PrevTab, k.Tab1, k.Enter, k.Back, k.Filter, k.Sort, k.Reverse},
	}
	groups = append(groups, a.current().FullHelp()...)
	groups = append(groups, []key.Binding{k.Command, k.Copy, k.Help, k.Quit})
	a.help.ShowAll = true
	v := a.c.Styles.Title.Render("Keys") + "\n\n" + a.help.FullHelpView(groups)
	a.help.ShowAll = false
	return v
}
