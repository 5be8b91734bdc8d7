package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"paddock/agents/node/meta"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"paddock/agents/node/eserr"
	"paddock/agents/node/mapping"
	"paddock/agents/node/shard"
)

// validIndex applies Elasticsearch's index name rules.
var validIndex = meta.ValidateIndexName

func (s *Server) indexDir(name string) string { return filepath.Join(s.cfg.DataDir, "indices", name) }

func (s *Server) shardOptions() shard.Options {
	return shard.Options{Logger: s.log, DocValues: s.dv}
}

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

// resolve expands an index expression (names, aliases, patterns,
// _all, -exclusions) into existing index names, as meta.Registry
// resolves it. A named index that is missing is a 404; a pattern
// matching nothing is empty (allowEmpty) or a 404.
func (s *Server) resolve(expr string, allowEmpty bool) ([]string, error) {
	rs, err := s.meta.Resolve(expr, s.indexNames(), meta.ResolveOptions{AllowNoIndices: allowEmpty, ExpandWildcards: "open"})
	if err != nil {
		return nil, err
	}
	return meta.Names(rs), nil
}

// resolveRequest is resolve with the request's ignore_unavailable,
// allow_no_indices and expand_wildcards, and the alias filters that
// apply to each index.
func (s *Server) resolveRequest(expr string, q url.Values) ([]meta.Resolved, error) {
	o, err := meta.OptionsFrom(q, meta.SearchDefaults)
	if err != nil {
		return nil, err
	}
	return s.meta.Resolve(expr, s.indexNames(), o)
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
	if s.closed {
		return nil, false, errNodeClosed()
	}
	sh, err := shard.Create(s.indexDir(name), name, m, settings, s.shardOptions())
	if err != nil {
		return nil, false, err
	}
	s.indices[name] = sh
	s.indexCreated(sh)
	return sh, true, nil
}

// writeIndex returns the index a document write goes to, creating it
// (dynamic mapping) if missing, as Elasticsearch's auto-create does.
// A write through an alias goes to its write index; a new index takes
// the matching index template. The shard's Name is the concrete index.
func (s *Server) writeIndex(name string) (*shard.Shard, error) {
	name, err := s.meta.WriteIndex(name)
	if err != nil {
		return nil, err
	}
	if sh := s.index(name); sh != nil {
		return sh, nil
	}
	sh, _, err := s.createWithTemplate(name, nil, nil, nil)
	return sh, err
}

// createWithTemplate creates an index from the index template matching
// its name (if any) overlaid with the request's mappings, settings and
// aliases (the request wins), then records its aliases. False if the
// index already existed.
func (s *Server) createWithTemplate(name string, mappings json.RawMessage, settings map[string]any, aliases map[string]meta.Alias) (*shard.Shard, bool, error) {
	if err := validIndex(name); err != nil {
		return nil, false, err
	}
	if s.meta.IsAlias(name) {
		return nil, false, errf(http.StatusBadRequest, "invalid_index_name_exception", "Invalid index name [%s], already exists as alias", name).WithIndex(name)
	}
	if _, t, ok := s.meta.MatchTemplate(name); ok {
		var err error
		if mappings, err = meta.Merge(t.Template.Mappings, mappings); err != nil {
			return nil, false, eserr.MapperParsing("merge the template's mappings: %v", err)
		}
		flat, err := meta.FlattenSettings(t.Template.Settings)
		if err != nil {
			return nil, false, err
		}
		req, err := meta.FlattenSettings(mustJSON(settings))
		if err != nil {
			return nil, false, err
		}
		for k, v := range req {
			flat[k] = v
		}
		settings = flat
		merged := map[string]meta.Alias{}
		for k, v := range t.Template.Aliases {
			merged[k] = v
		}
		for k, v := range aliases {
			merged[k] = v
		}
		aliases = merged
	}
	var m *mapping.Mapping
	if len(mappings) > 0 {
		var err error
		if m, err = mapping.Parse(mappings); err != nil {
			return nil, false, err
		}
	}
	sh, created, err := s.createShard(name, m, settings)
	if err != nil || !created {
		return sh, created, err
	}
	if err := s.meta.IndexCreated(name, aliases, s.indexNames()); err != nil {
		// The index exists without its aliases: say so rather than
		// half-succeed silently.
		return sh, true, fmt.Errorf("index [%s] created, but its aliases were refused: %w", name, err)
	}
	return sh, true, nil
}

func mustJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, _ := json.Marshal(v)
	return b
}

