// Package keymap is the console's one key map: every binding with its
// help text, shared by all screens and by the help view.
//
// It owns key bindings only; it must not import screens or the engine.
package keymap
