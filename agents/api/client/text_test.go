package client

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/service"
)

// TestWriteStepColumns: a step name as long as the longest the
// constructor writes never runs into its status.
func TestWriteStepColumns(t *testing.T) {
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

// TestVacateText: a vacate says per deployment what happened, and fails
// when any deployment stayed.
func TestVacateText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		res     service.VacateResult
		text    []string
		failure string
	}{
		{"empty", service.VacateResult{Allocator: "a1"}, []string{"allocator a1 runs no instances: nothing to move"}, ""},
		{"all moved", service.VacateResult{Allocator: "a1", Moves: []service.MoveResult{{DeploymentID: "d1", PlanID: "p1"}}},
			[]string{"deployment d1: move plan p1 written"}, ""},
		{"one stayed", service.VacateResult{Allocator: "a1", Moves: []service.MoveResult{{DeploymentID: "d1", PlanID: "p1"}, {DeploymentID: "d2", ErrorMessage: "no room"}}},
			[]string{"deployment d1: move plan p1 written", "deployment d2: not moved: no room"}, "1 deployment(s) could not be moved off a1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			WriteVacate(&b, tc.res)
			if got := strings.Split(strings.TrimSpace(b.String()), "\n"); !slices.Equal(got, tc.text) {
				t.Errorf("text %q, want %q", got, tc.text)
			}
			err := VacateFailures(tc.res)
			if (err == nil) != (tc.failure == "") || (err != nil && err.Error() != tc.failure) {
				t.Errorf("failure %v, want %q", err, tc.failure)
			}
		})
	}
}
