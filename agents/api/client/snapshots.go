package client

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"paddock/agents/api"
	"paddock/engine"
	"paddock/engine/service"
)

const repoPath = "/platform/configuration/snapshots/repositories"

// ListRepositories lists the snapshot repositories (keys masked).
func (c *Client) ListRepositories(ctx context.Context) (api.RepositoryList, []byte, error) {
	return call[api.RepositoryList](ctx, c, "GET", repoPath, nil, nil)
}

// PutRepository creates or replaces repository name.
func (c *Client) PutRepository(ctx context.Context, name string, b api.RepositoryBody) (service.RepositoryView, []byte, error) {
	return call[service.RepositoryView](ctx, c, "PUT", repoPath+"/"+esc(name), b, nil)
}

// DeleteRepository removes repository name.
func (c *Client) DeleteRepository(ctx context.Context, name string) (map[string]any, []byte, error) {
	return call[map[string]any](ctx, c, "DELETE", repoPath+"/"+esc(name), nil, nil)
}

// ListSnapshots reads a deployment's snapshot policy and snapshots.
func (c *Client) ListSnapshots(ctx context.Context, id string) (service.SnapshotsView, []byte, error) {
	return call[service.SnapshotsView](ctx, c, "GET", "/deployments/"+esc(id)+"/snapshots", nil, nil)
}

// TakeSnapshot asks for a snapshot of deployment id now.
func (c *Client) TakeSnapshot(ctx context.Context, id string) (engine.SnapshotRecord, []byte, error) {
	return call[engine.SnapshotRecord](ctx, c, "POST", "/deployments/"+esc(id)+"/snapshots", nil, nil)
}

// GetSnapshot reads one snapshot record.
func (c *Client) GetSnapshot(ctx context.Context, id, snap string) (engine.SnapshotRecord, []byte, error) {
	return call[engine.SnapshotRecord](ctx, c, "GET", "/deployments/"+esc(id)+"/snapshots/"+esc(snap), nil, nil)
}

// Restore asks to restore snapshot snap ("_latest" for the newest good
// one) into deployment id.
func (c *Client) Restore(ctx context.Context, id, snap string, b api.RestoreBody) (engine.RestoreRecord, []byte, error) {
	if snap == "" {
		snap = "_latest"
	}
	return call[engine.RestoreRecord](ctx, c, "POST", "/deployments/"+esc(id)+"/snapshots/"+esc(snap)+"/_restore", b, nil)
}

// GetRestore reads the deployment's latest restore.
func (c *Client) GetRestore(ctx context.Context, id string) (engine.RestoreRecord, []byte, error) {
	return call[engine.RestoreRecord](ctx, c, "GET", "/deployments/"+esc(id)+"/restore", nil, nil)
}

// SetSnapshotPolicy changes a deployment's snapshot schedule.
func (c *Client) SetSnapshotPolicy(ctx context.Context, id string, b api.SnapshotPolicyBody) (engine.SnapshotPolicy, []byte, error) {
	return call[engine.SnapshotPolicy](ctx, c, "PUT", "/deployments/"+esc(id)+"/snapshot-policy", b, nil)
}

// RepositoryFromFlags builds a repository body from the CLI's flags; the
// secret key is read from a file (never a flag: shell history, ps).
func RepositoryFromFlags(typ, endpoint, bucket, region, accessKey, secretKeyFile, path string) (api.RepositoryBody, error) {
	b := api.RepositoryBody{Type: typ}
	switch typ {
	case engine.RepositoryS3:
		if secretKeyFile == "" {
			return b, fmt.Errorf("--secret-key-file is required for an s3 repository: a file holding the secret key (- for standard input)")
		}
		var raw []byte
		var err error
		if secretKeyFile == "-" {
			raw, err = io.ReadAll(io.LimitReader(os.Stdin, 4096))
		} else {
			raw, err = os.ReadFile(secretKeyFile)
		}
		if err != nil {
			return b, fmt.Errorf("read the secret key: %w", err)
		}
		b.Settings = service.RepositorySettings{Endpoint: endpoint, Bucket: bucket, Region: region, AccessKey: accessKey, SecretKey: strings.TrimSpace(string(raw))}
	case engine.RepositoryFS:
		b.Settings = service.RepositorySettings{Location: path}
	default:
		return b, fmt.Errorf("--type %q: use s3 (an S3-compatible object store) or fs (a directory shared by every allocator host)", typ)
	}
	return b, nil
}

// WriteRepositories writes repositories as a table (keys never shown).
func WriteRepositories(w io.Writer, l api.RepositoryList) {
	tw := newTable(w, "NAME\tTYPE\tWHERE")
	for _, r := range l.Configs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.Config.Type, repositoryWhere(r))
	}
	tw.Flush()
}

func repositoryWhere(r service.RepositoryView) string {
	if r.Config.Type == engine.RepositoryFS {
		return r.Config.Settings.Location
	}
	return r.Config.Settings.Endpoint + "/" + r.Config.Settings.Bucket
}

// WriteRepository writes one repository.
func WriteRepository(w io.Writer, r service.RepositoryView) {
	WriteRepositories(w, api.RepositoryList{Configs: []service.RepositoryView{r}})
}

