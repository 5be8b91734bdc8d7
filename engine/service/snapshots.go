package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"paddock/engine"
)

// Masked stands for a secret in every answer that shows a repository.
const Masked = "********"

// RepositoryConfig is ECE's repository configuration: a type and its
// settings ({"type":"s3","settings":{"endpoint":…,"bucket":…,
// "access_key":…,"secret_key":…}} or {"type":"fs","settings":{"location":…}}).
type RepositoryConfig struct {
	Type     string             `json:"type"`
	Settings RepositorySettings `json:"settings"`
}

// RepositorySettings are the settings of either type. AccessKey and
// SecretKey are write-only: reads show Masked.
type RepositorySettings struct {
	Endpoint  string `json:"endpoint,omitempty"`
	Bucket    string `json:"bucket,omitempty"`
	Region    string `json:"region,omitempty"`
	PathStyle *bool  `json:"path_style_access,omitempty"`
	AccessKey string `json:"access_key,omitempty"`
	SecretKey string `json:"secret_key,omitempty"`
	// Location is the fs type's shared directory.
	Location string `json:"location,omitempty"`
}

// RepositoryView is a repository as listed (ECE's RepositoryConfig with
// its name), secrets masked.
type RepositoryView struct {
	Name      string           `json:"repository_name"`
	Config    RepositoryConfig `json:"config"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
}

func repositoryView(r engine.SnapshotRepository, hasKeys bool) RepositoryView {
	v := RepositoryView{Name: r.Name, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Config: RepositoryConfig{Type: r.Type}}
	switch r.Type {
	case engine.RepositoryS3:
		ps := r.PathStyle
		v.Config.Settings = RepositorySettings{Endpoint: r.Endpoint, Bucket: r.Bucket, Region: r.Region, PathStyle: &ps}
		if hasKeys {
			v.Config.Settings.AccessKey, v.Config.Settings.SecretKey = Masked, Masked
		}
	case engine.RepositoryFS:
		v.Config.Settings = RepositorySettings{Location: r.Path}
	}
	return v
}

func checkRepositoryName(name string) error {
	if !engine.ValidRepositoryName(name) {
		return &Error{Kind: KindInvalid, Code: "repository.invalid_name",
			Message: fmt.Sprintf("repository name %q: use 1..64 characters among lowercase letters, digits, '-' and '_', such as %q", name, engine.DefaultRepository)}
	}
	return nil
}

// validate checks a repository config and splits it into the record and
// its secret.
func (c RepositoryConfig) validate(name string) (engine.SnapshotRepository, engine.RepositorySecret, error) {
	var fe []FieldError
	r := engine.SnapshotRepository{Name: name, Type: strings.ToLower(strings.TrimSpace(c.Type))}
	var sec engine.RepositorySecret
	st := c.Settings
	switch r.Type {
	case engine.RepositoryS3:
		u, err := url.Parse(st.Endpoint)
		if st.Endpoint == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			fe = append(fe, field("settings.endpoint", "the object store's URL, such as http://10.0.0.5:8333 (scheme, host and port, no path)"))
		} else {
			r.Endpoint = strings.TrimSuffix(st.Endpoint, "/")
		}
		if st.Bucket == "" || len(st.Bucket) > 63 || strings.ContainsAny(st.Bucket, "/ ") {
			fe = append(fe, field("settings.bucket", "the bucket name (3..63 characters, no slash), such as paddock-snapshots"))
		}
		r.Bucket, r.Region, r.PathStyle = st.Bucket, st.Region, true
		if r.Region == "" {
			r.Region = "us-east-1"
		}
		if st.PathStyle != nil {
			r.PathStyle = *st.PathStyle
		}
		if st.AccessKey == "" || st.AccessKey == Masked {
			fe = append(fe, field("settings.access_key", "the S3 access key (--access-key)"))
		}
		if st.SecretKey == "" || st.SecretKey == Masked {
			fe = append(fe, field("settings.secret_key", "the S3 secret key (--secret-key-file: a file holding it, so that it stays out of shell history)"))
		}
		sec = engine.RepositorySecret{AccessKey: st.AccessKey, SecretKey: st.SecretKey}
		if st.Location != "" {
			fe = append(fe, field("settings.location", "an s3 repository has no location: give endpoint and bucket"))
		}
	case engine.RepositoryFS:
		if st.Location == "" || !path.IsAbs(st.Location) || path.Clean(st.Location) != st.Location {
			fe = append(fe, field("settings.location", "an absolute, clean directory shared by every allocator host, such as /mnt/snapshots"))
		}
		r.Path = st.Location
		if st.Endpoint != "" || st.Bucket != "" || st.AccessKey != "" || st.SecretKey != "" {
			fe = append(fe, field("settings", "an fs repository takes only a location"))
		}
	default:
		fe = append(fe, field("type", "unsupported repository type %q: use s3 (an S3-compatible object store) or fs (a shared directory)", c.Type))
	}
	if len(fe) > 0 {
		return r, sec, invalid(fe...)
	}
	return r, sec, nil
}

// PutRepository creates or replaces the repository name (ECE's PUT
// …/snapshots/repositories/{name}). The keys go to their own znode; the
// log names the repository and its endpoint, never a key.
func (s *Service) PutRepository(ctx context.Context, name string, cfg RepositoryConfig, actor Actor) (RepositoryView, error) {
	if err := checkRepositoryName(name); err != nil {
		return RepositoryView{}, err
	}
	r, sec, err := cfg.validate(name)
	if err != nil {
		return RepositoryView{}, err
	}
	if err := s.store.EnsurePath(ctx, engine.PathRepositories); err != nil {
		return RepositoryView{}, storeErr(err, "repository", name)
	}
	now := s.now()
	r.CreatedAt, r.UpdatedAt, r.CreatedBy = now, now, string(actor)
	var old engine.SnapshotRepository
	ver, err := s.store.GetJSON(ctx, engine.RepositoryPath(name), &old)
	switch {
	case errors.Is(err, engine.ErrNotFound):
		ops := []engine.Op{engine.OpCreate(engine.RepositoryPath(name), r)}
		if r.Type == engine.RepositoryS3 {
			ops = append(ops, engine.OpCreate(engine.RepositorySecretPath(name), sec))
		}
		if err := s.store.Multi(ctx, ops...); err != nil {
			if errors.Is(err, engine.ErrExists) {
				return RepositoryView{}, conflict("repository.conflict", "repository %s was created meanwhile: read it and retry", name)
			}
			return RepositoryView{}, storeErr(err, "repository", name)
		}
	case err != nil:
		return RepositoryView{}, storeErr(err, "repository", name)
	default:
		r.CreatedAt, r.CreatedBy = old.CreatedAt, old.CreatedBy
		hasSecret, _, err := s.store.Exists(ctx, engine.RepositorySecretPath(name))
		if err != nil {
			return RepositoryView{}, storeErr(err, "repository", name)
		}
		ops := []engine.Op{engine.OpSet(engine.RepositoryPath(name), r, ver)}
		switch {
		case r.Type == engine.RepositoryS3 && hasSecret:
			ops = append(ops, engine.OpSet(engine.RepositorySecretPath(name), sec, engine.AnyVersion))
		case r.Type == engine.RepositoryS3:
			ops = append(ops, engine.OpCreate(engine.RepositorySecretPath(name), sec))
		case hasSecret:
			ops = append(ops, engine.OpDelete(engine.RepositorySecretPath(name), engine.AnyVersion))
		}
		if err := s.store.Multi(ctx, ops...); err != nil {
			return RepositoryView{}, storeErr(err, "repository", name)
		}
	}
	s.log.Info("snapshot repository saved", "repository", name, "type", r.Type, "endpoint", r.Endpoint, "bucket", r.Bucket, "location", r.Path, "by", string(actor))
	return repositoryView(r, r.Type == engine.RepositoryS3), nil
}

// ListRepositories returns every repository by name, secrets masked.
func (s *Service) ListRepositories(ctx context.Context) ([]RepositoryView, error) {
	names, err := s.store.Children(ctx, engine.PathRepositories)
	if errors.Is(err, engine.ErrNotFound) {
		return []RepositoryView{}, nil
	}
	if err != nil {
		return nil, storeErr(err, "repository", "list")
	}
	sort.Strings(names)
	out := make([]RepositoryView, 0, len(names))
	for _, n := range names {
		v, err := s.GetRepository(ctx, n)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// GetRepository reads one repository, secrets masked (the secret znode
// is not read).
func (s *Service) GetRepository(ctx context.Context, name string) (RepositoryView, error) {
	if err := checkRepositoryName(name); err != nil {
		return RepositoryView{}, err
	}
	var r engine.SnapshotRepository
	if _, err := s.store.GetJSON(ctx, engine.RepositoryPath(name), &r); err != nil {
		return RepositoryView{}, storeErr(err, "repository", name)
	}
	return repositoryView(r, r.Type == engine.RepositoryS3), nil
}

// DeleteRepository removes a repository. One that a deployment's
// snapshot policy names is a conflict (the snapshots in it stay in the
// object store either way).
func (s *Service) DeleteRepository(ctx context.Context, name string, actor Actor) error {
	if err := checkRepositoryName(name); err != nil {
		return err
	}
	users, err := s.policiesUsing(ctx, name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return conflict("repository.in_use", "repository %s is the snapshot repository of %d deployment(s) (%s): point them at another one first (`paddock deployment snapshot-policy ID --repository R`)",
			name, len(users), strings.Join(users[:min(3, len(users))], ", "))
	}
	if err := s.store.DeleteTree(ctx, engine.RepositoryPath(name)); err != nil {
		return storeErr(err, "repository", name)
	}
	s.log.Info("snapshot repository removed", "repository", name, "by", string(actor))
	return nil
}

// policiesUsing lists the live deployments whose policy names repo
// (explicitly, or by default for the default repository).
func (s *Service) policiesUsing(ctx context.Context, repo string) ([]string, error) {
	deps, err := s.store.Children(ctx, engine.PathDeployments)
	if err != nil {
		return nil, storeErr(err, "deployment", "list")
	}
	var out []string
	for _, id := range deps {
		if !s.deploymentLive(ctx, id) {
			continue
		}
		p, _, err := s.store.SnapshotPolicy(ctx, id)
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return nil, storeErr(err, "snapshot-policy", id)
		}
		if p.RepositoryName() == repo {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}

// SnapshotPolicyRequest changes a deployment's snapshot schedule; nil
// fields stay as they are.
type SnapshotPolicyRequest struct {
	Repository    *string        `json:"repository,omitempty"`
	Interval      *time.Duration `json:"-"`
	IntervalSecs  *int           `json:"interval_seconds,omitempty"`
	Disabled      *bool          `json:"disabled,omitempty"`
	KeepLast      *int           `json:"keep_last,omitempty"`
	KeepDailyDays *int           `json:"keep_daily_days,omitempty"`
}

func (r SnapshotPolicyRequest) apply(p *engine.SnapshotPolicy) []FieldError {
	var fe []FieldError
	if r.Repository != nil {
		if *r.Repository != "" && !engine.ValidRepositoryName(*r.Repository) {
			fe = append(fe, field("repository", "not a repository name: see `paddock repository list`"))
		}
		p.Repository = *r.Repository
	}
	if r.Interval != nil {
		secs := int(r.Interval.Seconds())
		r.IntervalSecs = &secs
	}
	if r.IntervalSecs != nil {
		if *r.IntervalSecs < int(engine.MinSnapshotInterval.Seconds()) {
			fe = append(fe, field("interval_seconds", "at least 1 (seconds); the default is 1800 (30 minutes)"))
		}
		p.IntervalSeconds = *r.IntervalSecs
	}
	if r.Disabled != nil {
		p.Disabled = *r.Disabled
	}
	if r.KeepLast != nil {
		if *r.KeepLast < 1 || *r.KeepLast > 1000 {
			fe = append(fe, field("keep_last", "1..1000 snapshots"))
		}
		p.KeepLast = *r.KeepLast
	}
	if r.KeepDailyDays != nil {
		if *r.KeepDailyDays < 1 || *r.KeepDailyDays > 365 {
			fe = append(fe, field("keep_daily_days", "1..365 days"))
		}
		p.KeepDailyDays = *r.KeepDailyDays
	}
	return fe
}

// SetSnapshotPolicy changes a deployment's snapshot schedule.
func (s *Service) SetSnapshotPolicy(ctx context.Context, id string, req SnapshotPolicyRequest, actor Actor) (engine.SnapshotPolicy, error) {
	if err := checkID(id); err != nil {
		return engine.SnapshotPolicy{}, err
	}
	if _, err := s.liveDeployment(ctx, id); err != nil {
		return engine.SnapshotPolicy{}, err
	}
	var p engine.SnapshotPolicy
	if fe := req.apply(&p); len(fe) > 0 {
		return p, invalid(fe...)
	}
	if err := s.store.EnsureSnapshotPolicy(ctx, id); err != nil {
		return p, storeErr(err, "snapshot-policy", id)
	}
	for attempt := 0; ; attempt++ {
		cur, ver, err := s.store.SnapshotPolicy(ctx, id)
		if err != nil {
			return p, storeErr(err, "snapshot-policy", id)
		}
		req.apply(&cur)
		if _, err = s.store.Set(ctx, engine.SnapshotPolicyPath(id), cur, ver); err == nil {
			p = cur
			break
		}
		if !errors.Is(err, engine.ErrConflict) || attempt >= 5 {
			return p, storeErr(err, "snapshot-policy", id)
		}
	}
	s.log.Info("snapshot policy changed", "deployment", id, "repository", p.RepositoryName(), "interval", p.Interval().String(), "disabled", p.Disabled, "by", string(actor))
	return p, nil
}

func (s *Service) liveDeployment(ctx context.Context, id string) (engine.Deployment, error) {
	var d engine.Deployment
	if _, err := s.store.GetJSON(ctx, engine.DeploymentPath(id), &d); err != nil {
		return d, storeErr(err, "deployment", id)
	}
	if d.Status == engine.DeploymentDeleted || d.Status == engine.DeploymentDeleting {
		return d, &Error{Kind: KindConflict, Code: "deployment.deleted", Message: fmt.Sprintf("deployment %s is %s", id, d.Status)}
	}
	return d, nil
}

// SnapshotsView is a deployment's snapshot schedule and its snapshots,
// newest first.
type SnapshotsView struct {
	DeploymentID string                  `json:"deployment_id"`
	Policy       engine.SnapshotPolicy   `json:"policy"`
	Repository   string                  `json:"repository"`
	Interval     string                  `json:"interval"`
	Snapshots    []engine.SnapshotRecord `json:"snapshots"`
	// LastSuccess is the newest successful snapshot, if any.
	LastSuccess *engine.SnapshotRecord `json:"last_success,omitempty"`
	// Overdue is true when the last good snapshot (or the deployment's
	// creation) is older than twice the interval.
	Overdue bool `json:"overdue"`
}

// ListSnapshots returns a deployment's snapshot policy and records.
func (s *Service) ListSnapshots(ctx context.Context, id string) (SnapshotsView, error) {
	if err := checkID(id); err != nil {
		return SnapshotsView{}, err
	}
	var d engine.Deployment
	if _, err := s.store.GetJSON(ctx, engine.DeploymentPath(id), &d); err != nil {
		return SnapshotsView{}, storeErr(err, "deployment", id)
	}
	v := SnapshotsView{DeploymentID: id, Snapshots: []engine.SnapshotRecord{}}
	if p, _, err := s.store.SnapshotPolicy(ctx, id); err == nil {
		v.Policy = p
	} else if !errors.Is(err, engine.ErrNotFound) {
		return v, storeErr(err, "snapshot-policy", id)
	}
	raw, err := s.store.ReadChildren(ctx, engine.SnapshotPolicyPath(id))
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return v, storeErr(err, "snapshot", id)
	}
	for name, b := range raw {
		var r engine.SnapshotRecord
		if err := json.Unmarshal(b, &r); err != nil {
			s.log.Warn("snapshot record is not one; skipped", "deployment", id, "snapshot", name, "err", err)
			continue
		}
		r.Name = name
		v.Snapshots = append(v.Snapshots, r)
	}
	sort.Slice(v.Snapshots, func(i, j int) bool { return v.Snapshots[i].Name > v.Snapshots[j].Name })
	v.Repository, v.Interval = v.Policy.RepositoryName(), v.Policy.Interval().String()
	v.LastSuccess = LastGoodSnapshot(v.Snapshots)
	v.Overdue = SnapshotOverdue(v.Policy, v.LastSuccess, d.CreatedAt, s.now())
	return v, nil
}

// LastGoodSnapshot is the newest successful record (records by name
// newest first or in any order).
func LastGoodSnapshot(recs []engine.SnapshotRecord) *engine.SnapshotRecord {
	var best *engine.SnapshotRecord
	for i := range recs {
		r := &recs[i]
		if r.Status == engine.SnapshotSuccess && (best == nil || r.Name > best.Name) {
			best = r
		}
	}
	return best
}

// SnapshotOverdue is the console's alert rule: scheduled snapshots are
// on, and the last good one (or, with none, the deployment's creation)
// is older than twice the interval.
func SnapshotOverdue(p engine.SnapshotPolicy, last *engine.SnapshotRecord, created, now time.Time) bool {
	if p.Disabled {
		return false
	}
	since := created
	if last != nil {
		since = last.CreatedAt
		if last.EndedAt != nil {
			since = *last.EndedAt
		}
	}
	return !since.IsZero() && now.Sub(since) > 2*p.Interval()
}

// GetSnapshot reads one snapshot record.
func (s *Service) GetSnapshot(ctx context.Context, id, name string) (engine.SnapshotRecord, error) {
	if err := checkID(id); err != nil {
		return engine.SnapshotRecord{}, err
	}
	var r engine.SnapshotRecord
	if !engine.ValidSnapshotName(name) {
		return r, &Error{Kind: KindNotFound, Code: "snapshot.not_found", Message: fmt.Sprintf("snapshot %q not found: see `paddock deployment snapshots %s`", name, id)}
	}
	if _, err := s.store.GetJSON(ctx, engine.SnapshotRecordPath(id, name), &r); err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			return r, &Error{Kind: KindNotFound, Code: "snapshot.not_found", Message: fmt.Sprintf("snapshot %s of deployment %s not found: see `paddock deployment snapshots %s`", name, id, id), Err: err}
		}
		return r, storeErr(err, "snapshot", name)
	}
	r.Name = name
	return r, nil
}

// TakeSnapshot asks for a snapshot now: a record in state requested that
// the constructor takes on its next pass. The answer names it, so that
// callers can follow it (GetSnapshot).
func (s *Service) TakeSnapshot(ctx context.Context, id string, actor Actor) (engine.SnapshotRecord, error) {
	if err := checkID(id); err != nil {
		return engine.SnapshotRecord{}, err
	}
	if _, err := s.liveDeployment(ctx, id); err != nil {
		return engine.SnapshotRecord{}, err
	}
	p, _, err := s.store.SnapshotPolicy(ctx, id)
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return engine.SnapshotRecord{}, storeErr(err, "snapshot-policy", id)
	}
	if err := s.checkRepositoryExists(ctx, p.RepositoryName()); err != nil {
		return engine.SnapshotRecord{}, err
	}
	now := s.now()
	r := engine.SnapshotRecord{Name: engine.SnapshotName(now), Repository: p.RepositoryName(), Trigger: engine.TriggerManual,
		Status: engine.SnapshotRequested, CreatedAt: now, CreatedBy: string(actor)}
	if err := s.store.EnsureSnapshotPolicy(ctx, id); err != nil {
		return r, storeErr(err, "snapshot", id)
	}
	if err := s.store.Create(ctx, engine.SnapshotRecordPath(id, r.Name), r); err != nil {
		if errors.Is(err, engine.ErrExists) {
			return r, conflict("snapshot.exists", "a snapshot named %s was asked for at the same moment: retry", r.Name)
		}
		return r, storeErr(err, "snapshot", r.Name)
	}
	s.log.Info("snapshot requested", "deployment", id, "snapshot", r.Name, "repository", r.Repository, "by", string(actor))
	return r, nil
}

func (s *Service) checkRepositoryExists(ctx context.Context, name string) error {
	ok, _, err := s.store.Exists(ctx, engine.RepositoryPath(name))
	if err != nil {
		return storeErr(err, "repository", name)
	}
	if !ok {
		return &Error{Kind: KindConflict, Code: "repository.missing",
			Message: fmt.Sprintf("snapshot repository %s does not exist: add it with `paddock repository add %s …` (paddock up registers %q), or choose another with `paddock deployment snapshot-policy ID --repository R`", name, name, engine.DefaultRepository)}
	}
	return nil
}

// RestoreRequest asks to restore a snapshot into a deployment.
type RestoreRequest struct {
	// SourceDeployment defaults to the target itself.
	SourceDeployment string `json:"source_deployment_id,omitempty"`
	// Snapshot "" or "_latest" picks the source's newest good snapshot.
	Snapshot          string `json:"snapshot_name,omitempty"`
	Indices           string `json:"indices,omitempty"`
	RenamePattern     string `json:"rename_pattern,omitempty"`
	RenameReplacement string `json:"rename_replacement,omitempty"`
}

func (r *RestoreRequest) validate(target string) []FieldError {
	var fe []FieldError
	if r.SourceDeployment == "" {
		r.SourceDeployment = target
	}
	if !ValidID(r.SourceDeployment) {
		fe = append(fe, field("source_deployment_id", "a deployment id (32 lowercase hex characters)"))
	}
	if r.Snapshot == "_latest" {
		r.Snapshot = ""
	}
	if r.Snapshot != "" && !engine.ValidSnapshotName(r.Snapshot) {
		fe = append(fe, field("snapshot_name", "not a snapshot name: see `paddock deployment snapshots %s`", r.SourceDeployment))
	}
	if strings.ContainsAny(r.Indices, " /") {
		fe = append(fe, field("indices", "a comma-separated list of index names or patterns, such as logs-*,orders"))
	}
	if (r.RenamePattern == "") != (r.RenameReplacement == "") {
		fe = append(fe, field("rename_pattern", "rename_pattern and rename_replacement go together"))
	}
	return fe
}

// resolveRestore fills the snapshot (latest good when unnamed) and its
// repository from the source's records.
func (s *Service) resolveRestore(ctx context.Context, req RestoreRequest) (engine.RestoreRecord, error) {
	rec := engine.RestoreRecord{ID: engine.NewID(), SourceDeployment: req.SourceDeployment, Snapshot: req.Snapshot,
		Indices: req.Indices, RenamePattern: req.RenamePattern, RenameReplacement: req.RenameReplacement,
		Status: engine.RestoreRequested, CreatedAt: s.now()}
	if req.Snapshot == "" {
		v, err := s.ListSnapshots(ctx, req.SourceDeployment)
		if err != nil {
			return rec, err
		}
		if v.LastSuccess == nil {
			return rec, &Error{Kind: KindConflict, Code: "snapshot.none",
				Message: fmt.Sprintf("deployment %s has no successful snapshot yet: take one with `paddock deployment snapshot %s --track`", req.SourceDeployment, req.SourceDeployment)}
		}
		rec.Snapshot, rec.Repository = v.LastSuccess.Name, v.LastSuccess.Repository
		return rec, nil
	}
	snap, err := s.GetSnapshot(ctx, req.SourceDeployment, req.Snapshot)
	if err != nil {
		return rec, err
	}
	if snap.Status != engine.SnapshotSuccess {
		return rec, conflict("snapshot.not_restorable", "snapshot %s is %s, not success: restore a successful one (`paddock deployment snapshots %s`)", snap.Name, snap.Status, req.SourceDeployment)
	}
	rec.Repository = snap.Repository
	return rec, nil
}

// RestoreSnapshot asks the constructor to restore a snapshot into the
// live deployment id. Indices that exist open in the deployment make the
// node refuse, as Elasticsearch does: delete or close them, or rename
// the restored ones.
func (s *Service) RestoreSnapshot(ctx context.Context, id string, req RestoreRequest, actor Actor) (engine.RestoreRecord, error) {
	if err := checkID(id); err != nil {
		return engine.RestoreRecord{}, err
	}
	if fe := req.validate(id); len(fe) > 0 {
		return engine.RestoreRecord{}, invalid(fe...)
	}
	if _, err := s.liveDeployment(ctx, id); err != nil {
		return engine.RestoreRecord{}, err
	}
	rec, err := s.resolveRestore(ctx, req)
	if err != nil {
		return rec, err
	}
	rec.CreatedBy = string(actor)
	if err := s.store.EnsurePath(ctx, engine.PathRestores); err != nil {
		return rec, storeErr(err, "restore", id)
	}
	var cur engine.RestoreRecord
	ver, err := s.store.GetJSON(ctx, engine.RestorePath(id), &cur)
	switch {
	case errors.Is(err, engine.ErrNotFound):
		err = s.store.Create(ctx, engine.RestorePath(id), rec)
	case err != nil:
	case !cur.Done():
		return cur, conflict("restore.pending", "deployment %s is already restoring snapshot %s (%s): wait for it (`paddock deployment restore-status %s`)", id, cur.Snapshot, cur.Status, id)
	default:
		_, err = s.store.Set(ctx, engine.RestorePath(id), rec, ver)
	}
	if err != nil {
		return rec, storeErr(err, "restore", id)
	}
	s.log.Info("restore requested", "deployment", id, "source", rec.SourceDeployment, "snapshot", rec.Snapshot, "indices", rec.Indices, "by", string(actor))
	return rec, nil
}

// GetRestore reads the deployment's latest restore.
func (s *Service) GetRestore(ctx context.Context, id string) (engine.RestoreRecord, error) {
	if err := checkID(id); err != nil {
		return engine.RestoreRecord{}, err
	}
	var r engine.RestoreRecord
	if _, err := s.store.GetJSON(ctx, engine.RestorePath(id), &r); err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			return r, &Error{Kind: KindNotFound, Code: "restore.not_found", Message: fmt.Sprintf("deployment %s has no restore: start one with `paddock deployment restore %s --snapshot S`", id, id), Err: err}
		}
		return r, storeErr(err, "restore", id)
	}
	return r, nil
}

// createSnapshotOps are the writes of a new deployment's snapshot policy
// and, with RestoreFrom, of its restore (checked now: the source and its
// snapshot must exist).
func (s *Service) createSnapshotOps(ctx context.Context, id string, req CreateRequest) ([]engine.Op, error) {
	var pol engine.SnapshotPolicy
	if req.Snapshot != nil {
		if fe := req.Snapshot.apply(&pol); len(fe) > 0 {
			return nil, invalid(fe...)
		}
	}
	var ops []engine.Op
	if req.Snapshot != nil || req.RestoreFrom != "" {
		if err := s.store.EnsurePath(ctx, engine.PathSnapshots); err != nil {
			return nil, storeErr(err, "snapshot-policy", id)
		}
		ops = append(ops, engine.OpCreate(engine.SnapshotPolicyPath(id), pol))
	}
	if req.RestoreFrom == "" {
		return ops, nil
	}
	src, snap, _ := strings.Cut(req.RestoreFrom, "/")
	rr := RestoreRequest{SourceDeployment: src, Snapshot: snap}
	if fe := rr.validate(src); len(fe) > 0 || src == "" {
		return nil, invalid(field("restore_from", "a deployment id, optionally with a snapshot name: ID or ID/SNAPSHOT (see `paddock deployment snapshots ID`)"))
	}
	rec, err := s.resolveRestore(ctx, rr)
	if err != nil {
		return nil, err
	}
	rec.CreatedBy, rec.Reason = string(req.Actor), "create --restore-from"
	if err := s.store.EnsurePath(ctx, engine.PathRestores); err != nil {
		return nil, storeErr(err, "restore", id)
	}
	return append(ops, engine.OpCreate(engine.RestorePath(id), rec)), nil
}
