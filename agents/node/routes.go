package node

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"paddock/agents/node/eserr"
)

// params are a route's path variables ({index}, {id}, ...), unescaped.
type params map[string]string

type handler func(w http.ResponseWriter, r *http.Request, p params) error

type route struct {
	methods []string
	pattern []string // literal segments, or {name}
	h       handler
}

// router is the node's one table of routes. A path that matches no
// pattern is a 400 "no handler found", a path that matches with another
// method a 405, as in Elasticsearch.
type router struct {
	routes []route
	// kibana: a kibana node answers only these and 404s the rest.
	kibana bool
}

const (
	get, head, post, put, del = http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete
)

func (rt *router) add(methods string, pattern string, h handler) {
	var segs []string
	if p := strings.Trim(pattern, "/"); p != "" {
		segs = strings.Split(p, "/")
	}
	rt.routes = append(rt.routes, route{methods: strings.Split(methods, ","), pattern: segs, h: h})
}

// buildRoutes is the table. Variables match any segment except a
// literal of another route at the same place: {index} never matches a
// name starting with "_" other than _all.
func (s *Server) buildRoutes() *router {
	rt := &router{kibana: s.cfg.Kind == KindKibana}
	rt.add("GET,HEAD", "/", s.root)
	rt.add("GET,HEAD", HealthPath, s.paddockHealth)
	rt.add("GET", MetricsPath, s.metrics)
	rt.add("GET", ReplicationPath, s.getReplication)
	rt.add("PUT", ReplicationPath, s.putReplication)
	rt.add("GET", ReplicationEventsPath, s.replicationEvents)
	rt.add("POST", ReplicationOpsPath, s.replicaOps)
	rt.add("GET", ReplicationOpsPath, s.listReplicaOps)
	rt.add("PUT", ReplicationMetadataPath, s.replicaMetadata)
	rt.add("POST", ReplicationResetPath, s.replicaReset)
	rt.add("POST", ReplicationLeavePath, s.replicaLeave)
	s.securityRoutes(rt)
	if rt.kibana {
		rt.add("GET", "/api/status", s.kibanaStatus)
		return rt
	}
	rt.add("GET", "/_cluster/health", s.clusterHealth)
	rt.add("GET", "/_cluster/health/{index}", s.clusterHealth)

	// Documents.
	rt.add("PUT,POST", "/{index}/_doc/{id}", s.onPrimary(s.indexDoc))
	rt.add("POST", "/{index}/_doc", s.onPrimary(s.indexDoc))
	rt.add("GET,HEAD", "/{index}/_doc/{id}", s.inSyncRead(s.getDoc))
	rt.add("DELETE", "/{index}/_doc/{id}", s.onPrimary(s.deleteDoc))
	rt.add("PUT,POST", "/{index}/_create/{id}", s.onPrimary(s.createDoc))
	rt.add("GET,HEAD", "/{index}/_source/{id}", s.inSyncRead(s.getSource))
	rt.add("POST", "/{index}/_update/{id}", s.onPrimary(s.updateDoc))
	rt.add("GET,POST", "/_mget", s.inSyncRead(s.mget))
	rt.add("GET,POST", "/{index}/_mget", s.inSyncRead(s.mget))
	rt.add("POST,PUT", "/_bulk", s.onPrimary(s.bulk))
	rt.add("POST,PUT", "/{index}/_bulk", s.onPrimary(s.bulk))
	rt.add("POST", "/{index}/_delete_by_query", s.onPrimary(s.deleteByQuery))
	rt.add("POST", "/{index}/_update_by_query", s.onPrimary(s.updateByQuery))

	// Search.
	rt.add("GET,POST", "/_search", s.inSyncRead(s.search))
	rt.add("GET,POST", "/{index}/_search", s.inSyncRead(s.search))
	rt.add("GET,POST", "/_count", s.inSyncRead(s.count))
	rt.add("GET,POST", "/{index}/_count", s.inSyncRead(s.count))
	rt.add("GET,POST", "/_msearch", s.inSyncRead(s.msearch))
	rt.add("GET,POST", "/{index}/_msearch", s.inSyncRead(s.msearch))
	rt.add("GET,POST", "/_search/scroll", s.scroll)
	rt.add("GET,POST", "/_search/scroll/{scroll_id}", s.scroll)
	rt.add("DELETE", "/_search/scroll", s.clearScroll)
	rt.add("DELETE", "/_search/scroll/{scroll_id}", s.clearScroll)

	// Indices.
	rt.add("PUT", "/{index}", s.metaWrite(s.createIndex))
	rt.add("DELETE", "/{index}", s.metaWrite(s.deleteIndex))
	rt.add("GET", "/{index}", s.getIndex)
	rt.add("HEAD", "/{index}", s.indexExists)
	rt.add("GET", "/_mapping", s.getMapping)
	rt.add("GET", "/{index}/_mapping", s.getMapping)
	rt.add("PUT,POST", "/{index}/_mapping", s.metaWrite(s.putMapping))
	rt.add("GET", "/_settings", s.getSettings)
	rt.add("GET", "/{index}/_settings", s.getSettings)
	rt.add("PUT", "/{index}/_settings", s.metaWrite(s.putSettings))
	rt.add("POST,GET", "/_refresh", s.everywhere(s.refresh))
	rt.add("POST,GET", "/{index}/_refresh", s.everywhere(s.refresh))
	rt.add("POST,GET", "/_flush", s.everywhere(s.refresh))
	rt.add("POST,GET", "/{index}/_flush", s.everywhere(s.refresh))
	rt.add("GET", "/_stats", s.inSyncRead(s.stats))
	rt.add("GET", "/{index}/_stats", s.inSyncRead(s.stats))

	// Aliases and index templates.
	rt.add("POST", "/_aliases", s.metaWrite(s.updateAliases))
	rt.add("PUT,POST", "/{index}/_alias/{name}", s.metaWrite(s.putAlias))
	rt.add("PUT,POST", "/{index}/_aliases/{name}", s.metaWrite(s.putAlias))
	rt.add("DELETE", "/{index}/_alias/{name}", s.metaWrite(s.deleteAlias))
	rt.add("DELETE", "/{index}/_aliases/{name}", s.metaWrite(s.deleteAlias))
	rt.add("GET,HEAD", "/_alias", s.getAliases)
	rt.add("GET,HEAD", "/_alias/{name}", s.getAliases)
	rt.add("GET,HEAD", "/{index}/_alias", s.getAliases)
	rt.add("GET,HEAD", "/{index}/_alias/{name}", s.getAliases)
	rt.add("PUT,POST", "/_index_template/{name}", s.metaWrite(s.putTemplate))
	rt.add("GET,HEAD", "/_index_template", s.getTemplates)
	rt.add("GET,HEAD", "/_index_template/{name}", s.getTemplates)
	rt.add("DELETE", "/_index_template/{name}", s.metaWrite(s.deleteTemplate))

	// Cluster answers.
	rt.add("GET", "/_nodes", s.nodes)
	rt.add("GET", "/_nodes/{metric}", s.nodes)
	rt.add("GET", "/_cat", s.catHelp)
	rt.add("GET", "/_cat/indices", s.inSyncRead(s.catIndices))
	rt.add("GET", "/_cat/indices/{index}", s.inSyncRead(s.catIndices))
	rt.add("GET", "/_cat/health", s.catHealth)
	rt.add("GET", "/_cat/nodes", s.catNodes)
	rt.add("GET", "/_cat/shards", s.catShards)
	rt.add("GET", "/_cat/shards/{index}", s.catShards)
	rt.add("GET", "/_cat/count", s.inSyncRead(s.catCount))
	rt.add("GET", "/_cat/count/{index}", s.inSyncRead(s.catCount))
	rt.add("GET", "/_cat/aliases", s.catAliases)
	rt.add("GET", "/_cat/aliases/{name}", s.catAliases)
	rt.add("GET", "/_cat/templates", s.catTemplates)
	rt.add("GET", "/_cat/templates/{name}", s.catTemplates)

	// Snapshots (the constructor's migrations and restores).
	rt.add("GET", "/_snapshot", s.getRepos)
	rt.add("PUT,POST", "/_snapshot/{repo}", s.putRepo)
	rt.add("GET", "/_snapshot/{repo}", s.getRepos)
	rt.add("DELETE", "/_snapshot/{repo}", s.deleteRepo)
	rt.add("PUT,POST", "/_snapshot/{repo}/{snapshot}", s.createSnapshot)
	rt.add("GET", "/_snapshot/{repo}/{snapshot}", s.getSnapshots)
	rt.add("DELETE", "/_snapshot/{repo}/{snapshot}", s.deleteSnapshot)
	rt.add("POST", "/_snapshot/{repo}/{snapshot}/_restore", s.restoreWrite(s.restore))
	rt.add("GET", "/_snapshot/{repo}/{snapshot}/_status", s.snapshotStatus)
	return rt
}

