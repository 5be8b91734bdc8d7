package themes

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/charmbracelet/lipgloss"
)

// Palette is the data of a theme: every colour the console uses.
// An empty colour means "terminal default".
type Palette struct {
	Name      string
	Text      string
	Muted     string
	Accent    string
	AccentFg  string
	Border    string
	Good      string
	Warn      string
	Bad       string
	Info      string
	BarUsed   string
	BarFree   string
	Selection string
	SelectFg  string
	// Bold marks themes that rely on weight rather than hue.
	Bold bool
}

// Styles are the lipgloss styles built from a palette.
type Styles struct {
	Name      string
	NoColor   bool
	App       lipgloss.Style
	Title     lipgloss.Style
	Tab       lipgloss.Style
	TabActive lipgloss.Style
	Header    lipgloss.Style
	Row       lipgloss.Style
	Selected  lipgloss.Style
	Muted     lipgloss.Style
	Good      lipgloss.Style
	Warn      lipgloss.Style
	Bad       lipgloss.Style
	Info      lipgloss.Style
	Accent    lipgloss.Style
	Box       lipgloss.Style
	BarUsed   lipgloss.Style
	BarFree   lipgloss.Style
	StatusBar lipgloss.Style
	Error     lipgloss.Style
	Label     lipgloss.Style
	Input     lipgloss.Style
	Focused   lipgloss.Style
}

var palettes = map[string]Palette{
	"dark": {
		Name: "dark", Text: "252", Muted: "244", Accent: "39", AccentFg: "16", Border: "240",
		Good: "42", Warn: "214", Bad: "196", Info: "75", BarUsed: "39", BarFree: "238",
		Selection: "24", SelectFg: "255",
	},
	"light": {
		Name: "light", Text: "235", Muted: "243", Accent: "25", AccentFg: "231", Border: "250",
		Good: "28", Warn: "130", Bad: "160", Info: "25", BarUsed: "25", BarFree: "252",
		Selection: "153", SelectFg: "16",
	},
	"high-contrast": {
		Name: "high-contrast", Text: "15", Muted: "15", Accent: "11", AccentFg: "0", Border: "15",
		Good: "10", Warn: "11", Bad: "9", Info: "14", BarUsed: "15", BarFree: "8",
		Selection: "15", SelectFg: "0", Bold: true,
	},
	"no-color": {Name: "no-color"},
}

// Names lists the themes, sorted.
func Names() []string {
	out := make([]string, 0, len(palettes))
	for n := range palettes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// NoColorRequested reports whether the NO_COLOR convention asks for no
// colour (any non-empty value, https://no-color.org).
func NoColorRequested() bool { return os.Getenv("NO_COLOR") != "" }

// Resolve picks the theme by name ("" means dark); NO_COLOR wins over
// any name.
func Resolve(name string) (Styles, error) {
	if NoColorRequested() {
		return Build(palettes["no-color"]), nil
	}
	if name == "" {
		name = "dark"
	}
	p, ok := palettes[strings.ToLower(name)]
	if !ok {
		return Styles{}, fmt.Errorf("unknown theme %q: use one of %s", name, strings.Join(Names(), ", "))
	}
	return Build(p), nil
}

// MustGet returns a named theme and panics on an unknown name (tests).
func MustGet(name string) Styles {
	p, ok := palettes[name]
	if !ok {
		panic("themes: unknown theme " + name)
	}
	return Build(p)
}

func fg(s lipgloss.Style, c string) lipgloss.Style {
	if c == "" {
		return s
	}
	return s.Foreground(lipgloss.Color(c))
}

func bg(s lipgloss.Style, c string) lipgloss.Style {
	if c == "" {
		return s
	}
	return s.Background(lipgloss.Color(c))
}

// Build turns a palette into styles. The no-color palette relies on
// reverse video and bold only, so selection stays visible.
func Build(p Palette) Styles {
	n := lipgloss.NewStyle()
	nc := p.Name == "no-color"
	s := Styles{Name: p.Name, NoColor: nc}
	s.App = fg(n, p.Text)
	s.Title = fg(n.Bold(true), p.Accent)
	s.Tab = fg(n.Padding(0, 1), p.Muted)
	s.TabActive = bg(fg(n.Padding(0, 1).Bold(true), p.AccentFg), p.Accent)
	s.Header = fg(n.Bold(true), p.Muted)
	s.Row = fg(n, p.Text)
	s.Selected = bg(fg(n, p.SelectFg), p.Selection)
	s.Muted = fg(n, p.Muted)
	s.Good = fg(n, p.Good)
	s.Warn = fg(n, p.Warn)
	s.Bad = fg(n.Bold(true), p.Bad)
	s.Info = fg(n, p.Info)
	s.Accent = fg(n, p.Accent)
	s.Box = n.Border(lipgloss.NormalBorder())
	if p.Border != "" {
		s.Box = s.Box.BorderForeground(lipgloss.Color(p.Border))
	}
	s.BarUsed = fg(n, p.BarUsed)
	s.BarFree = fg(n, p.BarFree)
	s.StatusBar = fg(n, p.Muted)
	s.Error = fg(n.Bold(true), p.Bad)
	s.Label = fg(n, p.Muted)
	s.Input = fg(n, p.Text)
	s.Focused = fg(n.Bold(true), p.Accent)
	if nc {
		s.TabActive = n.Padding(0, 1).Reverse(true)
		s.Selected = n.Reverse(true)
	}
	if p.Bold {
		s.Row = s.Row.Bold(true)
		s.Warn = s.Warn.Bold(true)
		s.Good = s.Good.Bold(true)
	}
	return s
}
