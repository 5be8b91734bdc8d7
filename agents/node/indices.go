package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"paddock/agents/node/eserr"
	"paddock/agents/node/mapping"
	"paddock/agents/node/shard"
)

// validIndex applies Elasticsearch's index name rules.
func validIndex(name string) error {
	bad := func(why string) error {
		return errf(http.StatusBadRequest, "invalid_index_name_exception", "Invalid index name [%s], %s", name, why).WithIndex(name)
	}
	switch {
	case name == "" || name == "." || name == "..":
		return bad("must not be empty, '.' or '..'")
	case len(name) > 255:
		return bad("index name is too long")
	case strings.ToLower(name) != name:
		return bad("must be lowercase")
	case strings.ContainsAny(name[:1], "_-+"):
		return bad("must not start with '_', '-', or '+'")
	case strings.ContainsAny(name, "\\/*?\"<>| ,#:"):
		return bad(`must not contain the following characters [ , ", *, \, <, |, ,, >, /, ?, #, :]`)
	}
	return nil
}

func (s *Server) indexDir(name string) string { return filepath.Join(s.cfg.DataDir, "indices", name) }

func (s *Server) shardOptions() shard.Options { return shard.Options{Logger: s.log} }

// openIndices opens every index of the data directory, and moves the
// indices an older node kept in node.db into their own.
func (s *Server) openIndices() error {
	ents, err := os.ReadDir(filepath.Join(s.cfg.DataDir, "indices"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sh, err := shard.Open(s.indexDir(e.Name()), e.Name(), s.shardOptions())
		if err != nil {
			return err
		}
		s.indices[e.Name()] = sh
	}
	legacy, err := s.db.legacyIndices()
	if err != nil {
		return err
	}
	for name, docs := range legacy {
		if err := s.importIndex(name, docs); err != nil {
			return fmt.Errorf("move index [%s] out of node.db: %w", name, err)
		}
		if err := s.db.dropLegacyIndex(name); err != nil {
			return err
		}
		s.log.Info("moved an index from the old single-file store", "index", name, "docs", len(docs))
	}
	return nil
}

// importIndex replaces an index by the given documents (restore, and
// moving an older node's data), with dynamic mappings.
func (s *Server) importIndex(name string, docs map[string][]byte) error {
	if old := s.takeIndex(name); old != nil {
		if err := old.Delete(); err != nil {
			return err
		}
	}
	sh, _, err := s.createShard(name, nil, nil)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(docs))
	for id := range docs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for start := 0; start < len(ids); start += 1000 {
		end := min(start+1000, len(ids))
		ops := make([]shard.Op, 0, end-start)
		for _, id := range ids[start:end] {
			ops = append(ops, shard.Op{Kind: shard.OpIndex, ID: id, Source: docs[id]})
		}
		res, err := sh.Write(context.Background(), ops)
		if err != nil {
			return err
		}
		for i, r := range res {
			if r.Err != nil {
				return fmt.Errorf("document [%s]: %w", ops[i].ID, r.Err)
			}
		}
	}
	return sh.Refresh(context.Background())
}

// index returns an open index by name (nil if missing).
func (s *Server) index(name string) *shard.Shard {
	s.imu.RLock()
	defer s.imu.RUnlock()
	return s.indices[name]
}

func (s *Server) takeIndex(name string) *shard.Shard {
	s.imu.Lock()
	defer s.imu.Unlock()
	sh := s.indices[name]
	delete(s.indices, name)
	return sh
}

