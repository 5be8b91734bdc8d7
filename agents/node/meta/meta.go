// Package meta is the node's index metadata beside the indices
// themselves: aliases and index templates, and the resolution of an
// index expression ("logs-*,-logs-old,current") to concrete indices as
// Elasticsearch resolves it. It knows nothing of documents: the REST
// layer asks it which indices a request means, which template a new
// index takes, and where a write through an alias goes.
//
// The registry is one JSON file in the data directory, replaced
// atomically (write, fsync, rename) on every change, so a crash leaves
// either the old or the new metadata.
package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"paddock/agents/node/eserr"
)

// Alias is one alias of one index.
type Alias struct {
	// Filter is a query (raw JSON) applied to searches through the alias.
	Filter json.RawMessage `json:"filter,omitempty"`
	// Routing, IndexRouting and SearchRouting are kept and shown; the
	// node has one shard per index, so they change nothing.
	Routing       string `json:"routing,omitempty"`
	IndexRouting  string `json:"index_routing,omitempty"`
	SearchRouting string `json:"search_routing,omitempty"`
	// IsWriteIndex marks the index writes through the alias go to when
	// it points at several.
	IsWriteIndex *bool `json:"is_write_index,omitempty"`
	IsHidden     *bool `json:"is_hidden,omitempty"`
}

// Template is a composable index template (PUT /_index_template/NAME).
type Template struct {
	IndexPatterns []string        `json:"index_patterns"`
	Priority      int64           `json:"priority,omitempty"`
	Version       *int64          `json:"version,omitempty"`
	Template      TemplateBody    `json:"template"`
	Meta          json.RawMessage `json:"_meta,omitempty"`
}

// TemplateBody is what a template gives a new index.
type TemplateBody struct {
	Settings json.RawMessage  `json:"settings,omitempty"`
	Mappings json.RawMessage  `json:"mappings,omitempty"`
	Aliases  map[string]Alias `json:"aliases,omitempty"`
}

type state struct {
	// Aliases: index → alias name → alias.
	Aliases   map[string]map[string]Alias `json:"aliases"`
	Templates map[string]Template         `json:"templates"`
}

// Registry holds aliases and templates. It is safe for concurrent use.
type Registry struct {
	path string
	mu   sync.RWMutex
	st   state
}

// Open loads the registry file at path (created on the first change).
func Open(path string) (*Registry, error) {
	r := &Registry{path: path, st: state{Aliases: map[string]map[string]Alias{}, Templates: map[string]Template{}}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read index metadata: %w", err)
	}
	if err := json.Unmarshal(b, &r.st); err != nil {
		return nil, fmt.Errorf("index metadata %s is damaged: %w (restore it from a snapshot or remove it to drop aliases and templates)", path, err)
	}
	if r.st.Aliases == nil {
		r.st.Aliases = map[string]map[string]Alias{}
	}
	if r.st.Templates == nil {
		r.st.Templates = map[string]Template{}
	}
	return r, nil
}

// save writes st atomically; on failure the registry keeps old.
func (r *Registry) save(st state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(r.path)
	f, err := os.CreateTemp(dir, ".meta-*")
	if err != nil {
		return fmt.Errorf("save index metadata: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("save index metadata: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save index metadata: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save index metadata: %w", err)
	}
	if err := os.Rename(tmp, r.path); err != nil {
		return fmt.Errorf("save index metadata: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	r.st = st
	return nil
}

// clone copies the state deeply enough to change it without touching
// what readers see.
func (st state) clone() state {
	out := state{Aliases: make(map[string]map[string]Alias, len(st.Aliases)), Templates: make(map[string]Template, len(st.Templates))}
	for idx, as := range st.Aliases {
		m := make(map[string]Alias, len(as))
		for k, v := range as {
			m[k] = v
		}
		out.Aliases[idx] = m
	}
	for k, v := range st.Templates {
		out.Templates[k] = v
	}
	return out
}

// ValidateIndexName applies Elasticsearch's rules for index (and alias)
// names: 400 invalid_index_name_exception naming what is wrong.
func ValidateIndexName(name string) error {
	bad := func(why string) error {
		return eserr.New(400, "invalid_index_name_exception", "Invalid index name [%s], %s", name, why).WithIndex(name)
	}
	switch {
	case name == "":
		return bad("must not be empty")
	case name == "." || name == "..":
		return bad("must not be '.' or '..'")
	case strings.ToLower(name) != name:
		return bad("must be lowercase")
	case strings.ContainsAny(name, `\/*?"<>| ,#:`):
		return bad(`must not contain the following characters [ , ", *, \, <, |, ,, >, /, ?, #, :]`)
	case strings.HasPrefix(name, "-") || strings.HasPrefix(name, "_") || strings.HasPrefix(name, "+"):
		return bad("must not start with '_', '-', or '+'")
	case len(name) > 255:
		return bad("index name is too long, (" + fmt.Sprint(len(name)) + " > 255)")
	}
	return nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Export is the registry's whole state (aliases and templates) as JSON,
// for a primary to push to its copies.
func (r *Registry) Export() json.RawMessage {
	r.mu.RLock()
	defer r.mu.RUnlock()
	b, _ := json.Marshal(r.st)
	return b
}

// Import replaces the registry's state by an Export of another node's
// (a copy following its primary). Unchanged state is not rewritten.
func (r *Registry) Import(raw json.RawMessage) error {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("index metadata pushed by the primary is not valid: %w", err)
	}
	if st.Aliases == nil {
		st.Aliases = map[string]map[string]Alias{}
	}
	if st.Templates == nil {
		st.Templates = map[string]Template{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, _ := json.Marshal(r.st); string(cur) == string(mustMarshal(st)) {
		return nil
	}
	return r.save(st)
}

func mustMarshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
