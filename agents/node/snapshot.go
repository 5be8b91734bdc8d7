package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"paddock/agents/node/snaprepo"
)

// ContainerSnapshotRoot is where allocators mount the shared snapshot
// directory inside node containers.
const ContainerSnapshotRoot = "/snapshots"

// Repository layout (an fs location, or an s3 bucket under base_path):
//
//	snapshots/<name>.json   the manifest of a finished snapshot, written last
//	blobs/<sha256>          content-addressed blobs: document chunks and
//	                        index metadata, shared by every snapshot that
//	                        holds the same bytes
//	tests-<token>/verify    written and removed when the repository is put
//
// Each index in a manifest is its metadata blob, a base (every live
// document, exported in one read transaction, in ~4 MiB chunks) and a
// chain of deltas (the documents written or deleted since the previous
// snapshot's max seq_no, each exported in one read transaction). See
// snapshot_write.go and docs/architecture.md.
const (
	manifestPrefix = "snapshots/"
	blobPrefix     = "blobs/"
)

// Snapshot states, as Elasticsearch names them.
const (
	stateInProgress = "IN_PROGRESS"
	stateSuccess    = "SUCCESS"
	stateFailed     = "FAILED"
)

// manifest is one snapshot.
type manifest struct {
	Snapshot  string                    `json:"snapshot"`
	UUID      string                    `json:"uuid"`
	State     string                    `json:"state"`
	Reason    string                    `json:"reason,omitempty"`
	Node      string                    `json:"node"`
	Version   string                    `json:"version"`
	StartTime time.Time                 `json:"start_time"`
	EndTime   time.Time                 `json:"end_time"`
	Indices   map[string]*indexManifest `json:"indices"`
	// Incremental is what this snapshot uploaded; Total what it refers to.
	Incremental blobStats `json:"incremental"`
	Total       blobStats `json:"total"`
}

// indexManifest is one index in a snapshot.
type indexManifest struct {
	UUID string `json:"uuid"` // the index's uuid: deltas only apply to the same index
	// MaxSeqNo is where the next delta starts: every op up to it is in
	// this snapshot (ops above it may be too; a delta re-sends them).
	MaxSeqNo int64       `json:"max_seq_no"`
	Docs     int64       `json:"docs"`
	Meta     blobRef     `json:"meta"`
	Base     []blobRef   `json:"base"`
	Deltas   [][]blobRef `json:"deltas,omitempty"`
	// Incremental and Total as for the snapshot, for this index.
	Incremental blobStats `json:"incremental"`
	Total       blobStats `json:"total"`
}

type blobRef struct {
	Hash string `json:"sha256"`
	Size int64  `json:"size"`
	Docs int64  `json:"docs,omitempty"`
}

type blobStats struct {
	Files int64 `json:"file_count"`
	Bytes int64 `json:"size_in_bytes"`
}

func (b *blobStats) add(r blobRef) { b.Files++; b.Bytes += r.Size }

// blobs lists every blob the index refers to.
func (im *indexManifest) blobs() []blobRef {
	out := append([]blobRef{im.Meta}, im.Base...)
	for _, d := range im.Deltas {
		out = append(out, d...)
	}
	return out
}

func (im *indexManifest) baseBytes() (n int64) {
	for _, b := range im.Base {
		n += b.Size
	}
	return n
}

func (im *indexManifest) deltaBytes() (n int64) {
	for _, d := range im.Deltas {
		for _, b := range d {
			n += b.Size
		}
	}
	return n
}