func (s *Server) createIndex(w http.ResponseWriter, r *http.Request, p params) error {
	name := p["index"]
	if err := validIndex(name); err != nil {
		return err
	}
	var req map[string]any
	err := decodeBody(r, &req)
	if err != nil {
		return err
	}
	var mappings json.RawMessage
	var settings map[string]any
	var aliases map[string]meta.Alias
	for k, v := range req {
		switch k {
		case "mappings":
			raw, ok := v.(map[string]any)
			if !ok {
				return eserr.MapperParsing("[mappings] must be an object")
			}
			mappings, _ = json.Marshal(raw)
			// Parsed here too, so a bad mapping is refused before a
			// template is looked at.
			if _, err = mapping.Parse(mappings); err != nil {
				return err
			}
		case "settings":
			if settings, _ = v.(map[string]any); settings == nil {
				return eserr.BadRequest("[settings] must be an object")
			}
		case "aliases":
			if aliases, err = meta.ParseAliases(mustJSON(v)); err != nil {
				return err
			}
		default:
			return eserr.New(http.StatusBadRequest, "parse_exception", "unknown key [%s] for create index", k)
		}
	}
	if s.index(name) != nil {
		return errf(http.StatusBadRequest, "resource_already_exists_exception", "index [%s/%s] already exists", name, s.index(name).Settings().UUID).WithIndex(name)
	}
	_, created, err := s.createWithTemplate(name, mappings, settings, aliases)
	if err != nil {
		return err
	}
	if !created {
		return errf(http.StatusBadRequest, "resource_already_exists_exception", "index [%s] already exists", name).WithIndex(name)
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true, "shards_acknowledged": true, "index": name})
	return nil
}

func (s *Server) deleteIndex(w http.ResponseWriter, r *http.Request, p params) error {
	for _, part := range strings.Split(p["index"], ",") {
		if s.meta.IsAlias(part) {
			return eserr.BadRequest("The provided expression [%s] matches an alias, specify the corresponding concrete indices instead.", part)
		}
	}
	names, err := s.resolve(p["index"], true)
	if err != nil {
		return err
	}
	if err := s.dropIndices(names); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

// dropIndices deletes indices and their aliases.
func (s *Server) dropIndices(names []string) error {
	if len(names) > 0 {
		defer s.metadataChanged()
	}
	for _, name := range names {
		if sh := s.takeIndex(name); sh != nil {
			if err := sh.Delete(); err != nil {
				return err
			}
		}
		if err := s.meta.IndexDeleted(name); err != nil {
			return err
		}
	}
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
	return s.perIndex(w, p["index"], func(n string, sh *shard.Shard) any {
		return map[string]any{"aliases": s.meta.AliasesOf(n), "mappings": sh.Mapping().JSON(), "settings": sh.Settings().JSON(n)}
	})
}

func (s *Server) getMapping(w http.ResponseWriter, r *http.Request, p params) error {
	return s.perIndex(w, p["index"], func(n string, sh *shard.Shard) any { return map[string]any{"mappings": sh.Mapping().JSON()} })
}

// perIndex answers {index: view(index)} for the indices expr names.
func (s *Server) perIndex(w http.ResponseWriter, expr string, view func(name string, sh *shard.Shard) any) error {
	names, err := s.resolve(expr, true)
	if err != nil {
		return err
	}
	out := map[string]any{}
	for _, n := range names {
		if sh := s.index(n); sh != nil {
			out[n] = view(n, sh)
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
	return s.changeIndices(w, r, names, "/"+url0(p["index"])+"/_mapping", body,
		func(sh *shard.Shard) error { _, err := sh.Mapping().Merge(m); return err },
		func(sh *shard.Shard) error { return sh.PutMapping(m) })
}

// changeIndices checks a change on every index first (a refusal changes
// none), applies it to each, forwards it to the peers and acknowledges.
func (s *Server) changeIndices(w http.ResponseWriter, r *http.Request, names []string, path string, body []byte,
	check, apply func(*shard.Shard) error) error {
	for _, n := range names {
		if err := check(s.index(n)); err != nil {
			return err
		}
	}
	for _, n := range names {
		if err := apply(s.index(n)); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request, p params) error {
	return s.perIndex(w, p["index"], func(n string, sh *shard.Shard) any { return map[string]any{"settings": sh.Settings().JSON(n)} })
}

func (s *Server) putSettings(w http.ResponseWriter, r *http.Request, p params) error {
	names, err := s.resolve(p["index"], false)
	if err != nil {
		return err
	}
	var raw map[string]any
	body, err := readJSON(r, &raw)
	if err != nil {
		return err
	}
	if inner, ok := raw["settings"].(map[string]any); ok && len(raw) == 1 {
		raw = inner
	}
	return s.changeIndices(w, r, names, "/"+url0(p["index"])+"/_settings", body,
		func(sh *shard.Shard) error { _, err := sh.Settings().Apply(raw, false); return err },
		func(sh *shard.Shard) error { return sh.PutSettings(raw) })
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

// url0 escapes an index expression for a forwarded path.
func url0(expr string) string {
	return strings.ReplaceAll(expr, "/", "%2F")
}
