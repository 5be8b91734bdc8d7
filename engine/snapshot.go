package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"
)

// Snapshot state in ZooKeeper (see docs/architecture.md, "Snapshots"):
//
//	/paddock/repositories/<name>           SnapshotRepository (admin rw, constructor r)
//	/paddock/repositories/<name>/secret    RepositorySecret   (admin rw, constructor r)
//	/paddock/snapshots/<deployment>        SnapshotPolicy     (admin, constructor rw)
//	/paddock/snapshots/<deployment>/<snap> SnapshotRecord     (admin, constructor rw)
//	/paddock/restores/<deployment>         RestoreRecord      (admin, constructor rw)
//
// They live outside /paddock/deployments so that the deployment caches
// (constructor, API, console) do not grow with every snapshot.
var (
	PathRepositories = Root + "/repositories"
	PathSnapshots    = Root + "/snapshots"
	PathRestores     = Root + "/restores"
)

// RepositoryPath returns /paddock/repositories/<name>.
func RepositoryPath(name string) string { return PathRepositories + "/" + name }

// RepositorySecretPath returns /paddock/repositories/<name>/secret.
func RepositorySecretPath(name string) string { return RepositoryPath(name) + "/secret" }

// SnapshotPolicyPath returns /paddock/snapshots/<deployment id>.
func SnapshotPolicyPath(dep string) string { return PathSnapshots + "/" + dep }

// SnapshotRecordPath returns /paddock/snapshots/<deployment id>/<snapshot>.
func SnapshotRecordPath(dep, snap string) string { return SnapshotPolicyPath(dep) + "/" + snap }

// RestorePath returns /paddock/restores/<deployment id>.
func RestorePath(dep string) string { return PathRestores + "/" + dep }

// Repository types.
const (
	RepositoryS3 = "s3"
	RepositoryFS = "fs"
)

// DefaultRepository is the name of the repository `paddock up`
// registers (its own object store) and deployments use unless told.
const DefaultRepository = "default"

// Defaults of the snapshot schedule (ECE's: every 30 minutes).
const (
	DefaultSnapshotInterval = 30 * time.Minute
	MinSnapshotInterval     = time.Second
	DefaultKeepLast         = 10
	DefaultKeepDailyDays    = 7
)

// SnapshotRepository is /paddock/repositories/<name>: where snapshots go.
// It holds no secret: the S3 keys are in RepositorySecret.
type SnapshotRepository struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// S3 settings (Type s3).
	Endpoint  string `json:"endpoint,omitempty"`
	Bucket    string `json:"bucket,omitempty"`
	Region    string `json:"region,omitempty"`
	PathStyle bool   `json:"path_style_access,omitempty"`
	// Path is, for Type fs, a directory every allocator host shares; the
	// nodes see it under their snapshot root.
	Path      string    `json:"path,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// RepositorySecret is /paddock/repositories/<name>/secret: the S3 keys,
// readable only by the admin and constructor roles. It is never logged,
// never in a metric, never returned by a read of the API.
type RepositorySecret struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
}

// SnapshotPolicy is /paddock/snapshots/<deployment id>: the schedule of
// a deployment's snapshots. Zero fields take the defaults.
type SnapshotPolicy struct {
	// Repository names the platform repository ("" = DefaultRepository).
	Repository string `json:"repository,omitempty"`
	// IntervalSeconds between scheduled snapshots (0 = 30 minutes).
	IntervalSeconds int `json:"interval_seconds,omitempty"`
	// Disabled stops scheduled snapshots (manual ones still run).
	Disabled bool `json:"disabled,omitempty"`
	// KeepLast successful snapshots are kept (0 = DefaultKeepLast), plus
	// the newest of each of the last KeepDailyDays days (0 = 7).
	KeepLast      int `json:"keep_last,omitempty"`
	KeepDailyDays int `json:"keep_daily_days,omitempty"`
}

// Interval is the policy's interval with its default.
func (p SnapshotPolicy) Interval() time.Duration {
	if p.IntervalSeconds <= 0 {
		return DefaultSnapshotInterval
	}
	return time.Duration(p.IntervalSeconds) * time.Second
}

// RepositoryName is the policy's repository with its default.
func (p SnapshotPolicy) RepositoryName() string {
	if p.Repository == "" {
		return DefaultRepository
	}
	return p.Repository
}

// Snapshot record statuses.
const (
	SnapshotRequested  = "requested"
	SnapshotInProgress = "in_progress"
	SnapshotSuccess    = "success"
	SnapshotFailed     = "failed"
)

// Snapshot triggers.
const (
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
)

// SnapshotRecord is /paddock/snapshots/<deployment id>/<snapshot>: one
// snapshot, requested (manual), running, or done. Its name sorts by time
// (SnapshotName).
type SnapshotRecord struct {
	Name       string     `json:"name"`
	Repository string     `json:"repository"`
	Trigger    string     `json:"trigger"`
	Status     string     `json:"status"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	DurationMS int64      `json:"duration_ms,omitempty"`
	// SizeBytes is the snapshot's total size; IncrementalBytes what this
	// snapshot uploaded (the rest was already in the repository).
	SizeBytes        int64  `json:"size_bytes,omitempty"`
	IncrementalBytes int64  `json:"incremental_bytes,omitempty"`
	Files            int    `json:"files,omitempty"`
	Indices          int    `json:"indices,omitempty"`
	Node             string `json:"node,omitempty"`
	Error            string `json:"error,omitempty"`
}

