package keymap

import "github.com/charmbracelet/bubbles/key"

// KeyMap holds every binding of the console.
type KeyMap struct {
	Up, Down, PageUp, PageDown, Top, Bottom              key.Binding
	NextTab, PrevTab, Tab1, Tab2, Tab3, Tab4, Tab5, Tab6 key.Binding
	Filter, Sort, Reverse, Enter, Back, Help, Quit       key.Binding

	// Actions.
	Create, Resize, Upgrade, Restart, Delete, Cancel key.Binding
	Retry, Maintenance, Vacate, Logs, Follow, Rerun  key.Binding

	// Command opens the `:` command line; Copy copies the action of the
	// open confirmation as a CLI command (OSC 52).
	Command, Copy key.Binding

	// Forms.
	Submit, NextField, PrevField key.Binding
	Yes, No                      key.Binding
}

// Default is the console's key map: arrows and vim keys.
func Default() KeyMap {
	b := key.NewBinding
	k, h := key.WithKeys, key.WithHelp
	return KeyMap{
		Up:       b(k("up", "k"), h("↑/k", "up")),
		Down:     b(k("down", "j"), h("↓/j", "down")),
		PageUp:   b(k("pgup", "ctrl+u"), h("pgup", "page up")),
		PageDown: b(k("pgdown", "ctrl+d"), h("pgdn", "page down")),
		Top:      b(k("home", "g"), h("g", "top")),
		Bottom:   b(k("end", "G"), h("G", "bottom")),
		NextTab:  b(k("tab", "l", "right"), h("tab", "next screen")),
		PrevTab:  b(k("shift+tab", "h", "left"), h("shift+tab", "prev screen")),
		Tab1:     b(k("1"), h("1-6", "screen")),
		Tab2:     b(k("2")),
		Tab3:     b(k("3")),
		Tab4:     b(k("4")),
		Tab5:     b(k("5")),
		Tab6:     b(k("6")),
		Filter:   b(k("/"), h("/", "filter")),
		Sort:     b(k("s"), h("s", "sort")),
		Reverse:  b(k("S"), h("S", "reverse sort")),
		Enter:    b(k("enter"), h("enter", "detail")),
		Back:     b(k("esc"), h("esc", "back")),
		Help:     b(k("?"), h("?", "help")),
		Quit:     b(k("q", "ctrl+c"), h("q", "quit")),

		Create:      b(k("c"), h("c", "create deployment")),
		Resize:      b(k("r"), h("r", "resize")),
		Upgrade:     b(k("u"), h("u", "upgrade")),
		Restart:     b(k("R"), h("R", "restart")),
		Delete:      b(k("D"), h("D", "delete")),
		Cancel:      b(k("x"), h("x", "cancel plan")),
		Retry:       b(k("t"), h("t", "retry failed plan")),
		Maintenance: b(k("m"), h("m", "maintenance on/off")),
		Vacate:      b(k("v"), h("v", "vacate")),
		Logs:        b(k("l"), h("l", "instance logs")),
		Follow:      b(k("f"), h("f", "follow on/off")),
		Rerun:       b(k("r"), h("r", "run again")),

		Command: b(k(":"), h(":", "command")),
		Copy:    b(k("ctrl+y"), h("ctrl+y", "copy as CLI")),

		Submit:    b(k("enter"), h("enter", "submit")),
		NextField: b(k("tab", "down"), h("tab", "next field")),
		PrevField: b(k("shift+tab", "up"), h("shift+tab", "prev field")),
		Yes:       b(k("y"), h("y", "confirm")),
		No:        b(k("n", "esc"), h("n/esc", "cancel")),
	}
}

// Navigation is the bindings every table screen shares.
func (k KeyMap) Navigation() []key.Binding {
	return []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}
}

// Global is the bindings valid on every screen.
func (k KeyMap) Global() []key.Binding {
	return []key.Binding{k.NextTab, k.PrevTab, k.Tab1, k.Help, k.Quit}
}