// match reports whether a route's pattern fits the path segments, with
// its variables.
func (rt *router) match(ro route, segs []string) (params, bool) {
	if len(ro.pattern) != len(segs) {
		return nil, false
	}
	var p params
	for i, pat := range ro.pattern {
		seg := segs[i]
		if strings.HasPrefix(pat, "{") {
			name := pat[1 : len(pat)-1]
			if name == "index" && strings.HasPrefix(seg, "_") && seg != "_all" {
				return nil, false
			}
			if seg == "" {
				return nil, false
			}
			if p == nil {
				p = params{}
			}
			v, err := url.PathUnescape(seg)
			if err != nil {
				return nil, false
			}
			p[name] = v
			continue
		}
		if pat != seg {
			return nil, false
		}
	}
	if p == nil {
		p = params{}
	}
	return p, true
}

func (rt *router) serve(w http.ResponseWriter, r *http.Request) error {
	path := r.URL.EscapedPath()
	var segs []string
	if t := strings.Trim(path, "/"); t != "" {
		segs = strings.Split(t, "/")
	}
	var allowed []string
	for _, ro := range rt.routes {
		p, ok := rt.match(ro, segs)
		if !ok {
			continue
		}
		if slices.Contains(ro.methods, r.Method) {
			return ro.h(w, r, p)
		}
		for _, m := range ro.methods {
			if !slices.Contains(allowed, m) {
				allowed = append(allowed, m)
			}
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ","))
		return methodNotAllowed(r, allowed)
	}
	if rt.kibana {
		return errf(http.StatusNotFound, "resource_not_found_exception", "this is a kibana node: no handler for [%s %s]", r.Method, r.URL.Path)
	}
	return eserr.BadRequest("no handler found for uri [%s] and method [%s]", r.URL.RequestURI(), r.Method)
}
