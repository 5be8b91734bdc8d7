package client

import (
	"bytes"
	"regexp"
	"testing"
	"time"

	"paddock/engine"
)

// TestPrintStepColumns: a step name as long as the longest the
// constructor writes never runs into its status.
func TestPrintStepColumns(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct{ name, step, status string }{
		{"short", "place", "success"},
		{"longest", "wait until running and healthy", "running"},
		{"longer than the column", "wait until running and healthy (i-0123456789)", "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			WriteStep(&b, engine.PlanStep{Name: tc.step, Status: tc.status, Started: at, Message: "m"})
			re := regexp.MustCompile(`^  \d\d:\d\d:\d\d  ` + regexp.QuoteMeta(tc.step) + ` {2,}` + tc.status + `  m\n$`)
			if !re.MatchString(b.String()) {
				t.Errorf("WriteStep = %q, want the name, two or more spaces, then %q", b.String(), tc.status)
			}
		})
	}
}