// Done reports whether the snapshot has ended (success or failure).
func (r SnapshotRecord) Done() bool {
	return r.Status == SnapshotSuccess || r.Status == SnapshotFailed
}

// snapshotNameRe: what a snapshot name may be (Elasticsearch's rules,
// narrowed: lowercase, no spaces, commas, wildcards or slashes).
var snapshotNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)

// ValidSnapshotName reports whether s may name a snapshot.
func ValidSnapshotName(s string) bool { return snapshotNameRe.MatchString(s) }

// SnapshotName names a snapshot taken at t: "snap-20261202t103000.123z",
// lowercase (Elasticsearch refuses uppercase) and sortable by time.
func SnapshotName(t time.Time) string {
	return "snap-" + lower(t.UTC().Format("20060102t150405.000z"))
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// ValidRepositoryName reports whether s may name a repository.
func ValidRepositoryName(s string) bool { return repoNameRe.MatchString(s) }

var repoNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// NodeRepositoryName is the name the platform registers a repository
// under on a deployment's nodes (beside the plans' found-snapshots).
func NodeRepositoryName(repo string) string { return "paddock-" + repo }

// Restore statuses.
const (
	RestoreRequested  = "requested"
	RestoreInProgress = "in_progress"
	RestoreSuccess    = "success"
	RestoreFailed     = "failed"
)

// RestoreRecord is /paddock/restores/<deployment id>: the deployment's
// latest restore, asked by an admin (restore, create --restore-from) or
// by the constructor (a lost deployment re-created from a snapshot).
type RestoreRecord struct {
	ID string `json:"id"`
	// SourceDeployment and Snapshot name what is restored ("" snapshot:
	// the source's latest successful one, chosen when the restore runs).
	SourceDeployment string `json:"source_deployment"`
	Snapshot         string `json:"snapshot,omitempty"`
	Repository       string `json:"repository,omitempty"`
	// Indices restricts the restore (Elasticsearch's comma-separated
	// list with wildcards; "" = all).
	Indices           string     `json:"indices,omitempty"`
	RenamePattern     string     `json:"rename_pattern,omitempty"`
	RenameReplacement string     `json:"rename_replacement,omitempty"`
	Status            string     `json:"status"`
	Reason            string     `json:"reason,omitempty"`
	CreatedAt         time.Time  `json:"created_at"`
	CreatedBy         string     `json:"created_by,omitempty"`
	StartedAt         *time.Time `json:"started_at,omitempty"`
	EndedAt           *time.Time `json:"ended_at,omitempty"`
	Message           string     `json:"message,omitempty"`
	Error             string     `json:"error,omitempty"`
}

// Done reports whether the restore has ended.
func (r RestoreRecord) Done() bool {
	return r.Status == RestoreSuccess || r.Status == RestoreFailed
}

// Retain decides which successful snapshots a policy keeps at now:
// the newest keepLast, and the newest of each UTC day of the last
// keepDays days. It returns the names to delete (successful snapshots
// only, oldest first); failed records go when older than the oldest kept
// one. Records must carry EndedAt or CreatedAt.
func Retain(recs []SnapshotRecord, keepLast, keepDays int, now time.Time) []string {
	if keepLast <= 0 {
		keepLast = DefaultKeepLast
	}
	if keepDays <= 0 {
		keepDays = DefaultKeepDailyDays
	}
	var good []SnapshotRecord
	for _, r := range recs {
		if r.Status == SnapshotSuccess {
			good = append(good, r)
		}
	}
	when := func(r SnapshotRecord) time.Time {
		if r.EndedAt != nil {
			return *r.EndedAt
		}
		return r.CreatedAt
	}
	sort.Slice(good, func(i, j int) bool { return when(good[i]).After(when(good[j])) })
	keep := map[string]bool{}
	for i, r := range good {
		if i < keepLast {
			keep[r.Name] = true
		}
	}
	cutoff := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -(keepDays - 1))
	days := map[string]bool{}
	for _, r := range good {
		t := when(r).UTC()
		if t.Before(cutoff) {
			continue
		}
		d := t.Format("2006-01-02")
		if !days[d] {
			days[d] = true
			keep[r.Name] = true
		}
	}
	var oldestKept time.Time
	for _, r := range good {
		if keep[r.Name] {
			oldestKept = when(r)
		}
	}
	var drop []SnapshotRecord
	for _, r := range recs {
		switch {
		case r.Status == SnapshotSuccess && !keep[r.Name]:
			drop = append(drop, r)
		case r.Status == SnapshotFailed && !oldestKept.IsZero() && when(r).Before(oldestKept):
			drop = append(drop, r)
		}
	}
	sort.Slice(drop, func(i, j int) bool { return when(drop[i]).Before(when(drop[j])) })
	out := make([]string, len(drop))
	for i, r := range drop {
		out[i] = r.Name
	}
	return out
}