// indexNames lists the indices, sorted.
func (s *Server) indexNames() []string {
	s.imu.RLock()
	defer s.imu.RUnlock()
	out := make([]string, 0, len(s.indices))
	for n := range s.indices {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// resolve expands an index expression (a,b / * / _all / prefix*) into
// existing index names. A named index that is missing is a 404; a
// pattern matching nothing is empty (allowEmpty) or a 404.
func (s *Server) resolve(expr string, allowEmpty bool) ([]string, error) {
	all := s.indexNames()
	if expr == "" || expr == "_all" || expr == "*" {
		return all, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, part := range strings.Split(expr, ",") {
		if part == "" {
			continue
		}
		if strings.HasPrefix(part, "-") {
			excl := part[1:]
			out = slicesFilter(out, func(n string) bool { return !wildMatch(excl, n) })
			continue
		}
		if strings.Contains(part, "*") {
			matched := false
			for _, n := range all {
				if wildMatch(part, n) {
					matched = true
					if !seen[n] {
						seen[n] = true
						out = append(out, n)
					}
				}
			}
			if !matched && !allowEmpty {
				return nil, eserr.IndexNotFound(part)
			}
			continue
		}
		if s.index(part) == nil {
			return nil, eserr.IndexNotFound(part)
		}
		if !seen[part] {
			seen[part] = true
			out = append(out, part)
		}
	}
	return out, nil
}

func slicesFilter(in []string, keep func(string) bool) []string {
	var out []string
	for _, s := range in {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

func wildMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, p)
		}
		j := strings.Index(s, p)
		if j < 0 {
			return false
		}
		s = s[j+len(p):]
	}
	return true
}

// createShard creates an index (false if it already existed).
func (s *Server) createShard(name string, m *mapping.Mapping, rawSettings map[string]any) (*shard.Shard, bool, error) {
	if err := validIndex(name); err != nil {
		return nil, false, err
	}
	settings, err := shard.DefaultSettings().Apply(rawSettings, true)
	if err != nil {
		return nil, false, err
	}
	settings.CreationDate = time.Now().UnixMilli()
	settings.UUID = randomID()
	s.imu.Lock()
	defer s.imu.Unlock()
	if sh := s.indices[name]; sh != nil {
		return sh, false, nil
	}
	sh, err := shard.Create(s.indexDir(name), name, m, settings, s.shardOptions())
	if err != nil {
		return nil, false, err
	}
	s.indices[name] = sh
	return sh, true, nil
}

// writeIndex returns the index a document write goes to, creating it
// (dynamic mapping) if missing, as Elasticsearch's auto-create does.
func (s *Server) writeIndex(name string) (*shard.Shard, error) {
	if sh := s.index(name); sh != nil {
		return sh, nil
	}
	sh, _, err := s.createShard(name, nil, nil)
	return sh, err
}

func (s *Server) createIndex(w http.ResponseWriter, r *http.Request, p params) error {
	name := p["index"]
	if err := validIndex(name); err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var req map[string]any
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	var m *mapping.Mapping
	var settings map[string]any
	for k, v := range req {
		switch k {
		case "mappings":
			raw, ok := v.(map[string]any)
			if !ok {
				return eserr.MapperParsing("[mappings] must be an object")
			}
			b, _ := json.Marshal(raw)
			if m, err = mapping.Parse(b); err != nil {
				return err
			}
		case "settings":
			if settings, _ = v.(map[string]any); settings == nil {
				return eserr.BadRequest("[settings] must be an object")
			}
		case "aliases":
			if a, ok := v.(map[string]any); !ok || len(a) > 0 {
				return eserr.BadRequest("aliases are not supported by the paddock node yet: create the index without them")
			}
		default:
			return eserr.New(http.StatusBadRequest, "parse_exception", "unknown key [%s] for create index", k)
		}
	}
	if s.index(name) != nil {
		return errf(http.StatusBadRequest, "resource_already_exists_exception", "index [%s/%s] already exists", name, s.index(name).Settings().UUID).WithIndex(name)
	}
	_, created, err := s.createShard(name, m, settings)
	if err != nil {
		return err
	}
	if !created {
		return errf(http.StatusBadRequest, "resource_already_exists_exception", "index [%s] already exists", name).WithIndex(name)
	}
	s.replicate(r, http.MethodPut, "/"+name, body)
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true, "shards_acknowledged": true, "index": name})
	return nil
}

