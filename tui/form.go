package tui

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"paddock/engine"
	"paddock/tui/common"
)

// createForm is the create-deployment form: name, version, size,
// zones, kibana size. Text fields take typing; choice fields move with
// left/right; tab and enter go to the next field; enter on Create
// submits.
type createForm struct {
	c        *common.Common
	act      Actions
	versions []string
	maxZones int
	focus    int
	name     textinput.Model
	size     textinput.Model
	kibana   textinput.Model
	version  int
	zones    int
	err      string
	busy     bool
}

const (
	fName = iota
	fVersion
	fSize
	fZones
	fKibana
	fSubmit
	nFields
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func newCreateForm(c *common.Common, versions []string, zones int, act Actions) *createForm {
	mk := func(v, placeholder string) textinput.Model {
		ti := textinput.New()
		ti.Prompt = ""
		ti.Placeholder = placeholder
		ti.SetValue(v)
		ti.CharLimit = 63
		ti.Width = 30
		return ti
	}
	f := &createForm{c: c, act: act, versions: versions, maxZones: max(1, min(3, zones)),
		name: mk("", "my-deployment"), size: mk("1g", "1g"), kibana: mk("0", "0 or 512m")}
	f.version = len(versions) - 1
	for i, v := range versions {
		if v == newest(versions) {
			f.version = i
		}
	}
	f.zones = 1
	f.name.Focus()
	return f
}

func (f *createForm) setFocus(i int) {
	f.focus = (i + nFields) % nFields
	for j, ti := range []*textinput.Model{&f.name, &f.size, &f.kibana} {
		_ = j
		ti.Blur()
	}
	switch f.focus {
	case fName:
		f.name.Focus()
	case fSize:
		f.size.Focus()
	case fKibana:
		f.kibana.Focus()
	}
}

// request validates the fields into a request.
func (f *createForm) request() (CreateRequest, error) {
	name := strings.TrimSpace(f.name.Value())
	if !nameRE.MatchString(name) {
		return CreateRequest{}, errors.New("name: lowercase letters, digits and dashes, 1-63 characters")
	}
	sz, err := engine.ParseSize(f.size.Value())
	if err != nil {
		return CreateRequest{}, fmt.Errorf("size: %w", err)
	}
	if sz < 256 {
		return CreateRequest{}, errors.New("size: at least 256m")
	}
	kb := 0
	if v := strings.TrimSpace(f.kibana.Value()); v != "" && v != "0" {
		if kb, err = engine.ParseSize(v); err != nil {
			return CreateRequest{}, fmt.Errorf("kibana size: %w", err)
		}
	}
	ver := ""
	if len(f.versions) > 0 {
		ver = f.versions[f.version]
	}
	return CreateRequest{Name: name, Version: ver, SizeMB: sz, Zones: f.zones, KibanaMB: kb}, nil
}

func (f *createForm) Update(msg tea.Msg) (tea.Cmd, bool) {
	if f.busy {
		return nil, false
	}
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return f.updateInput(msg), true
	}
	if key.Matches(km, f.c.Keys.Copy) {
		if req, err := f.request(); err == nil {
			return copyCmd(createCLI(req)), true
		}
		f.err = "fill the form first: the CLI command copies what it asks for"
		return nil, true
	}
	switch km.String() {
	case "esc":
		return func() tea.Msg { return closeDialog{} }, true
	case "tab", "down":
		f.setFocus(f.focus + 1)
		return nil, true
	case "shift+tab", "up":
		f.setFocus(f.focus - 1)
		return nil, true
	case "enter":
		if f.focus != fSubmit {
			f.setFocus(f.focus + 1)
			return nil, true
		}
		req, err := f.request()
		if err != nil {
			f.err = err.Error()
			return nil, true
		}
		f.busy, f.err = true, ""
		act := f.act
		return run(f.c, func(ctx context.Context) actionDone {
			c, err := act.CreateDeployment(ctx, req)
			done := actionDone{What: "create " + req.Name, DeploymentID: c.ID, Err: err}
			if c.Password != "" {
				done.Credentials = &c
			}
			return done
		}), true
	case "left", "h":
		if f.focus == fVersion || f.focus == fZones {
			f.step(-1)
			return nil, true
		}
	case "right", "l", " ":
		if f.focus == fVersion || f.focus == fZones {
			f.step(1)
			return nil, true
		}
	}
	f.err = ""
	return f.updateInput(msg), true
}

func (f *createForm) step(d int) {
	switch f.focus {
	case fVersion:
		if n := len(f.versions); n > 0 {
			f.version = (f.version + d + n) % n
		}
	case fZones:
		f.zones = (f.zones-1+d+f.maxZones)%f.maxZones + 1
	}
}

func (f *createForm) updateInput(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	switch f.focus {
	case fName:
		f.name, cmd = f.name.Update(msg)
	case fSize:
		f.size, cmd = f.size.Update(msg)
	case fKibana:
		f.kibana, cmd = f.kibana.Update(msg)
	}
	return cmd
}

func (f *createForm) View(w int) string {
	st := f.c.Styles
	bw := min(w-2, 64)
	label := func(i int, s string) string {
		if f.focus == i {
			return st.Focused.Render("▸ " + common.Pad(s, 12))
		}
		return st.Label.Render("  " + common.Pad(s, 12))
	}
	choice := func(i int, s string) string {
		if f.focus == i {
			return st.Focused.Render("‹ " + s + " ›")
		}
		return "  " + s
	}
	ver := ""
	if len(f.versions) > 0 {
		ver = f.versions[f.version]
	}
	lines := []string{
		st.Title.Render("Create deployment"),
		"",
		label(fName, "Name") + f.name.View(),
		label(fVersion, "Version") + choice(fVersion, ver),
		label(fSize, "Size") + f.size.View() + st.Muted.Render("  per instance"),
		label(fZones, "Zones") + choice(fZones, itoa(f.zones)) + st.Muted.Render("  of "+itoa(f.maxZones)),
		label(fKibana, "Kibana size") + f.kibana.View() + st.Muted.Render("  0 = none"),
		"",
	}
	btn := "[ Create ]"
	if f.focus == fSubmit {
		lines = append(lines, "  "+st.TabActive.Render(btn))
	} else {
		lines = append(lines, "  "+st.Muted.Render(btn))
	}
	if req, err := f.request(); err == nil {
		lines = append(lines, "", strings.TrimRight(cliLine(f.c, createCLI(req), bw-4), "\n"))
	}
	switch {
	case f.busy:
		lines = append(lines, "", st.Muted.Render("creating…"))
	case f.err != "":
		lines = append(lines, "", st.Error.Render(f.err))
	}
	return "\n" + st.Box.Width(bw-2).Padding(0, 1).Render(strings.Join(lines, "\n"))
}

func (f *createForm) Help() []key.Binding {
	k := f.c.Keys
	return []key.Binding{k.NextField, k.PrevField,
		key.NewBinding(key.WithKeys("left", "right"), key.WithHelp("←/→", "choose")),
		key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "next/create")),
		key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")), k.Copy}
}

// createCLI is the create request as a CLI command.
func createCLI(r CreateRequest) string {
	args := []string{"deployment", "create", "--name", r.Name}
	if r.Version != "" {
		args = append(args, "--version", r.Version)
	}
	args = append(args, "--size", engine.FormatSize(r.SizeMB), "--zones", itoa(r.Zones))
	if r.KibanaMB > 0 {
		args = append(args, "--kibana-size", engine.FormatSize(r.KibanaMB))
	}
	return cli(args...)
}