// ParseSnapshotInterval parses an interval flag ("30m", "1h", "45s").
func ParseSnapshotInterval(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < MinSnapshotInterval {
		return 0, fmt.Errorf("invalid snapshot interval %q: give a duration of at least 1s, such as 30m or 1h", s)
	}
	return d, nil
}

// SnapshotPolicy reads a deployment's snapshot policy; an empty znode is
// the default policy. A missing one is ErrNotFound.
func (s *Store) SnapshotPolicy(ctx context.Context, dep string) (SnapshotPolicy, Version, error) {
	var p SnapshotPolicy
	b, st, err := s.Get(ctx, SnapshotPolicyPath(dep))
	if err != nil {
		return p, 0, err
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &p); err != nil {
			return p, 0, fmt.Errorf("decode %s: %w (the record is malformed: fix or delete it)", SnapshotPolicyPath(dep), err)
		}
	}
	return p, st.Version, nil
}

// EnsureSnapshotPolicy creates the deployment's policy znode (default
// policy) when missing, so that records can be created under it.
func (s *Store) EnsureSnapshotPolicy(ctx context.Context, dep string) error {
	if err := s.Create(ctx, SnapshotPolicyPath(dep), SnapshotPolicy{}); err != nil && !errors.Is(err, ErrExists) {
		return err
	}
	return nil
}