func (s *Server) deleteIndex(w http.ResponseWriter, r *http.Request, p params) error {
	names, err := s.resolve(p["index"], true)
	if err != nil {
		return err
	}
	for _, name := range names {
		if sh := s.takeIndex(name); sh != nil {
			if err := sh.Delete(); err != nil {
				return err
			}
		}
	}
	s.replicate(r, http.MethodDelete, "/"+url0(p["index"]), nil)
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

func (s *Server) indexExists(w http.ResponseWriter, r *http.Request, p params) error {
	if _, err := s.resolve(p["index"], false); err != nil {
		w.WriteHeader(http.StatusNotFound)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) getIndex(w http.ResponseWriter, r *http.Request, p params) error {
	names, err := s.resolve(p["index"], true)
	if err != nil {
		return err
	}
	out := map[string]any{}
	for _, n := range names {
		sh := s.index(n)
		if sh == nil {
			continue
		}
		out[n] = map[string]any{"aliases": map[string]any{}, "mappings": sh.Mapping().JSON(), "settings": sh.Settings().JSON(n)}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getMapping(w http.ResponseWriter, r *http.Request, p params) error {
	names, err := s.resolve(p["index"], true)
	if err != nil {
		return err
	}
	out := map[string]any{}
	for _, n := range names {
		if sh := s.index(n); sh != nil {
			out[n] = map[string]any{"mappings": sh.Mapping().JSON()}
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) putMapping(w http.ResponseWriter, r *http.Request, p params) error {
	names, err := s.resolve(p["index"], false)
	if err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	m, err := mapping.Parse(body)
	if err != nil {
		return err
	}
	// Check every index first: a conflict changes none.
	for _, n := range names {
		if _, err := s.index(n).Mapping().Merge(m); err != nil {
			return err
		}
	}
	for _, n := range names {
		if err := s.index(n).PutMapping(m); err != nil {
			return err
		}
	}
	s.replicate(r, http.MethodPut, "/"+url0(p["index"])+"/_mapping", body)
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request, p params) error {
	names, err := s.resolve(p["index"], true)
	if err != nil {
		return err
	}
	out := map[string]any{}
	for _, n := range names {
		if sh := s.index(n); sh != nil {
			out[n] = map[string]any{"settings": sh.Settings().JSON(n)}
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) putSettings(w http.ResponseWriter, r *http.Request, p params) error {
	names, err := s.resolve(p["index"], false)
	if err != nil {
		return err
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var raw map[string]any
	if err := decodeJSON(body, &raw); err != nil {
		return err
	}
	if inner, ok := raw["settings"].(map[string]any); ok && len(raw) == 1 {
		raw = inner
	}
	for _, n := range names {
		if _, err := s.index(n).Settings().Apply(raw, false); err != nil {
			return err
		}
	}
	for _, n := range names {
		if err := s.index(n).PutSettings(raw); err != nil {
			return err
		}
	}
	s.replicate(r, http.MethodPut, "/"+url0(p["index"])+"/_settings", body)
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request, p params) error {
	names, err := s.resolve(p["index"], true)
	if err != nil {
		return err
	}
	for _, n := range names {
		if sh := s.index(n); sh != nil {
			if err := sh.Refresh(r.Context()); err != nil {
				return err
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"_shards": map[string]int{"total": len(names), "successful": len(names), "failed": 0}})
	return nil
}

func (s *Server) catIndices(w http.ResponseWriter, r *http.Request, p params) error {
	names, err := s.resolve(p["index"], true)
	if err != nil {
		return err
	}
	copies := len(s.Peers())
	type row struct {
		health, status, index, uuid string
		pri, rep                    int
		docs                        uint64
		size                        int64
	}
	var rows []row
	for _, n := range names {
		sh := s.index(n)
		if sh == nil {
			continue
		}
		st, set := sh.Stats(), sh.Settings()
		health := "green"
		if set.Replicas > copies {
			health = "yellow"
		}
		rows = append(rows, row{health, "open", n, set.UUID, set.Shards, set.Replicas, st.Docs, st.StoreBytes})
	}
	if r.URL.Query().Get("format") == "json" {
		out := []map[string]any{}
		for _, rw := range rows {
			out = append(out, map[string]any{"health": rw.health, "status": rw.status, "index": rw.index, "uuid": rw.uuid,
				"pri": strconv.Itoa(rw.pri), "rep": strconv.Itoa(rw.rep), "docs.count": strconv.FormatUint(rw.docs, 10),
				"store.size": strconv.FormatInt(rw.size, 10)})
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	var b strings.Builder
	for _, rw := range rows {
		fmt.Fprintf(&b, "%s %s %s %s %d %d %d 0 %d\n", rw.health, rw.status, rw.index, rw.uuid, rw.pri, rw.rep, rw.docs, rw.size)
	}
	_, _ = w.Write([]byte(b.String()))
	return nil
}

// url0 escapes an index expression for a forwarded path.
func url0(expr string) string {
	return strings.ReplaceAll(expr, "/", "%2F")
}
