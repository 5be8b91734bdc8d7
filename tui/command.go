package tui

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"paddock/tui/common"
	"paddock/tui/data"
)

// command is one word of the `:` command line (k9s style): a resource
// to show or an action to take, with its arguments completed from what
// the console shows.
type command struct {
	names []string // the first is the one completion offers
	usage string
	help  string
	// complete lists the candidates for the argument after args.
	complete func(a *App, args []string) []string
	run      func(a *App, args []string) (tea.Cmd, error)
}

// commands is the command table (a function: the entries call the App).
func commands() []command {
	deps := func(a *App, args []string) []string {
		if len(args) == 0 {
			return a.deploymentNames()
		}
		return nil
	}
	allocs := func(a *App, args []string) []string {
		if len(args) == 0 {
			return a.allocatorIDs()
		}
		return nil
	}
	onDep := func(fn func(a *App, x data.Deployment) tea.Cmd) func(a *App, args []string) (tea.Cmd, error) {
		return func(a *App, args []string) (tea.Cmd, error) {
			if len(args) != 1 {
				return nil, errors.New("name the deployment (tab completes)")
			}
			x, err := a.findDeployment(args[0])
			if err != nil {
				return nil, err
			}
			return fn(a, x), nil
		}
	}
	onAlloc := func(fn func(a *App, al data.Allocator) tea.Cmd) func(a *App, args []string) (tea.Cmd, error) {
		return func(a *App, args []string) (tea.Cmd, error) {
			if len(args) != 1 {
				return nil, errors.New("name the allocator (tab completes)")
			}
			al, ok := a.snap.Allocator(args[0])
			if !ok {
				return nil, fmt.Errorf("no allocator %s: tab completes the ids", args[0])
			}
			return fn(a, al), nil
		}
	}
	return []command{
		{names: []string{"overview", "o"}, help: "zones, headroom, plans, alerts",
			run: func(a *App, _ []string) (tea.Cmd, error) { a.switchTo(tabOverview); return nil, nil }},
		{names: []string{"alloc", "allocators", "a"}, usage: "[zone|allocator]", help: "allocators, of a zone or one",
			complete: func(a *App, args []string) []string {
				if len(args) == 0 {
					return append(a.zoneNames(), a.allocatorIDs()...)
				}
				return nil
			},
			run: func(a *App, args []string) (tea.Cmd, error) { return a.showAllocators(args) }},
		{names: []string{"dep", "deployments", "d"}, usage: "[deployment [logs [instance]]]", help: "deployments, one, or its logs",
			complete: func(a *App, args []string) []string {
				switch len(args) {
				case 0:
					return a.deploymentNames()
				case 1:
					return []string{"logs"}
				case 2:
					return a.instanceIDs(args[0])
				}
				return nil
			},
			run: func(a *App, args []string) (tea.Cmd, error) { return a.showDeployments(args) }},
		{names: []string{"plan", "plans", "p"}, usage: "[plan id|deployment]", help: "running plans, or one followed live",
			complete: func(a *App, args []string) []string {
				if len(args) == 0 {
					return append(a.planIDs(), a.deploymentNames()...)
				}
				return nil
			},
			run: func(a *App, args []string) (tea.Cmd, error) { return a.showPlan(args) }},
		{names: []string{"proxies", "px"}, help: "proxies and their routes",
			run: func(a *App, _ []string) (tea.Cmd, error) { a.switchTo(tabProxies); return nil, nil }},
		{names: []string{"headroom", "hr"}, help: "what losing each zone, or vacating each allocator, would need",
			run: func(a *App, _ []string) (tea.Cmd, error) {
				if a.reports == nil {
					return nil, errors.New("headroom is not available in this console")
				}
				return a.showOverlay(newHeadroomView(a.c, a)), nil
			}},
		{names: []string{"doctor", "dr"}, help: "the operator's checks, worst first",
			run: func(a *App, _ []string) (tea.Cmd, error) { return a.switchTo(tabDoctor), nil }},
		{names: []string{"zk", "zookeeper"}, help: "ZooKeeper connection, servers, leader",
			run: func(a *App, _ []string) (tea.Cmd, error) { return a.showOverlay(newZKView(a.c, a.doctor)), nil }},
		{names: []string{"cancel"}, usage: "deployment", help: "cancel its running plan", complete: deps,
			run: onDep((*App).cancelPlan)},
		{names: []string{"retry"}, usage: "deployment", help: "retry its failed plan", complete: deps,
			run: onDep((*App).retryPlan)},
		{names: []string{"restart"}, usage: "deployment", help: "restart its instances", complete: deps,
			run: onDep((*App).restart)},
		{names: []string{"resize"}, usage: "deployment", help: "change its size", complete: deps,
			run: onDep((*App).resize)},
		{names: []string{"upgrade"}, usage: "deployment", help: "change its version", complete: deps,
			run: onDep((*App).upgrade)},
		{names: []string{"delete"}, usage: "deployment", help: "delete it", complete: deps,
			run: onDep((*App).deleteDeployment)},
		{names: []string{"create"}, help: "create a deployment",
			run: func(a *App, _ []string) (tea.Cmd, error) { return a.createDeployment(), nil }},
		{names: []string{"maint"}, usage: "allocator", help: "maintenance on/off", complete: allocs,
			run: onAlloc((*App).maintenance)},
		{names: []string{"vacate"}, usage: "allocator", help: "move its instances away", complete: allocs,
			run: onAlloc((*App).vacate)},
		{names: []string{"help", "h"}, help: "keys",
			run: func(a *App, _ []string) (tea.Cmd, error) { a.full = true; return nil, nil }},
		{names: []string{"quit", "q"}, help: "leave the console",
			run: func(*App, []string) (tea.Cmd, error) { return tea.Quit, nil }},
	}
}

