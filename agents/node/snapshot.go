package node

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"paddock/agents/node/eserr"
	"paddock/agents/node/shard"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ContainerSnapshotRoot is where allocators mount the shared snapshot
// directory inside node containers.
const ContainerSnapshotRoot = "/snapshots"

// Snapshot layout in a repository directory:
//
//	<location>/<snapshot>/snapshot.json          metadata (indices, counts, times)
//	<location>/<snapshot>/indices/<index>.ndjson one {"_id":…,"_source":…} per line
//
// A snapshot is written to a temporary directory and renamed into place,
// so a reader never sees half a snapshot.

type snapshotMeta struct {
	Snapshot  string         `json:"snapshot"`
	UUID      string         `json:"uuid"`
	Indices   []string       `json:"indices"`
	Docs      map[string]int `json:"docs"`
	State     string         `json:"state"`
	StartTime time.Time      `json:"start_time"`
	EndTime   time.Time      `json:"end_time"`
	Node      string         `json:"node"`
	Version   string         `json:"version"`
}

func (m snapshotMeta) render() map[string]any {
	return map[string]any{
		"snapshot": m.Snapshot, "uuid": m.UUID, "version": m.Version, "indices": m.Indices, "state": m.State,
		"start_time": m.StartTime, "start_time_in_millis": m.StartTime.UnixMilli(),
		"end_time": m.EndTime, "end_time_in_millis": m.EndTime.UnixMilli(),
		"duration_in_millis": m.EndTime.Sub(m.StartTime).Milliseconds(),
		"shards":             map[string]int{"total": len(m.Indices), "successful": len(m.Indices), "failed": 0},
	}
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

func (s *Server) deleteRepo(w http.ResponseWriter, r *http.Request, p params) error {
	found, err := s.db.deleteRepo(p["repo"])
	if err != nil {
		return err
	}
	if !found {
		return repoMissing(p["repo"])
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

func repoMissing(name string) error {
	return errf(http.StatusNotFound, "repository_missing_exception", "[%s] missing", name)
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
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body.Type != "fs" {
		return errf(http.StatusInternalServerError, "repository_exception", "[%s] repository type [%s] does not exist: the paddock node supports fs", name, body.Type)
	}
	loc, _ := body.Settings["location"].(string)
	dir, err := s.location(loc)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errf(http.StatusInternalServerError, "repository_verification_exception", "[%s] cannot create location [%s]: %v", name, loc, err)
	}
	// Verify the repository is writable, as Elasticsearch does.
	probe := filepath.Join(dir, ".verify-"+randomID())
	if err := os.WriteFile(probe, []byte("ok"), 0o644); err != nil {
		return errf(http.StatusInternalServerError, "repository_verification_exception", "[%s] location [%s] is not writable: %v", name, loc, err)
	}
	_ = os.Remove(probe)
	if err := s.db.putRepo(name, repository{Type: "fs", Settings: body.Settings}); err != nil {
		return err
	}
	b, _ := json.Marshal(body)
	s.replicate(r, http.MethodPut, "/_snapshot/"+name, b)
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

func (s *Server) getRepos(w http.ResponseWriter, r *http.Request, p params) error {
	name := p["repo"]
	all, err := s.db.repos()
	if err != nil {
		return err
	}
	if name != "" && name != "_all" && name != "*" {
		r, ok := all[name]
		if !ok {
			return repoMissing(name)
		}
		all = map[string]repository{name: r}
	}
	writeJSON(w, http.StatusOK, all)
	return nil
}

func (s *Server) repoDir(name string) (string, error) {
	repo, ok, err := s.db.repo(name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", repoMissing(name)
	}
	loc, _ := repo.Settings["location"].(string)
	return s.location(loc)
}

func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request, p params) error {
	repo, snap := p["repo"], p["snapshot"]
	if err := validName("snapshot", snap); err != nil {
		return err
	}
	dir, err := s.repoDir(repo)
	if err != nil {
		return err
	}
	var body struct {
		Indices any `json:"indices"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	expr := ""
	switch v := body.Indices.(type) {
	case string:
		expr = v
	case []any:
		var parts []string
		for _, e := range v {
			parts = append(parts, fmt.Sprint(e))
		}
		expr = strings.Join(parts, ",")
	}
	names, err := s.resolve(expr, true)
	if err != nil {
		return err
	}
	final := filepath.Join(dir, snap)
	if _, err := os.Stat(final); err == nil {
		return errf(http.StatusBadRequest, "invalid_snapshot_name_exception", "[%s:%s] Invalid snapshot name [%s], snapshot with the same name already exists", repo, snap, snap)
	}
	meta := snapshotMeta{Snapshot: snap, UUID: randomID(), Indices: names, Docs: map[string]int{}, StartTime: time.Now().UTC(),
		Node: s.cfg.Name, Version: s.cfg.Version, State: "SUCCESS"}
	if meta.Indices == nil {
		meta.Indices = []string{}
	}
	tmp := filepath.Join(dir, ".tmp-"+snap+"-"+randomID())
	if err := s.writeSnapshot(tmp, &meta); err != nil {
		os.RemoveAll(tmp)
		return errf(http.StatusInternalServerError, "snapshot_exception", "[%s:%s] write failed: %v", repo, snap, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return errf(http.StatusInternalServerError, "snapshot_exception", "[%s:%s] publish failed: %v", repo, snap, err)
	}
	if r.URL.Query().Get("wait_for_completion") == "true" {
		writeJSON(w, http.StatusOK, map[string]any{"snapshot": meta.render()})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"accepted": true})
	return nil
}

func (s *Server) writeSnapshot(tmp string, meta *snapshotMeta) error {
	if err := os.MkdirAll(filepath.Join(tmp, "indices"), 0o755); err != nil {
		return err
	}
	for _, idx := range meta.Indices {
		f, err := os.Create(filepath.Join(tmp, "indices", idx+".ndjson"))
		if err != nil {
			return err
		}
		bw := bufio.NewWriter(f)
		n := 0
		var werr error
		sh := s.index(idx)
		if sh == nil {
			f.Close()
			return eserr.IndexNotFound(idx)
		}
		err = sh.Scan(func(id string, src []byte, _ shard.Meta) bool {
			line, _ := json.Marshal(struct {
				ID     string          `json:"_id"`
				Source json.RawMessage `json:"_source"`
			}{id, src})
			if _, werr = bw.Write(append(line, '\n')); werr != nil {
				return false
			}
			n++
			return true
		})
		if err == nil {
			err = werr
		}
		if err == nil {
			err = bw.Flush()
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		meta.Docs[idx] = n
	}
	meta.EndTime = time.Now().UTC()
	b, _ := json.MarshalIndent(meta, "", "  ")
	return os.WriteFile(filepath.Join(tmp, "snapshot.json"), b, 0o644)
}

func readMeta(dir string) (snapshotMeta, error) {
	var m snapshotMeta
	b, err := os.ReadFile(filepath.Join(dir, "snapshot.json"))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

func snapMissing(repo, snap string) error {
	return errf(http.StatusNotFound, "snapshot_missing_exception", "[%s:%s] is missing", repo, snap)
}

func (s *Server) getSnapshots(w http.ResponseWriter, r *http.Request, p params) error {
	repo, snap := p["repo"], p["snapshot"]
	dir, err := s.repoDir(repo)
	if err != nil {
		return err
	}
	var names []string
	if snap == "_all" || snap == "*" {
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		for _, e := range ents {
			if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
	} else {
		names = strings.Split(snap, ",")
	}
	out := []any{}
	for _, n := range names {
		m, err := readMeta(filepath.Join(dir, n))
		if err != nil {
			if snap == "_all" || snap == "*" {
				continue
			}
			return snapMissing(repo, n)
		}
		out = append(out, m.render())
	}
	writeJSON(w, http.StatusOK, map[string]any{"snapshots": out, "total": len(out), "remaining": 0})
	return nil
}

func (s *Server) deleteSnapshot(w http.ResponseWriter, r *http.Request, p params) error {
	repo, snap := p["repo"], p["snapshot"]
	dir, err := s.repoDir(repo)
	if err != nil {
		return err
	}
	if err := validName("snapshot", snap); err != nil {
		return err
	}
	full := filepath.Join(dir, snap)
	if _, err := readMeta(full); err != nil {
		return snapMissing(repo, snap)
	}
	if err := os.RemoveAll(full); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

// restore replaces the snapshot's indices (all, or those asked for) with
// their content in the snapshot, in one transaction.
func (s *Server) restore(w http.ResponseWriter, r *http.Request, p params) error {
	repo, snap := p["repo"], p["snapshot"]
	dir, err := s.repoDir(repo)
	if err != nil {
		return err
	}
	if err := validName("snapshot", snap); err != nil {
		return err
	}
	full := filepath.Join(dir, snap)
	meta, err := readMeta(full)
	if err != nil {
		return snapMissing(repo, snap)
	}
	var body struct {
		Indices any `json:"indices"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	want := meta.Indices
	var asked []string
	switch v := body.Indices.(type) {
	case string:
		asked = strings.Split(v, ",")
	case []any:
		for _, e := range v {
			asked = append(asked, fmt.Sprint(e))
		}
	}
	if len(asked) > 0 && !(len(asked) == 1 && (asked[0] == "*" || asked[0] == "_all")) {
		have := map[string]bool{}
		for _, i := range meta.Indices {
			have[i] = true
		}
		want = nil
		for _, a := range asked {
			if !have[a] {
				return errf(http.StatusNotFound, "index_not_found_exception", "no such index [%s] in snapshot [%s:%s]", a, repo, snap)
			}
			want = append(want, a)
		}
	}
	data := map[string]map[string][]byte{}
	for _, idx := range want {
		docs, err := readIndexFile(filepath.Join(full, "indices", idx+".ndjson"))
		if err != nil {
			return errf(http.StatusInternalServerError, "snapshot_restore_exception", "[%s:%s] cannot read index [%s]: %v", repo, snap, idx, err)
		}
		data[idx] = docs
	}
	for idx, docs := range data {
		if err := s.importIndex(idx, docs); err != nil {
			return errf(http.StatusInternalServerError, "snapshot_restore_exception", "[%s:%s] cannot restore index [%s]: %v", repo, snap, idx, err)
		}
	}
	// Peers restore from the same shared repository themselves: forward
	// the request so every node holds the restored indices.
	b, _ := json.Marshal(map[string]any{"indices": strings.Join(want, ",")})
	s.replicate(r, http.MethodPost, "/_snapshot/"+repo+"/"+snap+"/_restore", b)
	if want == nil {
		want = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"snapshot": map[string]any{
		"snapshot": snap, "indices": want,
		"shards": map[string]int{"total": len(want), "successful": len(want), "failed": 0}}})
	return nil
}

func readIndexFile(file string) (map[string][]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	docs := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), MaxContentLength+1)
	for sc.Scan() {
		var d struct {
			ID     string          `json:"_id"`
			Source json.RawMessage `json:"_source"`
		}
		if len(sc.Bytes()) == 0 {
			continue
		}
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return nil, err
		}
		docs[d.ID] = d.Source
	}
	return docs, sc.Err()
}