// WriteSnapshots writes a deployment's schedule and snapshots.
func WriteSnapshots(w io.Writer, v service.SnapshotsView) {
	sched := "every " + v.Interval
	if v.Policy.Disabled {
		sched = "off (manual snapshots only)"
	}
	fmt.Fprintf(w, "repository %s, scheduled %s, keep last %d and one a day for %d days\n", v.Repository, sched, keepLast(v.Policy), keepDays(v.Policy))
	switch {
	case v.LastSuccess != nil:
		fmt.Fprintf(w, "last good snapshot %s, %s ago\n", v.LastSuccess.Name, Age(v.LastSuccess))
	default:
		fmt.Fprintln(w, "no good snapshot yet")
	}
	if v.Overdue {
		fmt.Fprintln(w, "ALERT: the last good snapshot is older than twice the interval")
	}
	tw := newTable(w, "NAME\tTRIGGER\tSTATUS\tSIZE\tUPLOADED\tDURATION\tERROR")
	for _, r := range v.Snapshots {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Trigger, r.Status, bytesText(r.SizeBytes), bytesText(r.IncrementalBytes),
			durText(r.DurationMS, r.Done()), orDash(r.Error))
	}
	tw.Flush()
}

func keepLast(p engine.SnapshotPolicy) int {
	if p.KeepLast == 0 {
		return engine.DefaultKeepLast
	}
	return p.KeepLast
}

func keepDays(p engine.SnapshotPolicy) int {
	if p.KeepDailyDays == 0 {
		return engine.DefaultKeepDailyDays
	}
	return p.KeepDailyDays
}

// Age is how long ago a snapshot ended (or was asked for).
func Age(r *engine.SnapshotRecord) string {
	t := r.CreatedAt
	if r.EndedAt != nil {
		t = *r.EndedAt
	}
	return time.Since(t).Round(time.Second).String()
}

func bytesText(n int64) string {
	switch {
	case n <= 0:
		return "-"
	case n < 1<<10:
		return fmt.Sprintf("%dB", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1fKB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1fMB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2fGB", float64(n)/(1<<30))
}

func durText(ms int64, done bool) string {
	if !done {
		return "-"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

// WriteSnapshot writes one snapshot record.
func WriteSnapshot(w io.Writer, r engine.SnapshotRecord) {
	fmt.Fprintf(w, "snapshot %s (%s): %s", r.Name, r.Trigger, r.Status)
	if r.Done() {
		fmt.Fprintf(w, " in %s, %s (%s uploaded)", durText(r.DurationMS, true), bytesText(r.SizeBytes), bytesText(r.IncrementalBytes))
	}
	if r.Error != "" {
		fmt.Fprintf(w, ": %s", r.Error)
	}
	fmt.Fprintln(w)
}

// WriteRestore writes a restore record.
func WriteRestore(w io.Writer, r engine.RestoreRecord) {
	fmt.Fprintf(w, "restore of snapshot %s (deployment %s): %s", orDash(r.Snapshot), r.SourceDeployment, r.Status)
	switch {
	case r.Error != "":
		fmt.Fprintf(w, ": %s", r.Error)
	case r.Message != "":
		fmt.Fprintf(w, ": %s", r.Message)
	}
	fmt.Fprintln(w)
}

// SnapshotFailedError is a tracked snapshot or restore that failed.
type SnapshotFailedError struct{ What, Reason string }

func (e *SnapshotFailedError) Error() string { return e.What + " failed: " + e.Reason }

// TrackSnapshot polls a snapshot until it ends; it fails when the
// snapshot failed. A 503 is retried until ctx ends.
func (c *Client) TrackSnapshot(ctx context.Context, id, snap string, every time.Duration) (engine.SnapshotRecord, error) {
	return poll(ctx, every, func() (engine.SnapshotRecord, bool, error) {
		r, _, err := c.GetSnapshot(ctx, id, snap)
		if err != nil {
			return r, false, err
		}
		if r.Status == engine.SnapshotFailed {
			return r, true, &SnapshotFailedError{What: "snapshot " + snap, Reason: r.Error}
		}
		return r, r.Done(), nil
	}, fmt.Sprintf("`paddock deployment snapshots %s`", id))
}

// TrackRestore polls the deployment's restore until it ends.
func (c *Client) TrackRestore(ctx context.Context, id string, every time.Duration) (engine.RestoreRecord, error) {
	return poll(ctx, every, func() (engine.RestoreRecord, bool, error) {
		r, _, err := c.GetRestore(ctx, id)
		if err != nil {
			return r, false, err
		}
		if r.Status == engine.RestoreFailed {
			return r, true, &SnapshotFailedError{What: "restore of " + r.Snapshot, Reason: r.Error}
		}
		return r, r.Done(), nil
	}, fmt.Sprintf("`paddock deployment restore-status %s`", id))
}

func poll[T any](ctx context.Context, every time.Duration, get func() (T, bool, error), hint string) (T, error) {
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		v, done, err := get()
		if err != nil && StatusOf(err) != 503 {
			if ctx.Err() != nil {
				return v, fmt.Errorf("stopped tracking: %w (it goes on: %s)", ctx.Err(), hint)
			}
			return v, err
		}
		if err == nil && done {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("stopped tracking: %w (it goes on: %s)", ctx.Err(), hint)
		case <-tick.C:
		}
	}
}
