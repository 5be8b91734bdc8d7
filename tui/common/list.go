package common

import (
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

// List is a Table with a `/` filter and `s` sort, shared by the table
// screens. Rows are set whole from the snapshot; filter and sort apply
// on every set, keeping the cursor on the same key.
type List struct {
	C       *Common
	Table   Table
	all     []Row
	filter  textinput.Model
	editing bool
}

// NewList makes a list over columns, sorted by sortCol.
func NewList(c *Common, cols []Column, sortCol int) *List {
	ti := textinput.New()
	ti.Prompt = "/"
	ti.CharLimit = 64
	return &List{C: c, Table: Table{Columns: cols, SortCol: sortCol}, filter: ti}
}

// SetRows sets all rows (before filter).
func (l *List) SetRows(rows []Row) {
	l.all = rows
	l.apply()
}

// Filter is the current filter text.
func (l *List) Filter() string { return l.filter.Value() }

// SetFilter sets the filter text (the `:` command line's argument).
func (l *List) SetFilter(q string) {
	l.filter.SetValue(q)
	l.apply()
}

// Editing is true while the filter takes input.
func (l *List) Editing() bool { return l.editing }

// SetSize gives the list its box; one line is kept for the filter.
func (l *List) SetSize(w, h int) {
	l.Table.Width = w
	l.Table.Height = max(2, h-1)
	l.filter.Width = max(10, w-4)
}

func (l *List) apply() {
	q := strings.ToLower(strings.TrimSpace(l.filter.Value()))
	rows := make([]Row, 0, len(l.all))
	for _, r := range l.all {
		if q == "" || matches(r, q) {
			rows = append(rows, r)
		}
	}
	l.Table.SetRows(rows)
	l.Table.Sort()
}

func matches(r Row, q string) bool {
	if strings.Contains(strings.ToLower(r.Key), q) {
		return true
	}
	for _, c := range r.Cells {
		if strings.Contains(strings.ToLower(c), q) {
			return true
		}
	}
	return false
}

// Update handles navigation, filter and sort keys. It reports whether
// it used the message.
func (l *List) Update(msg tea.Msg) (tea.Cmd, bool) {
	k := l.C.Keys
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return nil, false
	}
	if l.editing {
		switch km.String() {
		case "enter":
			l.editing = false
			l.filter.Blur()
			return nil, true
		case "esc":
			l.editing = false
			l.filter.Blur()
			l.filter.SetValue("")
			l.apply()
			return nil, true
		}
		var cmd tea.Cmd
		l.filter, cmd = l.filter.Update(msg)
		l.apply()
		return cmd, true
	}
	switch {
	case key.Matches(km, k.Up):
		l.Table.Move(-1)
	case key.Matches(km, k.Down):
		l.Table.Move(1)
	case key.Matches(km, k.PageUp):
		l.Table.Move(-l.Table.Page())
	case key.Matches(km, k.PageDown):
		l.Table.Move(l.Table.Page())
	case key.Matches(km, k.Top):
		l.Table.Move(-len(l.Table.Rows))
	case key.Matches(km, k.Bottom):
		l.Table.Move(len(l.Table.Rows))
	case key.Matches(km, k.Filter):
		l.editing = true
		return l.filter.Focus(), true
	case key.Matches(km, k.Sort):
		l.Table.SortCol = (l.Table.SortCol + 1) % len(l.Table.Columns)
		l.Table.SortRev = false
		l.Table.Sort()
	case key.Matches(km, k.Reverse):
		l.Table.SortRev = !l.Table.SortRev
		l.Table.Sort()
	case km.String() == "esc" && l.filter.Value() != "":
		l.filter.SetValue("")
		l.apply()
	default:
		return nil, false
	}
	return nil, true
}

// View renders the filter line (when set) and the table.
func (l *List) View() string {
	st := l.C.Styles
	var top string
	switch {
	case l.editing:
		top = l.filter.View()
	case l.filter.Value() != "":
		top = st.Muted.Render("filter: ") + l.filter.Value() + st.Muted.Render("  (esc clears)")
	default:
		top = st.Muted.Render(itoa(len(l.Table.Rows)) + " rows · / filter · s sort")
	}
	return Truncate(top, l.Table.Width) + "\n" + l.Table.View(st, true)
}

func itoa(n int) string { return strconv.Itoa(n) }