func (m *manifest) indexNames() []string {
	out := make([]string, 0, len(m.Indices))
	for n := range m.Indices {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (m *manifest) render(repo string) map[string]any {
	out := map[string]any{
		"snapshot": m.Snapshot, "uuid": m.UUID, "repository": repo, "version": m.Version,
		"indices": m.indexNames(), "data_streams": []string{}, "include_global_state": false,
		"state": m.State, "start_time": m.StartTime.Format(time.RFC3339Nano), "start_time_in_millis": m.StartTime.UnixMilli(),
		"failures": []any{},
	}
	n := len(m.Indices)
	shards := map[string]int{"total": n, "successful": n, "failed": 0}
	switch m.State {
	case stateInProgress:
		shards = map[string]int{"total": n, "successful": 0, "failed": 0}
	case stateFailed:
		shards = map[string]int{"total": n, "successful": 0, "failed": n}
		out["reason"] = m.Reason
	}
	if m.State != stateInProgress {
		out["end_time"] = m.EndTime.Format(time.RFC3339Nano)
		out["end_time_in_millis"] = m.EndTime.UnixMilli()
		out["duration_in_millis"] = m.EndTime.Sub(m.StartTime).Milliseconds()
	}
	out["shards"] = shards
	return out
}

// status renders the snapshot as GET …/_status shows it.
func (m *manifest) status(repo string) map[string]any {
	dur := m.EndTime.Sub(m.StartTime)
	if m.State == stateInProgress {
		dur = time.Since(m.StartTime)
	}
	stats := func(inc, tot blobStats) map[string]any {
		return map[string]any{"incremental": inc, "total": tot, "processed": inc,
			"start_time_in_millis": m.StartTime.UnixMilli(), "time_in_millis": dur.Milliseconds()}
	}
	stage, done, failed, started := "DONE", 1, 0, 0
	switch m.State {
	case stateInProgress:
		stage, done, started = "STARTED", 0, 1
	case stateFailed:
		stage, done, failed = "FAILURE", 0, 1
	}
	shardStats := func(n int) map[string]int {
		return map[string]int{"initializing": 0, "started": started * n, "finalizing": 0, "done": done * n, "failed": failed * n, "total": n}
	}
	indices := map[string]any{}
	for name, im := range m.Indices {
		indices[name] = map[string]any{
			"shards_stats": shardStats(1), "stats": stats(im.Incremental, im.Total),
			"shards": map[string]any{"0": map[string]any{"stage": stage, "stats": stats(im.Incremental, im.Total)}},
		}
	}
	return map[string]any{
		"snapshot": m.Snapshot, "repository": repo, "uuid": m.UUID, "state": m.State, "include_global_state": false,
		"shards_stats": shardStats(len(m.Indices)), "stats": stats(m.Incremental, m.Total), "indices": indices,
	}
}

// snapshots is the node's snapshot activity: what runs now, what failed
// (a failed snapshot leaves no manifest in the repository, so the node
// remembers it until it is deleted or the node restarts), and one lock
// per repository so snapshots and deletes in one repository take turns.
type snapshots struct {
	ctx    context.Context // ends when the node closes
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	local map[string]*manifest // repo + "/" + snapshot → in progress or failed
	locks map[string]*sync.Mutex

	// beforeUpload, when set (tests), runs before a snapshot's first
	// blob upload.
	beforeUpload func()
}

func newSnapshots() *snapshots {
	ctx, cancel := context.WithCancel(context.Background())
	return &snapshots{ctx: ctx, cancel: cancel, local: map[string]*manifest{}, locks: map[string]*sync.Mutex{}}
}

// close stops running snapshots (they fail) and waits for them.
func (sn *snapshots) close() {
	sn.cancel()
	sn.wg.Wait()
}

func (sn *snapshots) lock(repo string) *sync.Mutex {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	l := sn.locks[repo]
	if l == nil {
		l = &sync.Mutex{}
		sn.locks[repo] = l
	}
	return l
}

// localCopy returns a copy of a running or failed snapshot.
func (sn *snapshots) localCopy(repo, snap string) (manifest, bool) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	m, ok := sn.local[repo+"/"+snap]
	if !ok {
		return manifest{}, false
	}
	return m.copy(), true
}

func (sn *snapshots) localList(repo string) []manifest {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	var out []manifest
	for k, m := range sn.local {
		if strings.HasPrefix(k, repo+"/") {
			out = append(out, m.copy())
		}
	}
	return out
}

// copy copies what render and status read (the caller holds sn.mu).
func (m *manifest) copy() manifest {
	c := *m
	c.Indices = make(map[string]*indexManifest, len(m.Indices))
	for k, v := range m.Indices {
		iv := *v
		c.Indices[k] = &iv
	}
	return c
}

// location resolves a repository location under the snapshot root.
func (s *Server) location(loc string) (string, error) {
	root := s.cfg.SnapshotRoot
	if root == "" {
		return "", errf(http.StatusInternalServerError, "repository_exception", "this node has no snapshot root: start it with --snapshot-root")
	}
	if loc == "" {
		return "", errf(http.StatusBadRequest, "repository_exception", "[fs] repository needs settings.location")
	}
	rel := loc
	switch {
	case loc == ContainerSnapshotRoot || strings.HasPrefix(loc, ContainerSnapshotRoot+"/"):
		rel = strings.TrimPrefix(loc, ContainerSnapshotRoot)
	case filepath.IsAbs(loc):
		r, err := filepath.Rel(root, loc)
		if err != nil || strings.HasPrefix(r, "..") {
			return "", errf(http.StatusBadRequest, "repository_exception", "location [%s] doesn't match any of the locations specified by path.repo [%s]", loc, root)
		}
		rel = r
	}
	full := filepath.Join(root, filepath.Clean("/"+rel))
	if full != root && !strings.HasPrefix(full, filepath.Clean(root)+string(filepath.Separator)) {
		return "", errf(http.StatusBadRequest, "repository_exception", "location [%s] escapes the snapshot root", loc)
	}
	return full, nil
}

func validName(kind, name string) error {
	if name == "" || strings.ContainsAny(name, "/\\*?\"<>| ,#") || strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") {
		return errf(http.StatusBadRequest, "invalid_"+kind+"_name_exception", "[%s] Invalid %s name: must not be empty, start with '_' or '.', or contain special characters", name, kind)
	}
	return nil
}

