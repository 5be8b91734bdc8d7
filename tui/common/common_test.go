package common

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"

	"paddock/themes"
)

func TestCompare(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b        string
		less, equal bool
	}{
		{"512m", "4g", true, false},
		{"4g", "512m", false, false},
		{"1.5g", "1536m", false, true},
		{"38%", "100%", true, false},
		{"2/3", "10/3", true, false},
		{"alloc-a", "alloc-b", true, false},
		{"Zone", "zone", false, true},
		{"-", "1g", true, false},
	} {
		t.Run(tc.a+"_vs_"+tc.b, func(t *testing.T) {
			less, eq := compare(tc.a, tc.b)
			if less != tc.less || eq != tc.equal {
				t.Fatalf("compare(%q,%q) = %v,%v want %v,%v", tc.a, tc.b, less, eq, tc.less, tc.equal)
			}
		})
	}
}

func TestAge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"}, {4 * time.Second, "4s"}, {192 * time.Second, "3m12s"},
		{125 * time.Minute, "2h05m"}, {72 * time.Hour, "3d"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := Age(tc.d); got != tc.want {
				t.Fatalf("Age(%s) = %s, want %s", tc.d, got, tc.want)
			}
		})
	}
}

// TestTableNeverWraps: whatever the width, every rendered line fits.
func TestTableNeverWraps(t *testing.T) {
	t.Parallel()
	st := themes.MustGet("no-color")
	rows := []Row{
		{Key: "a", Cells: []string{"a-very-long-allocator-identifier", "zone-1", "maintenance", "1.5g"}},
		{Key: "b", Cells: []string{"b", "zone-2", "ok", "512m"}},
	}
	for _, w := range []int{20, 40, 80, 160} {
		t.Run(itoa(w), func(t *testing.T) {
			tb := Table{Columns: []Column{{Title: "ID", Width: 12, Flex: true}, {Title: "ZONE", Width: 8}, {Title: "STATE", Width: 11}, {Title: "USED", Width: 6, Right: true}},
				Rows: rows, Width: w, Height: 5}
			for i, l := range strings.Split(tb.View(st, true), "\n") {
				if lipgloss.Width(l) > w {
					t.Fatalf("line %d is %d wide at width %d: %q", i, lipgloss.Width(l), w, l)
				}
			}
		})
	}
}

func TestTableCursorFollowsKey(t *testing.T) {
	t.Parallel()
	tb := Table{Columns: []Column{{Title: "ID", Width: 5}}, Width: 20, Height: 3}
	tb.SetRows([]Row{{Key: "a", Cells: []string{"a"}}, {Key: "b", Cells: []string{"b"}}, {Key: "c", Cells: []string{"c"}}})
	tb.Move(2)
	if tb.SelectedKey() != "c" {
		t.Fatalf("selected %q", tb.SelectedKey())
	}
	// A new snapshot with a row inserted before: the cursor stays on c.
	tb.SetRows([]Row{{Key: "0", Cells: []string{"0"}}, {Key: "a"}, {Key: "b"}, {Key: "c"}})
	if tb.SelectedKey() != "c" {
		t.Fatalf("after update selected %q, want c", tb.SelectedKey())
	}
	// c disappears: the cursor stays in range.
	tb.SetRows([]Row{{Key: "a"}})
	if tb.SelectedKey() != "a" {
		t.Fatalf("after removal selected %q", tb.SelectedKey())
	}
	tb.SetRows(nil)
	if tb.SelectedKey() != "" {
		t.Fatalf("empty table selected %q", tb.SelectedKey())
	}
}

func TestBar(t *testing.T) {
	t.Parallel()
	st := themes.MustGet("no-color")
	for _, tc := range []struct {
		used, total, w int
		want           string
	}{
		{0, 0, 4, "[....]"}, {2, 4, 4, "[##..]"}, {9, 4, 4, "[####]"}, {1, 3, 3, "[#..]"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := Bar(st, tc.used, tc.total, tc.w); got != tc.want {
				t.Fatalf("Bar = %q, want %q", got, tc.want)
			}
		})
	}
}
