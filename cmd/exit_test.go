package cmd

import (
	"bytes"
	"strings"
	"testing"
)

// TestExitCodes: the exit code follows the error's type, never its
// text: cobra's errors before a command runs and invalid agent Configs
// are usage errors (2), what fails while running is 1.
func TestExitCodes(t *testing.T) {
	t.Setenv("PADDOCK_HOME", t.TempDir())
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown command", []string{"nope"}, ExitUsage, "unknown command"},
		{"unknown flag", []string{"status", "--nope"}, ExitUsage, "unknown flag"},
		{"bad flag value", []string{"status", "--timeout", "soon"}, ExitUsage, "invalid argument"},
		{"missing argument", []string{"deployment", "show"}, ExitUsage, "accepts 1 arg"},
		{"usage error of a verb", []string{"deployment", "resize", "x", "--api-key", "k"}, ExitUsage, "give --size and/or --zones"},
		{"invalid up config", []string{"up", "--headless", "--zones", "12"}, ExitUsage, "--zones 12: use 1 to 9"},
		{"scale without containers", []string{"up", "--scale", "proxy=2"}, ExitUsage, "--scale applies to --containers"},
		{"failure", []string{"deployment", "list", "--api-url", "http://127.0.0.1:1", "--api-key", "k", "--timeout", "1ms"}, ExitFailure, "paddock:"},
		{"ok", []string{"version"}, ExitOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Run(tc.args, strings.NewReader(""), &out, &errb)
			if code != tc.code || !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("paddock %v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errb.String(), tc.code, tc.stderr)
			}
		})
	}
}
