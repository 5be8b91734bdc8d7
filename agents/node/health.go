package node

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"time"

	"paddock/agents/node/cat"
)

// groupView is the replication group as this node sees it, for
// _cluster/health and _cat/shards.
type groupView struct {
	role    string
	self    string
	primary string // "" when this node knows of no live primary
	copies  []string
	// state of each copy: STARTED (in sync), INITIALIZING (recovering)
	// or UNASSIGNED (failed).
	state map[string]string
}

func (g groupView) count(state string) int {
	n := 0
	for _, st := range g.state {
		if st == state {
			n++
		}
	}
	return n
}

// group is nil for a node without routing.
func (s *Server) group(ctx context.Context) *groupView {
	p := s.repl
	p.mu.Lock()
	rt := p.rt
	if rt == nil {
		p.mu.Unlock()
		return nil
	}
	g := &groupView{role: p.roleLocked(), self: rt.Self, primary: rt.Primary, state: map[string]string{}}
	for _, c := range rt.Copies {
		g.copies = append(g.copies, c.ID)
		g.state[c.ID] = "INITIALIZING"
		if rt.inSync(c.ID) {
			g.state[c.ID] = "STARTED"
		}
	}
	if g.role == RolePrimary {
		for id, t := range p.copies {
			if t.state == copyFailed {
				g.state[id] = "UNASSIGNED"
			}
		}
	}
	p.mu.Unlock()
	switch g.role {
	case RoleStale:
		g.primary = ""
	case RoleReplica, RoleRecovering:
		if !s.primaryAlive(ctx, rt) {
			g.primary = ""
		}
	}
	if g.primary != "" && !slices.Contains(g.copies, g.primary) {
		g.primary = ""
	}
	sort.Strings(g.copies)
	return g
}

// primaryAlive asks the primary's health endpoint (1 s); an answer is
// reused for a second (_cat/indices asks once per index).
func (s *Server) primaryAlive(ctx context.Context, rt *Routing) bool {
	url := rt.url(rt.Primary)
	if url == "" {
		return false
	}
	p := s.repl
	p.mu.Lock()
	if p.alive.url == url && time.Since(p.alive.at) < time.Second {
		ok := p.alive.ok
		p.mu.Unlock()
		return ok
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	code, _, err := s.call(ctx, http.MethodGet, url+HealthPath, nil)
	ok := err == nil && code == http.StatusOK
	p.mu.Lock()
	p.alive.url, p.alive.at, p.alive.ok = url, time.Now(), ok
	p.mu.Unlock()
	return ok
}

// routedHealth is health(expr) for a node with routing.
func (s *Server) routedHealth(g *groupView, names []string) Health {
	h := Health{Status: "green", Nodes: len(g.copies), ActivePercent: 100}
	started, initializing := g.count("STARTED"), g.count("INITIALIZING")
	for _, name := range names {
		sh := s.index(name)
		if sh == nil {
			continue
		}
		want := min(1+sh.Settings().Replicas, len(g.copies))
		if g.primary == "" {
			h.Status = "red"
			h.Unassigned += want
			continue
		}
		h.Primaries++
		h.Active += min(started, len(g.copies))
		h.Initializing += initializing
		if missing := want - started; missing > 0 {
			h.Unassigned += max(missing-initializing, 0)
			if h.Status == "green" {
				h.Status = "yellow"
			}
		}
	}
	if all := h.Active + h.Initializing + h.Unassigned; all > 0 {
		h.ActivePercent = 100 * float64(h.Active) / float64(all)
	}
	return h
}

var catShardsCols = []cat.Column{
	{Name: "index", Aliases: []string{"i", "idx"}, Desc: "index name", Default: true},
	{Name: "shard", Aliases: []string{"s", "sh"}, Desc: "shard name", Default: true, Kind: cat.Number},
	{Name: "prirep", Aliases: []string{"p", "pr", "primaryOrReplica"}, Desc: "primary or replica", Default: true},
	{Name: "state", Aliases: []string{"st"}, Desc: "shard state", Default: true},
	{Name: "docs", Aliases: []string{"d", "dc"}, Desc: "number of docs in shard", Default: true, Kind: cat.Number},
	{Name: "store", Aliases: []string{"sto"}, Desc: "store size of shard (how much disk it uses)", Default: true, Kind: cat.Bytes},
	{Name: "ip", Desc: "ip of node where it lives", Default: true},
	{Name: "node", Aliases: []string{"n"}, Desc: "name of node where it lives", Default: true},
	{Name: "seq_no.max", Aliases: []string{"sqm", "maxSeqNo"}, Desc: "max sequence number"},
	{Name: "seq_no.global_checkpoint", Aliases: []string{"sqg", "globalCheckpoint"}, Desc: "global checkpoint"},
}

// catShards: GET /_cat/shards[/{index}]: one row per index and copy.
func (s *Server) catShards(w http.ResponseWriter, r *http.Request, p params) error {
	names, err := s.resolve(p["index"], true)
	if err != nil {
		return err
	}
	g := s.group(r.Context())
	var rows []cat.Row
	for _, n := range names {
		sh := s.index(n)
		if sh == nil {
			continue
		}
		st, set, cp := sh.Stats(), sh.Settings(), sh.Checkpoint()
		row := func(prirep, state, node string, local bool) cat.Row {
			out := cat.Row{"index": n, "shard": 0, "prirep": prirep, "state": state, "node": node}
			if node != "" {
				out["ip"] = "127.0.0.1"
			}
			if state == "STARTED" || local {
				out["docs"], out["store"] = st.Docs, st.StoreBytes
			}
			if local {
				out["seq_no.max"], out["seq_no.global_checkpoint"] = cp.MaxSeqNo, cp.GlobalCheckpoint
			}
			return out
		}
		if g == nil {
			rows = append(rows, row("p", "STARTED", s.cfg.Name, true))
			for i := 0; i < set.Replicas; i++ {
				rows = append(rows, row("r", "UNASSIGNED", "", false))
			}
			continue
		}
		for _, id := range g.copies {
			prirep := "r"
			if id == g.primary || g.primary == "" && id == g.self && g.role == RolePrimary {
				prirep = "p"
			}
			rows = append(rows, row(prirep, g.state[id], id, id == g.self))
		}
		if g.primary == "" {
			rows = append(rows, row("p", "UNASSIGNED", "", false))
		}
	}
	return cat.Write(w, r.URL.Query(), catShardsCols, rows)
}
