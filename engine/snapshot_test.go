package engine

import (
	"slices"
	"testing"
	"time"
)

func TestRetain(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	rec := func(name, status string, ago time.Duration) SnapshotRecord {
		end := now.Add(-ago)
		return SnapshotRecord{Name: name, Status: status, CreatedAt: end, EndedAt: &end}
	}
	h := time.Hour
	cases := []struct {
		name     string
		recs     []SnapshotRecord
		last     int
		days     int
		wantDrop []string
	}{
		{"nothing", nil, 2, 7, nil},
		{"under the count", []SnapshotRecord{rec("a", SnapshotSuccess, h), rec("b", SnapshotSuccess, 2*h)}, 2, 7, nil},
		{"same day: keep last 2, the day keeps the newest",
			[]SnapshotRecord{rec("a", SnapshotSuccess, 4*h), rec("b", SnapshotSuccess, 3*h), rec("c", SnapshotSuccess, 2*h), rec("d", SnapshotSuccess, h)},
			2, 7, []string{"a", "b"}},
		{"one per day for the last days",
			[]SnapshotRecord{rec("d3a", SnapshotSuccess, 72*h+h), rec("d3b", SnapshotSuccess, 72*h), rec("d1", SnapshotSuccess, 24*h), rec("d0", SnapshotSuccess, h)},
			1, 7, []string{"d3a"}},
		{"older than the daily window",
			[]SnapshotRecord{rec("old", SnapshotSuccess, 10*24*h), rec("new", SnapshotSuccess, h)},
			1, 7, []string{"old"}},
		{"failed older than every kept one goes, newer failed stays",
			[]SnapshotRecord{rec("f1", SnapshotFailed, 3*h), rec("ok", SnapshotSuccess, 2*h), rec("f2", SnapshotFailed, h), rec("run", SnapshotInProgress, 0)},
			1, 1, []string{"f1"}},
		{"only failures: kept (nothing to fall back to)",
			[]SnapshotRecord{rec("f1", SnapshotFailed, 3*h), rec("f2", SnapshotFailed, h)}, 1, 1, nil},
		{"defaults", []SnapshotRecord{rec("a", SnapshotSuccess, h)}, 0, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Retain(c.recs, c.last, c.days, now)
			if !slices.Equal(got, c.wantDrop) {
				t.Fatalf("drop %v, want %v", got, c.wantDrop)
			}
		})
	}
}

func TestSnapshotNames(t *testing.T) {
	n := SnapshotName(time.Date(2026, 12, 2, 10, 30, 0, 123e6, time.UTC))
	if n != "snap-20261202t103000.123z" || !ValidSnapshotName(n) {
		t.Fatalf("SnapshotName = %q", n)
	}
	for _, c := range []struct {
		s  string
		ok bool
	}{{"nightly-1", true}, {"Upper", false}, {"", false}, {"a/b", false}, {"a,b", false}, {"_x", false}} {
		if ValidSnapshotName(c.s) != c.ok {
			t.Errorf("ValidSnapshotName(%q) = %v", c.s, !c.ok)
		}
	}
	if _, err := ParseSnapshotInterval("10ms"); err == nil {
		t.Error("10ms accepted")
	}
	if d, err := ParseSnapshotInterval("45m"); err != nil || d != 45*time.Minute {
		t.Errorf("45m = %v, %v", d, err)
	}
}