func repoMissing(name string) error {
	return errf(http.StatusNotFound, "repository_missing_exception", "[%s] missing", name)
}

func snapMissing(repo, snap string) error {
	return errf(http.StatusNotFound, "snapshot_missing_exception", "[%s:%s] is missing", repo, snap)
}

// secretSettings are repository settings the node keeps (in its own
// 0600 data file) but never shows or logs: Elasticsearch keeps them in
// its keystore.
var secretSettings = map[string]bool{"access_key": true, "secret_key": true, "session_token": true}

func publicSettings(in map[string]any) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		if !secretSettings[k] {
			out[k] = v
		}
	}
	return out
}

// storeSettings turns a repository's settings into the blob store's.
func (s *Server) storeSettings(name, typ string, set map[string]any) (snaprepo.Settings, error) {
	str := func(k string) string {
		switch v := set[k].(type) {
		case string:
			return v
		case nil:
			return ""
		default:
			return fmt.Sprint(v)
		}
	}
	switch typ {
	case "fs":
		dir, err := s.location(str("location"))
		if err != nil {
			return snaprepo.Settings{}, err
		}
		return snaprepo.Settings{Type: "fs", Location: dir}, nil
	case "s3":
		ps := strings.EqualFold(str("path_style_access"), "true")
		st := snaprepo.Settings{Type: "s3", Endpoint: str("endpoint"), Bucket: str("bucket"), BasePath: str("base_path"),
			Region: str("region"), AccessKey: str("access_key"), SecretKey: str("secret_key"), Protocol: str("protocol"), PathStyle: ps}
		var missing []string
		for _, k := range []string{"endpoint", "bucket", "access_key", "secret_key"} {
			if str(k) == "" {
				missing = append(missing, "settings."+k)
			}
		}
		if len(missing) > 0 {
			return st, errf(http.StatusBadRequest, "repository_exception", "[%s] s3 repository needs %s", name, strings.Join(missing, ", "))
		}
		if p := st.Protocol; p != "" && p != "http" && p != "https" {
			return st, errf(http.StatusBadRequest, "repository_exception", "[%s] settings.protocol must be http or https, not [%s]", name, p)
		}
		return st, nil
	}
	return snaprepo.Settings{}, errf(http.StatusInternalServerError, "repository_exception", "[%s] repository type [%s] does not exist: the paddock node supports fs and s3", name, typ)
}

