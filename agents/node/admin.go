package node

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"sort"
	"strings"

	"paddock/agents/node/cat"
	"paddock/agents/node/eserr"
)

// Aliases, index templates, _stats, _nodes and the _cat tables: the
// index administration and cluster answers that clients and tools call
// beside documents and search.

// updateAliases: POST /_aliases.
func (s *Server) updateAliases(w http.ResponseWriter, r *http.Request, _ params) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	remove, err := s.meta.UpdateAliases(body, s.indexNames())
	if err != nil {
		return err
	}
	if err := s.dropIndices(remove); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true, "errors": false})
	return nil
}

// putAlias: PUT|POST /{index}/_alias/{name}.
func (s *Server) putAlias(w http.ResponseWriter, r *http.Request, p params) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if err := s.meta.PutAlias(p["index"], p["name"], body, s.indexNames()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

// deleteAlias: DELETE /{index}/_alias/{name}.
func (s *Server) deleteAlias(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.meta.DeleteAliases(p["index"], p["name"], s.indexNames()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

// getAliases: GET|HEAD /_alias[/{name}], /{index}/_alias[/{name}].
func (s *Server) getAliases(w http.ResponseWriter, r *http.Request, p params) error {
	got, err := s.meta.GetAliases(p["index"], p["name"], s.indexNames())
	if r.Method == http.MethodHead {
		if err != nil || (p["name"] != "" && len(got) == 0) {
			w.WriteHeader(http.StatusNotFound)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		return nil
	}
	out := map[string]any{}
	for idx, as := range got {
		out[idx] = map[string]any{"aliases": as}
	}
	if err != nil {
		// Elasticsearch answers a missing alias name with what it found
		// and a plain error message beside it.
		e := eserr.From(err)
		if e.Type != "aliases_not_found_exception" {
			return err
		}
		out["error"] = e.Reason
		out["status"] = http.StatusNotFound
		writeJSON(w, http.StatusNotFound, out)
		return nil
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// putTemplate: PUT|POST /_index_template/{name}.
func (s *Server) putTemplate(w http.ResponseWriter, r *http.Request, p params) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if err := s.meta.PutTemplate(p["name"], body, r.URL.Query().Get("create") == "true"); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

// getTemplates: GET|HEAD /_index_template[/{name}].
func (s *Server) getTemplates(w http.ResponseWriter, r *http.Request, p params) error {
	ts, err := s.meta.GetTemplates(p["name"])
	if r.Method == http.MethodHead {
		if err != nil {
			w.WriteHeader(http.StatusNotFound)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		return nil
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"index_templates": ts})
	return nil
}

// deleteTemplate: DELETE /_index_template/{name}.
func (s *Server) deleteTemplate(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.meta.DeleteTemplate(p["name"]); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

// indexHealth is an index's health as _cluster/health counts it: its
// replicas beyond the copies this node's peers can hold are unassigned.
func (s *Server) indexHealth(name string) string {
	sh := s.index(name)
	if sh == nil {
		return "red"
	}
	if g := s.group(context.Background()); g != nil {
		return s.routedHealth(g, []string{name}).Status
	}
	if sh.Settings().Replicas > 0 {
		return "yellow" // standalone: its replicas are unassigned
	}
	return "green"
}

// copyCount is how many copies beside this one hold the indices (in
// sync), for the _stats and _cat totals.
func (s *Server) copyCount() int {
	if rt := s.repl.routing(); rt != nil {
		return max(len(rt.InSync)-1, 0)
	}
	return 0
}

// stats: GET /_stats, /{index}/_stats (docs, store and fielddata, primaries
// and total).
func (s *Server) stats(w http.ResponseWriter, r *http.Request, p params) error {
	names, err := s.resolve(p["index"], true)
	if err != nil {
		return err
	}
	copies := s.copyCount()
	// fielddata is this node's doc-values cache (dsl.DocValues): the
	// copies' caches on other nodes are not known here, so total shows
	// this node's as primaries does.
	block := func(docs uint64, bytes, fdBytes, fdEvictions int64) map[string]any {
		return map[string]any{"docs": map[string]any{"count": docs, "deleted": 0}, "store": map[string]any{"size_in_bytes": bytes},
			"fielddata": map[string]any{"memory_size_in_bytes": fdBytes, "evictions": fdEvictions}}
	}
	var allDocs, totalDocs uint64
	var allBytes, totalBytes, allFD, allEvictions int64
	shards, successful := 0, 0
	indices := map[string]any{}
	for _, n := range names {
		sh := s.index(n)
		if sh == nil {
			continue
		}
		st, set := sh.Stats(), sh.Settings()
		fd, evictions := sh.DocValues().Stats()
		allFD += fd
		allEvictions += evictions
		c := uint64(1 + min(set.Replicas, copies))
		allDocs += st.Docs
		allBytes += st.StoreBytes
		totalDocs += st.Docs * c
		totalBytes += st.StoreBytes * int64(c)
		shards += set.Shards * (1 + set.Replicas)
		successful += set.Shards * int(c)
		indices[n] = map[string]any{"uuid": set.UUID, "health": s.indexHealth(n), "status": "open",
			"primaries": block(st.Docs, st.StoreBytes, fd, evictions), "total": block(st.Docs*c, st.StoreBytes*int64(c), fd, evictions)}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"_shards": map[string]any{"total": shards, "successful": successful, "failed": 0},
		"_all":    map[string]any{"primaries": block(allDocs, allBytes, allFD, allEvictions), "total": block(totalDocs, totalBytes, allFD, allEvictions)},
		"indices": indices,
	})
	return nil
}

// nodeID is this node's id: stable for its data directory and name.
func (s *Server) nodeID() string { return idOf(s.db.uuid() + "/" + s.cfg.Name) }

func idOf(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// nodeView is one node as _nodes and _cat/nodes show it: this node, and
// each peer it copies writes to (known by address only).
type nodeView struct {
	id, name, addr string
	self           bool
}

func (s *Server) nodeViews(r *http.Request) []nodeView {
	addr := r.Host
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		addr = la.String()
	}
	out := []nodeView{{id: s.nodeID(), name: s.cfg.Name, addr: addr, self: true}}
	if rt := s.repl.routing(); rt != nil {
		// The replication group's other copies.
		for _, c := range rt.Copies {
			if c.ID != rt.Self {
				out = append(out, nodeView{id: idOf(c.ID), name: c.ID, addr: strings.TrimPrefix(strings.TrimPrefix(c.URL, "http://"), "https://")})
			}
		}
	}
	return out
}

var nodeRoles = []string{"data", "ingest", "master"}

// nodes: GET /_nodes, /_nodes/{metric} (clients sniff publish addresses
// from http).
func (s *Server) nodes(w http.ResponseWriter, r *http.Request, _ params) error {
	views := s.nodeViews(r)
	nodes := map[string]any{}
	for _, v := range views {
		host, _, _ := net.SplitHostPort(v.addr)
		n := map[string]any{"name": v.name, "transport_address": v.addr, "host": host, "ip": host,
			"version": s.cfg.Version, "build_flavor": "default", "build_type": "docker", "build_hash": "paddock",
			"roles": nodeRoles, "http": map[string]any{"publish_address": v.addr, "bound_address": []string{v.addr}}}
		nodes[v.id] = n
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"_nodes":       map[string]any{"total": len(views), "successful": len(views), "failed": 0},
		"cluster_name": s.cfg.ClusterName,
		"nodes":        nodes,
	})
	return nil
}

// The _cat tables.

var catIndicesCols = []cat.Column{
	{Name: "health", Aliases: []string{"h"}, Desc: "current health status", Default: true},
	{Name: "status", Aliases: []string{"s"}, Desc: "open/close status", Default: true},
	{Name: "index", Aliases: []string{"i", "idx"}, Desc: "index name", Default: true},
	{Name: "uuid", Aliases: []string{"id"}, Desc: "index uuid", Default: true},
	{Name: "pri", Aliases: []string{"p", "shards.primary"}, Desc: "number of primary shards", Default: true, Kind: cat.Number},
	{Name: "rep", Aliases: []string{"r", "shards.replica"}, Desc: "number of replica shards", Default: true, Kind: cat.Number},
	{Name: "docs.count", Aliases: []string{"dc", "docsCount"}, Desc: "available docs", Default: true, Kind: cat.Number},
	{Name: "docs.deleted", Aliases: []string{"dd", "docsDeleted"}, Desc: "deleted docs", Default: true, Kind: cat.Number},
	{Name: "store.size", Aliases: []string{"ss", "storeSize"}, Desc: "store size of primaries & replicas", Default: true, Kind: cat.Bytes},
	{Name: "pri.store.size", Desc: "store size of primaries", Default: true, Kind: cat.Bytes},
	{Name: "creation.date", Aliases: []string{"cd"}, Desc: "index creation date (millisecond value)", Kind: cat.Number},
}

func (s *Server) catIndices(w http.ResponseWriter, r *http.Request, p params) error {
	names, err := s.resolve(p["index"], true)
	if err != nil {
		return err
	}
	copies := s.copyCount()
	var rows []cat.Row
	for _, n := range names {
		sh := s.index(n)
		if sh == nil {
			continue
		}
		st, set := sh.Stats(), sh.Settings()
		c := int64(1 + min(set.Replicas, copies))
		rows = append(rows, cat.Row{"health": s.indexHealth(n), "status": "open", "index": n, "uuid": set.UUID,
			"pri": set.Shards, "rep": set.Replicas, "docs.count": st.Docs, "docs.deleted": 0,
			"store.size": st.StoreBytes * c, "pri.store.size": st.StoreBytes, "creation.date": set.CreationDate})
	}
	return cat.Write(w, r.URL.Query(), catIndicesCols, rows)
}

var catHealthCols = []cat.Column{
	{Name: "epoch", Aliases: []string{"t", "time"}, Desc: "seconds since 1970-01-01 00:00:00", Default: true, Kind: cat.Number},
	{Name: "timestamp", Aliases: []string{"ts", "hms", "hhmmss"}, Desc: "time in HH:MM:SS", Default: true},
	{Name: "cluster", Aliases: []string{"cl"}, Desc: "cluster name", Default: true},
	{Name: "status", Aliases: []string{"st"}, Desc: "health status", Default: true},
	{Name: "node.total", Aliases: []string{"nt", "nodeTotal"}, Desc: "total number of nodes", Default: true, Kind: cat.Number},
	{Name: "node.data", Aliases: []string{"nd", "nodeData"}, Desc: "number of nodes that can store data", Default: true, Kind: cat.Number},
	{Name: "shards", Aliases: []string{"t", "sh", "shards.total", "shardsTotal"}, Desc: "total number of shards", Default: true, Kind: cat.Number},
	{Name: "pri", Aliases: []string{"p", "shards.primary", "shardsPrimary"}, Desc: "number of primary shards", Default: true, Kind: cat.Number},
	{Name: "relo", Aliases: []string{"r", "shards.relocating"}, Desc: "number of relocating nodes", Default: true, Kind: cat.Number},
	{Name: "init", Aliases: []string{"i", "shards.initializing"}, Desc: "number of initializing nodes", Default: true, Kind: cat.Number},
	{Name: "unassign", Aliases: []string{"u", "shards.unassigned"}, Desc: "number of unassigned shards", Default: true, Kind: cat.Number},
	{Name: "pending_tasks", Aliases: []string{"pt", "pendingTasks"}, Desc: "number of pending tasks", Default: true, Kind: cat.Number},
	{Name: "active_shards_percent", Aliases: []string{"asp", "activeShardsPercent"}, Desc: "active number of shards in percent", Default: true},
}

func (s *Server) catHealth(w http.ResponseWriter, r *http.Request, _ params) error {
	h, err := s.health(r.Context(), "")
	if err != nil {
		return err
	}
	now := s.now()
	return cat.Write(w, r.URL.Query(), catHealthCols, []cat.Row{{
		"epoch": now.Unix(), "timestamp": now.UTC().Format("15:04:05"), "cluster": s.cfg.ClusterName, "status": h.Status,
		"node.total": h.Nodes, "node.data": h.Nodes, "shards": h.Active, "pri": h.Primaries, "relo": 0, "init": h.Initializing,
		"unassign": h.Unassigned, "pending_tasks": 0, "active_shards_percent": formatPercent(h.ActivePercent),
	}})
}

var catNodesCols = []cat.Column{
	{Name: "id", Aliases: []string{"nodeId"}, Desc: "unique node id"},
	{Name: "ip", Aliases: []string{"i"}, Desc: "ip address", Default: true},
	{Name: "http_address", Aliases: []string{"http"}, Desc: "bound http address"},
	{Name: "version", Aliases: []string{"v"}, Desc: "es version"},
	{Name: "node.role", Aliases: []string{"r", "role", "nodeRole"}, Desc: "node roles", Default: true},
	{Name: "master", Aliases: []string{"m"}, Desc: "*:current master", Default: true},
	{Name: "name", Aliases: []string{"n"}, Desc: "node name", Default: true},
}

func (s *Server) catNodes(w http.ResponseWriter, r *http.Request, _ params) error {
	var rows []cat.Row
	for _, v := range s.nodeViews(r) {
		host, _, _ := net.SplitHostPort(v.addr)
		master := "-"
		if v.self {
			master = "*"
		}
		rows = append(rows, cat.Row{"id": v.id[:4], "ip": host, "http_address": v.addr, "version": s.cfg.Version,
			"node.role": "dim", "master": master, "name": v.name})
	}
	return cat.Write(w, r.URL.Query(), catNodesCols, rows)
}

var catCountCols = []cat.Column{
	{Name: "epoch", Aliases: []string{"t", "time"}, Desc: "seconds since 1970-01-01 00:00:00", Default: true, Kind: cat.Number},
	{Name: "timestamp", Aliases: []string{"ts", "hms", "hhmmss"}, Desc: "time in HH:MM:SS", Default: true},
	{Name: "count", Aliases: []string{"dc", "docs.count", "docsCount"}, Desc: "the document count", Default: true, Kind: cat.Number},
}

func (s *Server) catCount(w http.ResponseWriter, r *http.Request, p params) error {
	names, err := s.resolve(p["index"], true)
	if err != nil {
		return err
	}
	var n uint64
	for _, name := range names {
		if sh := s.index(name); sh != nil {
			n += sh.Stats().Docs
		}
	}
	now := s.now()
	return cat.Write(w, r.URL.Query(), catCountCols, []cat.Row{{"epoch": now.Unix(), "timestamp": now.UTC().Format("15:04:05"), "count": n}})
}

var catAliasesCols = []cat.Column{
	{Name: "alias", Aliases: []string{"a"}, Desc: "alias name", Default: true},
	{Name: "index", Aliases: []string{"i", "idx"}, Desc: "index alias points to", Default: true},
	{Name: "filter", Aliases: []string{"f", "fi"}, Desc: "filter", Default: true},
	{Name: "routing.index", Aliases: []string{"ri", "routingIndex"}, Desc: "index routing", Default: true},
	{Name: "routing.search", Aliases: []string{"rs", "routingSearch"}, Desc: "search routing", Default: true},
	{Name: "is_write_index", Aliases: []string{"w", "isWriteIndex"}, Desc: "write index", Default: true},
}

func (s *Server) catAliases(w http.ResponseWriter, r *http.Request, p params) error {
	got, err := s.meta.GetAliases("", p["name"], s.indexNames())
	if err != nil && eserr.From(err).Type != "aliases_not_found_exception" {
		return err
	}
	var rows []cat.Row
	for idx, as := range got {
		for name, a := range as {
			filter, write := "-", "-"
			if len(a.Filter) > 0 {
				filter = "*"
			}
			if a.IsWriteIndex != nil {
				write = map[bool]string{true: "true", false: "false"}[*a.IsWriteIndex]
			}
			rows = append(rows, cat.Row{"alias": name, "index": idx, "filter": filter, "routing.index": orDash(a.IndexRouting),
				"routing.search": orDash(a.SearchRouting), "is_write_index": write})
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i]["alias"] != rows[j]["alias"] {
			return rows[i]["alias"].(string) < rows[j]["alias"].(string)
		}
		return rows[i]["index"].(string) < rows[j]["index"].(string)
	})
	return cat.Write(w, r.URL.Query(), catAliasesCols, rows)
}

var catTemplatesCols = []cat.Column{
	{Name: "name", Aliases: []string{"n"}, Desc: "template name", Default: true},
	{Name: "index_patterns", Aliases: []string{"t"}, Desc: "template index patterns", Default: true},
	{Name: "order", Aliases: []string{"o", "p"}, Desc: "template application order/priority number", Default: true, Kind: cat.Number},
	{Name: "version", Aliases: []string{"v"}, Desc: "version", Default: true},
	{Name: "composed_of", Aliases: []string{"c"}, Desc: "component templates comprising index template", Default: true},
}

func (s *Server) catTemplates(w http.ResponseWriter, r *http.Request, p params) error {
	ts, err := s.meta.GetTemplates(p["name"])
	if err != nil && eserr.From(err).Type != "resource_not_found_exception" {
		return err
	}
	var rows []cat.Row
	for _, t := range ts {
		var version any
		if t.IndexTemplate.Version != nil {
			version = *t.IndexTemplate.Version
		}
		rows = append(rows, cat.Row{"name": t.Name, "index_patterns": "[" + strings.Join(t.IndexTemplate.IndexPatterns, ", ") + "]",
			"order": t.IndexTemplate.Priority, "version": version, "composed_of": "[]"})
	}
	return cat.Write(w, r.URL.Query(), catTemplatesCols, rows)
}

// catHelp: GET /_cat lists the tables.
func (s *Server) catHelp(w http.ResponseWriter, _ *http.Request, _ params) error {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	_, _ = w.Write([]byte("=^.^=\n/_cat/aliases\n/_cat/aliases/{alias}\n/_cat/count\n/_cat/count/{index}\n/_cat/health\n/_cat/indices\n/_cat/indices/{index}\n/_cat/nodes\n/_cat/templates\n/_cat/templates/{name}\n"))
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