func lookup(cs []command, name string) (command, bool) {
	for _, c := range cs {
		if slices.Contains(c.names, name) {
			return c, true
		}
	}
	return command{}, false
}

// cmdline is the `:` command line. Tab completes the word under the
// cursor (again: the next candidate), enter runs, esc leaves.
type cmdline struct {
	app   *App
	cmds  []command
	input textinput.Model
	err   string
	// cands are the candidates for the last word; pick the one tab
	// put there (cycling), -1 before the first tab.
	cands []string
	pick  int
	base  string
}

func newCmdline(a *App) *cmdline {
	ti := textinput.New()
	ti.Prompt = ":"
	ti.CharLimit = 200
	ti.Focus()
	l := &cmdline{app: a, cmds: commands(), input: ti, pick: -1}
	l.refresh()
	return l
}

// words splits the line; the last word is "" after a trailing space.
func (l *cmdline) words() []string {
	v := l.input.Value()
	w := strings.Fields(v)
	if v == "" || strings.HasSuffix(v, " ") {
		w = append(w, "")
	}
	return w
}

// candidates for the last word of the line.
func (l *cmdline) candidates(words []string) []string {
	last := words[len(words)-1]
	var all []string
	if len(words) == 1 {
		for _, c := range l.cmds {
			all = append(all, c.names[0])
		}
	} else if c, ok := lookup(l.cmds, words[0]); ok && c.complete != nil {
		all = c.complete(l.app, words[1:len(words)-1])
	}
	var out []string
	for _, s := range all {
		if strings.HasPrefix(s, last) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (l *cmdline) refresh() {
	l.cands = l.candidates(l.words())
	l.pick = -1
	l.base = l.input.Value()
}

// complete is tab: the common prefix first, then each candidate in turn.
func (l *cmdline) complete() {
	if l.pick >= 0 && len(l.cands) > 1 {
		l.pick = (l.pick + 1) % len(l.cands)
		l.setLast(l.base, l.cands[l.pick], false)
		return
	}
	words := l.words()
	last := words[len(words)-1]
	switch len(l.cands) {
	case 0:
		return
	case 1:
		l.setLast(l.input.Value(), l.cands[0], true)
		l.refresh()
		return
	}
	if p := commonPrefix(l.cands); len(p) > len(last) {
		l.setLast(l.input.Value(), p, false)
		l.refresh()
		return
	}
	l.base = l.input.Value()
	l.pick = 0
	l.setLast(l.base, l.cands[0], false)
}

// setLast replaces the last word of line with w (and a space when done).
func (l *cmdline) setLast(line, w string, done bool) {
	i := strings.LastIndex(line, " ") + 1
	v := line[:i] + w
	if done {
		v += " "
	}
	l.input.SetValue(v)
	l.input.CursorEnd()
}

func commonPrefix(ss []string) string {
	p := ss[0]
	for _, s := range ss[1:] {
		for !strings.HasPrefix(s, p) {
			p = p[:len(p)-1]
		}
	}
	return p
}

// Update handles a key; the frame closes the line when done is true.
func (l *cmdline) Update(msg tea.KeyMsg) (cmd tea.Cmd, done bool) {
	switch msg.String() {
	case "esc", "ctrl+c":
		return nil, true
	case "tab":
		l.complete()
		return nil, false
	case "enter":
		cmd, err := l.exec()
		if err != nil {
			l.err = err.Error()
			return nil, false
		}
		return cmd, true
	}
	cmd = updateInput(&l.input, msg)
	l.err = ""
	l.refresh()
	return cmd, false
}

func (l *cmdline) exec() (tea.Cmd, error) {
	words := strings.Fields(l.input.Value())
	if len(words) == 0 {
		return nil, nil
	}
	c, ok := lookup(l.cmds, words[0])
	if !ok {
		// A unique prefix runs its command (k9s: `:dep` for deployments).
		var hits []command
		for _, x := range l.cmds {
			if strings.HasPrefix(x.names[0], words[0]) {
				hits = append(hits, x)
			}
		}
		if len(hits) != 1 {
			return nil, fmt.Errorf("no command %q: tab lists them", words[0])
		}
		c = hits[0]
	}
	return c.run(l.app, words[1:])
}

// View is the command line (status line) and the hint (help line).
func (l *cmdline) View(w int) (line, hint string) {
	st := l.app.c.Styles
	l.input.Width = max(10, w-2)
	line = l.input.View()
	switch {
	case l.err != "":
		hint = st.Error.Render("✗ " + l.err)
	case len(l.cands) > 0 && !(len(l.cands) == 1 && strings.HasSuffix(l.input.Value(), l.cands[0])):
		var parts []string
		for i, c := range l.cands {
			s := c
			if i == l.pick {
				s = st.Accent.Render(c)
			}
			parts = append(parts, s)
		}
		hint = st.Muted.Render("tab: ") + strings.Join(parts, " ")
	default:
		words := strings.Fields(l.input.Value())
		if len(words) > 0 {
			if c, ok := lookup(l.cmds, words[0]); ok {
				hint = st.Muted.Render(":" + c.names[0] + " " + c.usage + " — " + c.help + " · enter runs · esc leaves")
				break
			}
		}
		hint = st.Muted.Render("enter runs · tab completes · esc leaves")
	}
	return common.Truncate(line, w), common.Truncate(hint, w)
}

// Lookups the commands complete from.

func (a *App) deploymentNames() []string {
	out := make([]string, 0, len(a.snap.Deployments))
	for _, d := range a.snap.Deployments {
		out = append(out, d.Name)
	}
	sort.Strings(out)
	return out
}

func (a *App) allocatorIDs() []string {
	out := make([]string, 0, len(a.snap.Allocators))
	for _, al := range a.snap.Allocators {
		out = append(out, al.ID)
	}
	sort.Strings(out)
	return out
}

func (a *App) zoneNames() []string {
	out := make([]string, 0, len(a.snap.Zones))
	for _, z := range a.snap.Zones {
		out = append(out, z.Name)
	}
	return out
}

func (a *App) planIDs() []string {
	var out []string
	for _, d := range a.snap.RunningPlans() {
		out = append(out, d.Pending.ID)
	}
	return out
}

func (a *App) instanceIDs(dep string) []string {
	x, err := a.findDeployment(dep)
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range orderedMembers(x) {
		out = append(out, m.ID)
	}
	return out
}

// findDeployment resolves a name, an id or an id prefix (4+ characters).
func (a *App) findDeployment(q string) (data.Deployment, error) {
	var hits []data.Deployment
	for _, d := range a.snap.Deployments {
		if d.ID == q {
			return d, nil
		}
		if d.Name == q || len(q) >= 4 && strings.HasPrefix(d.ID, q) {
			hits = append(hits, d)
		}
	}
	switch len(hits) {
	case 0:
		return data.Deployment{}, fmt.Errorf("no deployment %s: tab completes the names", q)
	case 1:
		return hits[0], nil
	}
	return data.Deployment{}, fmt.Errorf("%d deployments match %s: use the id", len(hits), q)
}

func (a *App) showAllocators(args []string) (tea.Cmd, error) {
	s := a.screens[tabAllocators].(*allocators)
	a.switchTo(tabAllocators)
	s.detail = ""
	if len(args) == 0 {
		s.list.SetFilter("")
		return nil, nil
	}
	if _, ok := a.snap.Allocator(args[0]); ok {
		s.open(args[0])
		return nil, nil
	}
	if slices.Contains(a.zoneNames(), args[0]) {
		s.list.SetFilter(args[0])
		return nil, nil
	}
	return nil, fmt.Errorf("no zone or allocator %s: tab completes them", args[0])
}

func (a *App) showDeployments(args []string) (tea.Cmd, error) {
	s := a.screens[tabDeployments].(*deployments)
	if len(args) == 0 {
		a.switchTo(tabDeployments)
		s.detail = ""
		return nil, nil
	}
	x, err := a.findDeployment(args[0])
	if err != nil {
		return nil, err
	}
	switch {
	case len(args) == 1:
	case args[1] == "logs" && len(args) <= 3:
		inst := ""
		if len(args) == 3 {
			inst = args[2]
		}
		return a.openLogs(x, inst)
	default:
		return nil, fmt.Errorf("after the deployment: logs [instance]")
	}
	a.switchTo(tabDeployments)
	return s.Update(showDeployment{ID: x.ID}), nil
}

func (a *App) showPlan(args []string) (tea.Cmd, error) {
	if len(args) == 0 {
		a.switchTo(tabPlans)
		return nil, nil
	}
	for _, d := range a.snap.Deployments {
		if d.Pending != nil && d.Pending.ID == args[0] || d.LastPlan != nil && d.LastPlan.ID == args[0] {
			a.switchTo(tabDeployments)
			return a.screens[tabDeployments].Update(showDeployment{ID: d.ID}), nil
		}
	}
	x, err := a.findDeployment(args[0])
	if err != nil {
		return nil, fmt.Errorf("no plan or deployment %s: tab completes running plans and deployments", args[0])
	}
	a.switchTo(tabDeployments)
	return a.screens[tabDeployments].Update(showDeployment{ID: x.ID}), nil
}
