package client

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock/agents/api"
	"paddock/engine"
	"paddock/engine/service"
)

func TestSnapshotsText(t *testing.T) {
	t.Parallel()
	end := time.Now().Add(-5 * time.Minute)
	ok := engine.SnapshotRecord{Name: "snap-2", Trigger: "schedule", Status: engine.SnapshotSuccess, CreatedAt: end, EndedAt: &end, DurationMS: 1500, SizeBytes: 3 << 20, IncrementalBytes: 2 << 10}
	bad := engine.SnapshotRecord{Name: "snap-3", Trigger: "manual", Status: engine.SnapshotFailed, CreatedAt: end, EndedAt: &end, Error: "connection refused"}
	for _, tc := range []struct {
		name string
		v    service.SnapshotsView
		want []string
	}{
		{"defaults, none yet", service.SnapshotsView{Repository: "default", Interval: "30m0s"},
			[]string{"repository default, scheduled every 30m0s, keep last 10 and one a day for 7 days", "no good snapshot yet"}},
		{"good and failed, overdue", service.SnapshotsView{Repository: "offsite", Interval: "1h0m0s", Policy: engine.SnapshotPolicy{KeepLast: 3, KeepDailyDays: 2},
			Snapshots: []engine.SnapshotRecord{bad, ok}, LastSuccess: &ok, Overdue: true},
			[]string{"keep last 3 and one a day for 2 days", "last good snapshot snap-2, 5m0s ago", "ALERT", "snap-3  manual", "connection refused", "3.0MB", "2.0KB", "1.5s"}},
		{"disabled", service.SnapshotsView{Repository: "default", Interval: "30m0s", Policy: engine.SnapshotPolicy{Disabled: true}},
			[]string{"scheduled off (manual snapshots only)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			WriteSnapshots(&b, tc.v)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

func TestRepositoryFromFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, typ, keyFile, err string
		want                    api.RepositoryBody
	}{
		{"s3", "s3", key, "", api.RepositoryBody{Type: "s3", Settings: service.RepositorySettings{Endpoint: "http://h:1", Bucket: "b", AccessKey: "AK", SecretKey: "s3cret"}}},
		{"s3 without a key file", "s3", "", "--secret-key-file is required", api.RepositoryBody{}},
		{"s3 with a missing key file", "s3", filepath.Join(dir, "nope"), "read the secret key", api.RepositoryBody{}},
		{"fs", "fs", "", "", api.RepositoryBody{Type: "fs", Settings: service.RepositorySettings{Location: "/mnt/s"}}},
		{"unknown type", "gcs", "", "use s3", api.RepositoryBody{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := RepositoryFromFlags(tc.typ, "http://h:1", "b", "", "AK", tc.keyFile, "/mnt/s")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || b != tc.want {
				t.Fatalf("body = %+v, %v; want %+v", b, err, tc.want)
			}
		})
	}
}
