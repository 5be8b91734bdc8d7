package themes

import (
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name, theme, noColor, want, err string
	}{
		{name: "default is dark", theme: "", want: "dark"},
		{name: "light", theme: "light", want: "light"},
		{name: "case insensitive", theme: "High-Contrast", want: "high-contrast"},
		{name: "no-color by name", theme: "no-color", want: "no-color"},
		{name: "NO_COLOR wins", theme: "light", noColor: "1", want: "no-color"},
		{name: "unknown", theme: "neon", err: "unknown theme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("NO_COLOR", tc.noColor)
			s, err := Resolve(tc.theme)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != tc.want {
				t.Fatalf("theme = %s, want %s", s.Name, tc.want)
			}
			if (tc.want == "no-color") != s.NoColor {
				t.Fatalf("NoColor = %v for %s", s.NoColor, tc.want)
			}
		})
	}
}

func TestEveryThemeBuilds(t *testing.T) {
	for _, n := range Names() {
		t.Run(n, func(t *testing.T) {
			s := MustGet(n)
			if s.Name != n {
				t.Fatalf("name %s", s.Name)
			}
			if got := s.Selected.Render("x"); !strings.Contains(got, "x") {
				t.Fatalf("render lost text: %q", got)
			}
		})
	}
}
