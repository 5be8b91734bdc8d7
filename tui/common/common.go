package common

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"paddock/themes"
	"paddock/tui/keymap"
)

// Common is handed to every screen: wired once, no globals.
type Common struct {
	Ctx    context.Context
	Width  int
	Height int
	Styles themes.Styles
	Keys   keymap.KeyMap
	// Now is the clock (fixed in golden tests).
	Now func() time.Time
}

// ErrorMsg carries an error to the status line.
type ErrorMsg struct{ Err error }

// FlashMsg carries an informational message to the status line.
type FlashMsg struct{ Text string }

// Screen is one tab of the console.
type Screen interface {
	Title() string
	SetSize(w, h int)
	// HandleKey handles a key and reports whether it used it (unused
	// keys fall through to the frame: h/l switch screens).
	HandleKey(msg tea.KeyMsg) (tea.Cmd, bool)
	// Update handles every other message.
	Update(msg tea.Msg) tea.Cmd
	View() string
	ShortHelp() []key.Binding
	FullHelp() [][]key.Binding
	// Capturing is true while the screen takes text input (filter):
	// global keys (q, tab, numbers) are then typed, not acted on.
	Capturing() bool
}

// Truncate cuts s (which may carry ANSI styles) to w cells with an
// ellipsis, never wrapping.
func Truncate(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if lipgloss.Width(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// Pad truncates or right-pads s to exactly w cells.
func Pad(s string, w int) string {
	s = Truncate(s, w)
	if n := lipgloss.Width(s); n < w {
		s += strings.Repeat(" ", w-n)
	}
	return s
}

// PadLeft truncates or left-pads s to exactly w cells.
func PadLeft(s string, w int) string {
	s = Truncate(s, w)
	if n := lipgloss.Width(s); n < w {
		s = strings.Repeat(" ", w-n) + s
	}
	return s
}

// FitLines truncates every line to w and keeps at most h lines, padding
// with empty lines to exactly h.
func FitLines(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		lines[i] = Truncate(l, w)
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

// Bar draws a used/total bar of width w.
func Bar(st themes.Styles, used, total, w int) string {
	if w <= 0 {
		return ""
	}
	filled := 0
	if total > 0 {
		filled = int(math.Round(float64(used) / float64(total) * float64(w)))
	}
	filled = max(0, min(w, filled))
	if st.NoColor {
		return "[" + strings.Repeat("#", filled) + strings.Repeat(".", w-filled) + "]"
	}
	return st.BarUsed.Render(strings.Repeat("█", filled)) + st.BarFree.Render(strings.Repeat("░", w-filled))
}

// BarWidth is the cells Bar takes for w (brackets in no-color).
func BarWidth(st themes.Styles, w int) int {
	if st.NoColor {
		return w + 2
	}
	return w
}

// Age renders a duration the way operators read it: 4s, 3m12s, 2h5m, 3d.
func Age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// Percent renders used/total as a percentage.
func Percent(used, total int) string {
	if total <= 0 {
		return "-"
	}
	return strconv.Itoa(int(math.Round(float64(used)*100/float64(total)))) + "%"
}

// ShortID shortens a 32-hex deployment id for tables.
func ShortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// Column of a Table.
type Column struct {
	Title string
	// Width is the fixed width, or the minimum width when Flex.
	Width int
	Flex  bool
	Right bool
}

// Row is one table row: its key (id) and cells.
type Row struct {
	Key   string
	Cells []string
	// Style colours one cell (index, style); -1 for none.
	StyleCol int
	Style    lipgloss.Style
}

// Table renders rows inside a fixed width and height, with a cursor
// and a scrolling window: only visible rows are rendered, so 5,000 rows
// cost what 20 do.
type Table struct {
	Columns []Column
	Rows    []Row
	Cursor  int
	offset  int
	Width   int
	Height  int
	SortCol int
	SortRev bool
}

// widths gives each column its width for the table width.
func (t *Table) widths() []int {
	ws := make([]int, len(t.Columns))
	fixed, flex := 0, 0
	for i, c := range t.Columns {
		ws[i] = c.Width
		fixed += c.Width
		if c.Flex {
			flex++
		}
	}
	gaps := len(t.Columns) - 1
	spare := t.Width - fixed - gaps - 1 // one cell for the cursor mark
	if flex > 0 && spare > 0 {
		per := spare / flex
		extra := spare % flex
		for i, c := range t.Columns {
			if c.Flex {
				ws[i] += per
				if extra > 0 {
					ws[i]++
					extra--
				}
			}
		}
	}
	// Too narrow: shrink flex columns then the last columns, never wrap.
	total := gaps + 1
	for _, w := range ws {
		total += w
	}
	for i := len(ws) - 1; total > t.Width && i >= 0; i-- {
		cut := min(ws[i]-1, total-t.Width)
		if cut > 0 {
			ws[i] -= cut
			total -= cut
		}
	}
	return ws
}

// SetRows replaces the rows, keeping the cursor on the same key.
func (t *Table) SetRows(rows []Row) {
	key := t.SelectedKey()
	t.Rows = rows
	if key != "" {
		for i, r := range rows {
			if r.Key == key {
				t.Cursor = i
				t.clamp()
				return
			}
		}
	}
	t.clamp()
}

// SelectedKey is the key of the row under the cursor ("" if none).
func (t *Table) SelectedKey() string {
	if t.Cursor >= 0 && t.Cursor < len(t.Rows) {
		return t.Rows[t.Cursor].Key
	}
	return ""
}

// Select puts the cursor on the row with key, if shown.
func (t *Table) Select(key string) bool {
	for i, r := range t.Rows {
		if r.Key == key {
			t.Cursor = i
			t.clamp()
			return true
		}
	}
	return false
}

// Move moves the cursor by n rows.
func (t *Table) Move(n int) {
	t.Cursor += n
	t.clamp()
}

// Page is the number of body rows visible.
func (t *Table) Page() int { return max(1, t.Height-1) }

func (t *Table) clamp() {
	if t.Cursor >= len(t.Rows) {
		t.Cursor = len(t.Rows) - 1
	}
	if t.Cursor < 0 {
		t.Cursor = 0
	}
	page := t.Page()
	if t.Cursor < t.offset {
		t.offset = t.Cursor
	}
	if t.Cursor >= t.offset+page {
		t.offset = t.Cursor - page + 1
	}
	if t.offset > max(0, len(t.Rows)-page) {
		t.offset = max(0, len(t.Rows)-page)
	}
	if t.offset < 0 {
		t.offset = 0
	}
}

// View renders the header and the visible rows (Height lines at most).
func (t *Table) View(st themes.Styles, focused bool) string {
	t.clamp()
	ws := t.widths()
	var b strings.Builder
	cells := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		title := c.Title
		if i == t.SortCol {
			if t.SortRev {
				title += "↓"
			} else {
				title += "↑"
			}
		}
		if c.Right {
			cells[i] = PadLeft(title, ws[i])
		} else {
			cells[i] = Pad(title, ws[i])
		}
	}
	b.WriteString(st.Header.Render(" " + strings.Join(cells, " ")))
	page := t.Page()
	end := min(len(t.Rows), t.offset+page)
	for ri := t.offset; ri < end; ri++ {
		r := t.Rows[ri]
		sel := focused && ri == t.Cursor
		for i := range t.Columns {
			v := ""
			if i < len(r.Cells) {
				v = r.Cells[i]
			}
			if t.Columns[i].Right {
				v = PadLeft(v, ws[i])
			} else {
				v = Pad(v, ws[i])
			}
			if !sel && i == r.StyleCol {
				v = r.Style.Render(v)
			}
			cells[i] = v
		}
		b.WriteByte('\n')
		line := strings.Join(cells, " ")
		if sel {
			b.WriteString(st.Selected.Render(">" + line))
		} else {
			b.WriteString(" " + line)
		}
	}
	if len(t.Rows) == 0 {
		b.WriteString("\n" + st.Muted.Render(" (none)"))
	}
	return b.String()
}

// Sort orders rows by the sort column: numbers and sizes by value,
// the rest as text; ties by key.
func (t *Table) Sort() {
	c := t.SortCol
	key := t.SelectedKey()
	sort.SliceStable(t.Rows, func(i, j int) bool {
		a, b := cell(t.Rows[i], c), cell(t.Rows[j], c)
		less, eq := compare(a, b)
		if eq {
			return t.Rows[i].Key < t.Rows[j].Key
		}
		if t.SortRev {
			return !less
		}
		return less
	})
	if key != "" {
		for i, r := range t.Rows {
			if r.Key == key {
				t.Cursor = i
			}
		}
	}
	t.clamp()
}

func cell(r Row, c int) string {
	if c >= 0 && c < len(r.Cells) {
		return r.Cells[c]
	}
	return ""
}

// compare orders two cells: numeric when both start with a number
// (sizes 512m < 4g, percentages), else text.
func compare(a, b string) (less, equal bool) {
	fa, oka := numeric(a)
	fb, okb := numeric(b)
	if oka && okb {
		return fa < fb, fa == fb
	}
	return strings.ToLower(a) < strings.ToLower(b), strings.EqualFold(a, b)
}

func numeric(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	if i == 0 {
		return 0, false
	}
	f, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, false
	}
	switch strings.TrimSpace(strings.SplitN(s[i:], "/", 2)[0]) {
	case "g":
		f *= 1024
	case "t":
		f *= 1024 * 1024
	}
	return f, true
}