// openRepo opens a registered repository's blob store.
func (s *Server) openRepo(ctx context.Context, name string) (snaprepo.Store, error) {
	repo, ok, err := s.db.repo(name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, repoMissing(name)
	}
	set, err := s.storeSettings(name, repo.Type, repo.Settings)
	if err != nil {
		return nil, err
	}
	st, err := snaprepo.New(ctx, set)
	if err != nil {
		return nil, errf(http.StatusInternalServerError, "repository_exception", "[%s] cannot open the repository: %v", name, err)
	}
	return st, nil
}

func (s *Server) putRepo(w http.ResponseWriter, r *http.Request, p params) error {
	name := p["repo"]
	if err := validName("repository", name); err != nil {
		return err
	}
	var body struct {
		Type     string         `json:"type"`
		Settings map[string]any `json:"settings"`
	}
	raw, err := readJSON(r, &body)
	if err != nil {
		return err
	}
	if body.Settings == nil {
		body.Settings = map[string]any{}
	}
	set, err := s.storeSettings(name, body.Type, body.Settings)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("verify") != "false" {
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		defer cancel()
		st, err := snaprepo.New(ctx, set)
		if err == nil {
			err = snaprepo.Verify(ctx, st, randomID())
		}
		if err != nil {
			return errf(http.StatusInternalServerError, "repository_verification_exception", "[%s] path [%s] is not accessible on node [%s]: %v",
				name, strings.Trim(set.BasePath, "/"), s.cfg.Name, err)
		}
	}
	if err := s.db.putRepo(name, repository{Type: body.Type, Settings: body.Settings}); err != nil {
		return err
	}
	s.toCopies(r, http.MethodPut, "/_snapshot/"+name, raw)
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

func (s *Server) getRepos(w http.ResponseWriter, r *http.Request, p params) error {
	name := p["repo"]
	all, err := s.db.repos()
	if err != nil {
		return err
	}
	out := map[string]any{}
	for n, repo := range all {
		if name != "" && name != "_all" && name != "*" && !matchNames(strings.Split(name, ","), n) {
			continue
		}
		out[n] = map[string]any{"type": repo.Type, "settings": publicSettings(repo.Settings)}
	}
	if len(out) == 0 && name != "" && name != "_all" && name != "*" {
		return repoMissing(name)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteRepo(w http.ResponseWriter, r *http.Request, p params) error {
	found, err := s.db.deleteRepo(p["repo"])
	if err != nil {
		return err
	}
	if !found {
		return repoMissing(p["repo"])
	}
	s.toCopies(r, http.MethodDelete, "/_snapshot/"+p["repo"], nil)
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

// toCopies sends a repository change to the other copies of the
// replication group, best effort: each node keeps its own repositories,
// and a restore asked of any copy runs on the primary.
func (s *Server) toCopies(r *http.Request, method, path string, body []byte) {
	rt := s.repl.routing()
	if rt == nil || r.Header.Get(ForwardedHeader) != "" {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range rt.Copies {
		if c.ID == rt.Self || c.URL == "" {
			continue
		}
		wg.Add(1)
		go func(id, url string) {
			defer wg.Done()
			var rd io.Reader
			if body != nil {
				rd = bytes.NewReader(body)
			}
			req, err := http.NewRequestWithContext(ctx, method, url+path, rd)
			if err != nil {
				return
			}
			s.sec.platform().SetAuth(req)
			req.Header.Set(ForwardedHeader, rt.Self)
			req.Header.Set("Content-Type", "application/json")
			resp, err := s.repl.client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 300 {
					err = fmt.Errorf("answered %s", resp.Status)
				}
			}
			if err != nil {
				s.log.Warn("repository change not applied on a copy", "copy", id, "method", method, "path", path, "err", err)
			}
		}(c.ID, c.URL)
	}
	wg.Wait()
}

// matchNames tells whether name matches one of the patterns (* wildcards).
func matchNames(patterns []string, name string) bool {
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "_all" || p == name {
			return true
		}
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// indicesExpr reads "indices" given as "a,b*" or ["a","b*"].
func indicesExpr(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			parts = append(parts, fmt.Sprint(e))
		}
		return strings.Join(parts, ",")
	}
	return ""
}

func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request, p params) error {
	repo, snap := p["repo"], p["snapshot"]
	if err := validName("snapshot", snap); err != nil {
		return err
	}
	var body struct {
		Indices any `json:"indices"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	names, err := s.resolve(indicesExpr(body.Indices), true)
	if err != nil {
		return err
	}
	st, err := s.openRepo(r.Context(), repo)
	if err != nil {
		return err
	}
	m := &manifest{Snapshot: snap, UUID: randomID(), State: stateInProgress, Node: s.cfg.Name, Version: s.cfg.Version,
		StartTime: time.Now().UTC(), Indices: map[string]*indexManifest{}}
	for _, n := range names {
		m.Indices[n] = &indexManifest{}
	}
	sn := s.snaps
	key := repo + "/" + snap
	sn.mu.Lock()
	if old, ok := sn.local[key]; ok && old.State == stateInProgress {
		sn.mu.Unlock()
		return errf(http.StatusBadRequest, "invalid_snapshot_name_exception", "[%s:%s] Invalid snapshot name [%s], snapshot with the same name is already in-progress", repo, snap, snap)
	}
	sn.local[key] = m
	sn.mu.Unlock()
	if _, err := readManifest(r.Context(), st, snap); err == nil {
		sn.forget(key, m)
		return errf(http.StatusBadRequest, "invalid_snapshot_name_exception", "[%s:%s] Invalid snapshot name [%s], snapshot with the same name already exists", repo, snap, snap)
	} else if !errors.Is(err, snaprepo.ErrNotFound) {
		sn.forget(key, m)
		return errf(http.StatusInternalServerError, "repository_exception", "[%s] cannot read the repository: %v", repo, err)
	}
	done := make(chan struct{})
	sn.wg.Add(1)
	go func() {
		defer sn.wg.Done()
		defer close(done)
		s.runSnapshot(sn.ctx, repo, st, m, names)
	}()
	if r.URL.Query().Get("wait_for_completion") != "true" {
		writeJSON(w, http.StatusOK, map[string]any{"accepted": true})
		return nil
	}
	select {
	case <-done:
	case <-r.Context().Done():
		return r.Context().Err()
	}
	sn.mu.Lock()
	out := m.copy()
	sn.mu.Unlock()
	if out.State == stateFailed {
		// The whole snapshot failed (the repository, not one shard):
		// an error, so callers that only check the status see it.
		// GET still shows it as FAILED with its reason.
		return errf(http.StatusInternalServerError, "snapshot_exception", "[%s:%s] failed: %s", repo, snap, out.Reason)
	}
	writeJSON(w, http.StatusOK, map[string]any{"snapshot": out.render(repo)})
	return nil
}

// maxFailed is how many failed snapshots a node remembers per repository.
const maxFailed = 20

// pruneFailed forgets the oldest failed snapshots of repo past
// maxFailed (the caller holds sn.mu).
func (sn *snapshots) pruneFailed(repo string) {
	var failed []string
	for k, m := range sn.local {
		if strings.HasPrefix(k, repo+"/") && m.State == stateFailed {
			failed = append(failed, k)
		}
	}
	if len(failed) <= maxFailed {
		return
	}
	sort.Slice(failed, func(i, j int) bool { return sn.local[failed[i]].StartTime.Before(sn.local[failed[j]].StartTime) })
	for _, k := range failed[:len(failed)-maxFailed] {
		delete(sn.local, k)
	}
}

// forget drops a local entry if it still is m.
func (sn *snapshots) forget(key string, m *manifest) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if sn.local[key] == m {
		delete(sn.local, key)
	}
}

func (s *Server) getSnapshots(w http.ResponseWriter, r *http.Request, p params) error {
	repo, expr := p["repo"], p["snapshot"]
	list, err := s.listSnapshots(r.Context(), repo, expr)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(list))
	for i := range list {
		out = append(out, list[i].render(repo))
	}
	writeJSON(w, http.StatusOK, map[string]any{"snapshots": out, "total": len(out), "remaining": 0})
	return nil
}

func (s *Server) snapshotStatus(w http.ResponseWriter, r *http.Request, p params) error {
	repo, expr := p["repo"], p["snapshot"]
	list, err := s.listSnapshots(r.Context(), repo, expr)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(list))
	for i := range list {
		out = append(out, list[i].status(repo))
	}
	writeJSON(w, http.StatusOK, map[string]any{"snapshots": out})
	return nil
}

// listSnapshots returns the snapshots expr names ("_all", "*", "_current",
// a comma list with wildcards), the repository's and this node's running
// or failed ones, sorted by start time. A name without wildcard that is
// nowhere is a 404.
func (s *Server) listSnapshots(ctx context.Context, repo, expr string) ([]manifest, error) {
	st, err := s.openRepo(ctx, repo)
	if err != nil {
		return nil, err
	}
	local := s.snaps.localList(repo)
	var out []manifest
	seen := map[string]bool{}
	add := func(m manifest) {
		if !seen[m.Snapshot] {
			seen[m.Snapshot] = true
			out = append(out, m)
		}
	}
	if expr == "_current" {
		for _, m := range local {
			if m.State == stateInProgress {
				add(m)
			}
		}
		return out, nil
	}
	all := expr == "_all" || expr == "*" || expr == ""
	pats := strings.Split(expr, ",")
	for _, m := range local {
		if all || matchNames(pats, m.Snapshot) {
			add(m)
		}
	}
	if all || strings.ContainsAny(expr, "*?") {
		ms, err := readManifests(ctx, st)
		if err != nil {
			return nil, errf(http.StatusInternalServerError, "repository_exception", "[%s] cannot read the repository: %v", repo, err)
		}
		for _, m := range ms {
			if all || matchNames(pats, m.Snapshot) {
				add(*m)
			}
		}
	} else {
		for _, n := range pats {
			if seen[n] {
				continue
			}
			m, err := readManifest(ctx, st, n)
			if errors.Is(err, snaprepo.ErrNotFound) {
				return nil, snapMissing(repo, n)
			}
			if err != nil {
				return nil, errf(http.StatusInternalServerError, "repository_exception", "[%s] cannot read snapshot [%s]: %v", repo, n, err)
			}
			add(*m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartTime.Before(out[j].StartTime) })
	return out, nil
}

// readManifest reads snapshots/<name>.json.
func readManifest(ctx context.Context, st snaprepo.Store, name string) (*manifest, error) {
	rc, err := st.Get(ctx, manifestPrefix+name+".json")
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var m manifest
	if err := json.NewDecoder(rc).Decode(&m); err != nil {
		return nil, fmt.Errorf("snapshot [%s]: damaged manifest: %w", name, err)
	}
	if m.Indices == nil {
		m.Indices = map[string]*indexManifest{}
	}
	return &m, nil
}

// readManifests reads every manifest in the repository.
func readManifests(ctx context.Context, st snaprepo.Store) ([]*manifest, error) {
	objs, err := st.List(ctx, manifestPrefix)
	if err != nil {
		return nil, err
	}
	var out []*manifest
	for _, o := range objs {
		name, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, manifestPrefix), ".json")
		if !ok || strings.Contains(name, "/") {
			continue
		}
		m, err := readManifest(ctx, st, name)
		if errors.Is(err, snaprepo.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartTime.Before(out[j].StartTime) })
	return out, nil
}

// unusedGrace protects blobs no manifest refers to yet (a snapshot still
// uploading on another node) from a delete's clean-up.
const unusedGrace = time.Hour

func (s *Server) deleteSnapshot(w http.ResponseWriter, r *http.Request, p params) error {
	repo, expr := p["repo"], p["snapshot"]
	st, err := s.openRepo(r.Context(), repo)
	if err != nil {
		return err
	}
	sn := s.snaps
	for _, snap := range strings.Split(expr, ",") {
		if m, ok := sn.localCopy(repo, snap); ok && m.State == stateInProgress {
			return errf(http.StatusConflict, "concurrent_snapshot_execution_exception", "[%s:%s] cannot delete a snapshot that is in progress: wait for it to finish", repo, snap)
		}
	}
	// Deletes wait for a snapshot of another name running in the
	// repository on this node.
	lock := sn.lock(repo)
	lock.Lock()
	defer lock.Unlock()
	released := map[string]bool{}
	for _, snap := range strings.Split(expr, ",") {
		key := repo + "/" + snap
		if m, ok := sn.localCopy(repo, snap); ok {
			if m.State == stateInProgress {
				return errf(http.StatusConflict, "concurrent_snapshot_execution_exception", "[%s:%s] cannot delete a snapshot that is in progress: wait for it to finish", repo, snap)
			}
			sn.mu.Lock()
			delete(sn.local, key)
			sn.mu.Unlock()
			continue
		}
		m, err := readManifest(r.Context(), st, snap)
		if err != nil {
			if errors.Is(err, snaprepo.ErrNotFound) {
				return snapMissing(repo, snap)
			}
			return errf(http.StatusInternalServerError, "repository_exception", "[%s] cannot read snapshot [%s]: %v", repo, snap, err)
		}
		for _, im := range m.Indices {
			for _, b := range im.blobs() {
				released[b.Hash] = true
			}
		}
		// The manifest goes first: from then on nothing refers to blobs
		// only it used, and a failure below leaves only unused blobs.
		if err := st.Delete(r.Context(), manifestPrefix+snap+".json"); err != nil {
			return errf(http.StatusInternalServerError, "repository_exception", "[%s] cannot delete snapshot [%s]: %v", repo, snap, err)
		}
	}
	removed, err := collectGarbage(r.Context(), st, released, time.Now().Add(-unusedGrace))
	if err != nil {
		s.log.Warn("snapshot deleted; removing its unused blobs failed (the next delete retries)", "repository", repo, "err", err)
	} else {
		s.log.Info("snapshot deleted", "repository", repo, "snapshot", expr, "blobs_removed", removed)
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

// collectGarbage removes the blobs no manifest refers to: at once those
// the deleted manifests named (released), the others (left by a failed
// snapshot, or uploaded by one still running elsewhere) only when
// older than olderThan.
func collectGarbage(ctx context.Context, st snaprepo.Store, released map[string]bool, olderThan time.Time) (int, error) {
	ms, err := readManifests(ctx, st)
	if err != nil {
		return 0, err
	}
	used := map[string]bool{}
	for _, m := range ms {
		for _, im := range m.Indices {
			for _, b := range im.blobs() {
				used[b.Hash] = true
			}
		}
	}
	objs, err := st.List(ctx, blobPrefix)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range objs {
		h := strings.TrimPrefix(o.Key, blobPrefix)
		if used[h] {
			continue
		}
		if !released[h] && o.Modified.After(olderThan) {
			continue
		}
		if err := st.Delete(ctx, o.Key); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// restore restores indices of a snapshot: into missing indices, or under
// new names (rename_pattern/rename_replacement). An open index of the
// same name is refused, as Elasticsearch does; the platform's own
// migrations (which replace what a new node restored before) pass
// paddock_replace=true.
func (s *Server) restore(w http.ResponseWriter, r *http.Request, p params) error {
	repo, snap := p["repo"], p["snapshot"]
	if err := validName("snapshot", snap); err != nil {
		return err
	}
	var body struct {
		Indices           any    `json:"indices"`
		RenamePattern     string `json:"rename_pattern"`
		RenameReplacement string `json:"rename_replacement"`
		IncludeAliases    *bool  `json:"include_aliases"`
		IgnoreUnavailable bool   `json:"ignore_unavailable"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	replace := r.URL.Query().Get("paddock_replace") == "true"
	if replace && s.sec.enabled() && !PrincipalOf(r.Context()).Platform() {
		return errf(http.StatusForbidden, "security_exception", "paddock_replace is reserved to the platform")
	}
	st, err := s.openRepo(r.Context(), repo)
	if err != nil {
		return err
	}
	m, err := readManifest(r.Context(), st, snap)
	if errors.Is(err, snaprepo.ErrNotFound) {
		return snapMissing(repo, snap)
	}
	if err != nil {
		return errf(http.StatusInternalServerError, "snapshot_restore_exception", "[%s:%s] cannot read the snapshot: %v", repo, snap, err)
	}
	if m.State != stateSuccess {
		return errf(http.StatusInternalServerError, "snapshot_restore_exception", "[%s:%s] unsupported snapshot state [%s]", repo, snap, m.State)
	}
	want := m.indexNames()
	if expr := indicesExpr(body.Indices); expr != "" && expr != "_all" && expr != "*" {
		want = nil
		for _, pat := range strings.Split(expr, ",") {
			pat = strings.TrimSpace(pat)
			n := 0
			for _, idx := range m.indexNames() {
				if matchNames([]string{pat}, idx) && !contains(want, idx) {
					want = append(want, idx)
					n++
				}
			}
			if n == 0 && !strings.ContainsAny(pat, "*?") && !body.IgnoreUnavailable {
				return errf(http.StatusNotFound, "index_not_found_exception", "no such index [%s] in snapshot [%s:%s]", pat, repo, snap)
			}
		}
	}
	var rename *regexp.Regexp
	if body.RenamePattern != "" {
		if rename, err = regexp.Compile(body.RenamePattern); err != nil {
			return errf(http.StatusBadRequest, "illegal_argument_exception", "rename_pattern [%s] is not a valid regular expression: %v", body.RenamePattern, err)
		}
	}
	targets := map[string]string{}
	taken := map[string]string{}
	for _, idx := range want {
		target := idx
		if rename != nil {
			target = rename.ReplaceAllString(idx, javaReplacement(body.RenameReplacement))
		}
		if err := validIndex(target); err != nil {
			return errf(http.StatusInternalServerError, "snapshot_restore_exception", "[%s:%s] cannot restore index [%s] as [%s]: %v", repo, snap, idx, target, err)
		}
		if prev, dup := taken[target]; dup {
			return errf(http.StatusInternalServerError, "snapshot_restore_exception", "[%s:%s] indices [%s] and [%s] are renamed into the same index [%s]", repo, snap, prev, idx, target)
		}
		taken[target] = idx
		if !replace && (s.index(target) != nil || s.meta.IsAlias(target)) {
			return errf(http.StatusInternalServerError, "snapshot_restore_exception",
				"[%s:%s] cannot restore index [%s] because an open index with same name already exists in the cluster. Either close or delete the existing index or restore the index under a different name by providing a rename pattern and replacement name",
				repo, snap, target)
		}
		targets[idx] = target
	}
	aliases := body.IncludeAliases == nil || *body.IncludeAliases
	restored := make([]string, 0, len(want))
	for _, idx := range want {
		target := targets[idx]
		if err := s.restoreIndex(r.Context(), st, m.Indices[idx], target, aliases && rename == nil); err != nil {
			return errf(http.StatusInternalServerError, "snapshot_restore_exception", "[%s:%s] cannot restore index [%s]: %v", repo, snap, idx, err)
		}
		restored = append(restored, target)
	}
	// With replication, restoreWrite copies the restored indices to the other copies.
	writeJSON(w, http.StatusOK, map[string]any{"snapshot": map[string]any{
		"snapshot": snap, "indices": restored,
		"shards": map[string]int{"total": len(restored), "successful": len(restored), "failed": 0}}})
	return nil
}

// javaReplacement turns Elasticsearch's (Java's) "$1" group references
// into Go's "${1}", so "restored_$1" does not read as group "1restored".
var javaGroup = regexp.MustCompile(`\$(\d+)`)

func javaReplacement(s string) string { return javaGroup.ReplaceAllString(s, "$${$1}") }

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
