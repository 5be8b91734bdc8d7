// Package themes holds the console's lipgloss themes: dark, light,
// high-contrast and no-color. A theme is data (colours) turned into
// styles once; screens never pick colours themselves.
//
// It owns only styling. It must not import the engine or any screen:
// the dependency runs tui → themes.
package themes
