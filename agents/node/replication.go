package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"paddock/agents/node/eserr"
	"paddock/agents/node/mapping"
	"paddock/agents/node/shard"
)

// Replication (issue 12, docs/architecture.md "Replication"): the
// platform's authority (the constructor leader) pushes a routing; the
// primary it names assigns seq_nos, sends every operation to the other
// copies and acknowledges a write only when every in-sync copy holds it.
// A copy it cannot reach is reported through the events long poll and
// the write is held until a routing without that copy arrives. Copies
// outside in_sync are recovered by the primary (operation-based from
// the op log, else a full copy) while writes go on.

// Roles of a node in its replication group.
const (
	RolePrimary    = "primary"
	RoleReplica    = "replica"
	RoleRecovering = "recovering"
	RoleStale      = "stale"
	RoleStandalone = "standalone"
)

// Paths of the replication protocol.
const (
	ReplicationPath         = "/_paddock/replication"
	ReplicationEventsPath   = "/_paddock/replication/events"
	ReplicationOpsPath      = "/_paddock/replication/ops"
	ReplicationMetadataPath = "/_paddock/replication/metadata"
	ReplicationResetPath    = "/_paddock/replication/reset"
	ReplicationLeavePath    = "/_paddock/replication/leave"
)

// ForwardedHeader marks a request a non-primary forwarded to the
// primary: it is never forwarded again.
const ForwardedHeader = "X-Paddock-Forwarded"

// Copy states on the primary.
const (
	copyInSync     = "in_sync"
	copyRecovering = "recovering"
	copyTracking   = "tracking" // recovered, waited for, not yet in in_sync
	copyFailed     = "failed"
)

// Routing is the replication routing the platform pushes
// (PUT /_paddock/replication).
type Routing struct {
	Term    int64      `json:"term"`
	Version int64      `json:"version"`
	Self    string     `json:"self"`
	Primary string     `json:"primary"`
	Copies  []CopyAddr `json:"copies"`
	InSync  []string   `json:"in_sync"`
}

// CopyAddr is one copy of the group and where to reach it.
type CopyAddr struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Via is the allocator tunnel (host:port) in front of the copy when
	// its URL host is <id>.peer.paddock: the node reaches it through its
	// own allocator's egress (egress.go).
	Via string `json:"via,omitempty"`
}

func (rt *Routing) validate() error {
	if rt.Self == "" {
		return eserr.BadRequest("routing has no [self]: say which copy this node is")
	}
	if rt.Term < 1 {
		return eserr.BadRequest("routing [term] is %d: terms start at 1", rt.Term)
	}
	seen := map[string]bool{}
	for _, c := range rt.Copies {
		if c.ID == "" {
			return eserr.BadRequest("routing has a copy without an [id]")
		}
		if seen[c.ID] {
			return eserr.BadRequest("routing lists copy [%s] twice", c.ID)
		}
		seen[c.ID] = true
		if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
			return eserr.BadRequest("copy [%s] url %q must be an http:// or https:// URL", c.ID, c.URL)
		}
		if peerHost(c.URL) != "" && c.Via == "" {
			return eserr.BadRequest("copy [%s] url %q is reached through the allocators but has no [via] (its allocator's tunnel)", c.ID, c.URL)
		}
	}
	if !slices.Contains(rt.InSync, rt.Primary) {
		return eserr.BadRequest("routing primary [%s] is not in [in_sync] %v: a primary must be in sync", rt.Primary, rt.InSync)
	}
	for _, id := range rt.InSync {
		if !seen[id] {
			return eserr.BadRequest("in_sync copy [%s] is not in [copies]", id)
		}
	}
	return nil
}

func (rt *Routing) url(id string) string {
	for _, c := range rt.Copies {
		if c.ID == id {
			return strings.TrimRight(c.URL, "/")
		}
	}
	return ""
}

func (rt *Routing) inSync(id string) bool { return slices.Contains(rt.InSync, id) }

func (rt *Routing) hasCopy(id string) bool { return rt.url(id) != "" }

// Event is one entry of the primary's events long poll.
type Event struct {
	Seq    int64  `json:"seq"`
	Kind   string `json:"kind"` // failed or in_sync
	Copy   string `json:"copy"`
	Term   int64  `json:"term"`
	Reason string `json:"reason"`
}

// copyTrack is the primary's view of one other copy.
type copyTrack struct {
	id    string
	url   atomic.Pointer[string] // changes with the routing
	state string                 // under repl.mu
	err   string
	// refused: err is an answer of the copy that retrying will not
	// change (refusal); the view says so, and the authority stops
	// waiting for this copy's recovery.
	refused bool
	// metaSent is the metadata version the copy holds.
	metaSent atomic.Int64
	// dirty: a live operation did not reach the recovering copy.
	dirty      atomic.Bool
	checkpoint atomic.Int64
	cancel     context.CancelFunc
	reported   bool // a failed event was sent for this term
	// batches queue live writes' operations for the next call.
	batches copyBatches
}

func (t *copyTrack) base() string {
	if u := t.url.Load(); u != nil {
		return *u
	}
	return ""
}

type ticket struct {
	index string
	bound int64
}

// repl is a node's replication state.
type repl struct {
	mu      sync.Mutex
	rt      *Routing
	term    int64         // highest term seen (routing, or a newer primary's ops)
	changed chan struct{} // closed and replaced on every change
	copies  map[string]*copyTrack
	events  []Event
	evNext  int64
	evCh    chan struct{}
	metaVer int64 // the metadata version (primary)
	// ready is closed when no promotion is in progress: writes wait
	// for it (the new primary first steps past its copies' seq_nos).
	ready   chan struct{}
	metaGot [2]int64
	// unconfirmed: this copy's own routing says it is an in-sync
	// replica, but it may lack acknowledged writes: it restarted (the
	// primary may have written without it meanwhile), or the primary
	// reset one of its indices to copy it again. Reads go to the primary
	// until a routing of at least confirm (term, version) lists it in
	// sync again.
	unconfirmed bool
	confirm     [2]int64
	// inflight: per index, the writes being replicated (for the global
	// checkpoint).
	inflight map[string]map[*ticket]struct{}

	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	client *http.Client // no overall timeout: held writes wait up to holdTimeout
	// alive caches the last probe of the primary (health on a replica).
	alive struct {
		url string
		at  time.Time
		ok  bool
	}
	// holdTimeout bounds a write held for a failed copy (30 s).
	holdTimeout time.Duration
	// sendTimeout bounds one replication of a write to one copy.
	sendTimeout time.Duration
}

func newRepl(base *http.Client) *repl {
	ctx, cancel := context.WithCancel(context.Background())
	var tr http.RoundTripper
	if base != nil {
		tr = base.Transport
	}
	ready := make(chan struct{})
	close(ready)
	return &repl{changed: make(chan struct{}), evCh: make(chan struct{}), evNext: 1, ready: ready, copies: map[string]*copyTrack{},
		inflight: map[string]map[*ticket]struct{}{}, ctx: ctx, stop: cancel, client: &http.Client{Transport: tr},
		holdTimeout: 30 * time.Second, sendTimeout: 5 * time.Second}
}

func (p *repl) routing() *Routing {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rt
}

// roleLocked is this node's role (p.mu held).
func (p *repl) roleLocked() string {
	rt := p.rt
	switch {
	case rt == nil:
		return RoleStandalone
	case p.term > rt.Term:
		return RoleStale // a newer primary exists: wait for its routing
	case rt.Primary == rt.Self:
		return RolePrimary
	case rt.inSync(rt.Self) && !p.unconfirmed:
		return RoleReplica
	case rt.hasCopy(rt.Self):
		return RoleRecovering
	}
	return RoleStale
}

// leftGroup reports whether the node holds a routing that does not
// list it among the copies (it was taken out of the group).
func (p *repl) leftGroup() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rt != nil && !p.rt.hasCopy(p.rt.Self)
}

func (p *repl) role() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.roleLocked()
}

// replicated reports whether a routing was pushed (else standalone or
// the legacy peers).
func (s *Server) replicated() bool { return s.repl.routing() != nil }

func (p *repl) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *repl) emitLocked(kind, copy, reason string) {
	term := int64(0)
	if p.rt != nil {
		term = p.rt.Term
	}
	p.events = append(p.events, Event{Seq: p.evNext, Kind: kind, Copy: copy, Term: term, Reason: reason})
	p.evNext++
	if len(p.events) > 1000 {
		p.events = p.events[len(p.events)-1000:]
	}
	close(p.evCh)
	p.evCh = make(chan struct{})
}

// --- routing ---

func (s *Server) getReplication(w http.ResponseWriter, r *http.Request, _ params) error {
	p := s.repl
	p.mu.Lock()
	out := map[string]any{"role": p.roleLocked(), "term": p.term, "version": int64(0)}
	if p.rt != nil {
		out["self"], out["version"], out["primary"] = p.rt.Self, p.rt.Version, p.rt.Primary
		out["routing_term"], out["in_sync"] = p.rt.Term, p.rt.InSync
	} else {
		out["self"] = s.cfg.Name
	}
	if p.roleLocked() == RolePrimary {
		copies := map[string]any{}
		for id, t := range p.copies {
			c := map[string]any{"state": t.state, "checkpoint": t.checkpoint.Load()}
			if t.state == copyTracking {
				c["state"] = copyRecovering
			}
			if t.err != "" {
				c["error"] = t.err
			}
			if t.refused {
				c["refused"] = true
			}
			copies[id] = c
		}
		copies[p.rt.Self] = map[string]any{"state": copyInSync}
		out["copies"] = copies
	}
	p.mu.Unlock()
	indices := map[string]any{}
	for _, n := range s.indexNames() {
		if sh := s.index(n); sh != nil {
			cp := sh.Checkpoint()
			indices[n] = map[string]any{"local_checkpoint": cp.MaxSeqNo, "global_checkpoint": cp.GlobalCheckpoint, "max_seq_no": cp.MaxSeqNo,
				"last_op_term": cp.LastOpTerm, "op_log_start": cp.OpLogStart, "uuid": sh.Settings().UUID}
		}
	}
	out["indices"] = indices
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) putReplication(w http.ResponseWriter, r *http.Request, _ params) error {
	var rt Routing
	if err := decodeBody(r, &rt); err != nil {
		return err
	}
	if err := rt.validate(); err != nil {
		return err
	}
	applied, err := s.SetRouting(&rt)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true, "applied": applied, "role": s.repl.role()})
	return nil
}

// SetRouting applies a routing (kept across restarts). A routing older
// than the one held (lower term, or same term and lower version) is
// ignored: false.
func (s *Server) SetRouting(rt *Routing) (bool, error) {
	p := s.repl
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur := p.rt; cur != nil && (rt.Term < cur.Term || rt.Term == cur.Term && rt.Version < cur.Version) {
		return false, nil
	}
	b, _ := json.Marshal(rt)
	if err := s.db.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyRouting, b) }); err != nil {
		return false, fmt.Errorf("persist routing: %w", err)
	}
	s.applyRoutingLocked(rt)
	return true, nil
}

// applyRoutingLocked makes rt current (p.mu held).
func (s *Server) applyRoutingLocked(rt *Routing) {
	p := s.repl
	was := p.roleLocked()
	oldTerm := int64(0)
	if p.rt != nil {
		oldTerm = p.rt.Term
	}
	p.rt = rt
	if p.unconfirmed && rt.inSync(rt.Self) && (rt.Term > p.confirm[0] || rt.Term == p.confirm[0] && rt.Version >= p.confirm[1]) {
		p.unconfirmed = false
	}
	if s.egress != nil {
		s.egress.setRouting(rt)
	}
	p.term = max(p.term, rt.Term)
	role := p.roleLocked()
	if role != RolePrimary {
		for id, t := range p.copies {
			if t.cancel != nil {
				t.cancel()
			}
			delete(p.copies, id)
		}
		p.notifyLocked()
		return
	}
	if was != RolePrimary {
		// A promotion: write with the new term; every copy gets the
		// metadata again.
		p.metaVer = max(p.metaVer+1, time.Now().UnixNano())
		for id, t := range p.copies {
			if t.cancel != nil {
				t.cancel()
			}
			delete(p.copies, id)
		}
		s.log.Info("primary of the replication group", "term", rt.Term)
		defer s.startPromotionLocked(rt)
	}
	for _, n := range s.indexNames() {
		if sh := s.index(n); sh != nil {
			if err := sh.SetTerm(rt.Term); err != nil {
				s.log.Error("set primary term", "index", n, "err", err)
			}
		}
	}
	for id, t := range p.copies {
		if !rt.hasCopy(id) {
			if t.cancel != nil {
				t.cancel()
			}
			delete(p.copies, id)
		}
	}
	for _, c := range rt.Copies {
		if c.ID == rt.Self {
			continue
		}
		t := p.copies[c.ID]
		if t == nil {
			t = &copyTrack{id: c.ID, state: copyRecovering}
			t.checkpoint.Store(-1)
			p.copies[c.ID] = t
			if rt.inSync(c.ID) {
				t.state = copyInSync
			}
		}
		u := strings.TrimRight(c.URL, "/")
		t.url.Store(&u)
		switch {
		case rt.inSync(c.ID) && t.state != copyFailed:
			t.state, t.err, t.refused = copyInSync, "", false
		case rt.inSync(c.ID):
			// Failed and still in in_sync: writes stay held. A new term
			// with this node still primary (the authority moved the term
			// on, as after a ZooKeeper restore) makes the earlier failed
			// event stale: ask again under the new term.
			if rt.Term != oldTerm {
				t.reported = true
				p.emitLocked("failed", t.id, t.err)
			}
		case t.state == copyTracking:
		default:
			if t.state != copyRecovering || t.cancel == nil {
				t.state = copyRecovering
				s.startRecoveryLocked(t)
			}
		}
		if !rt.inSync(c.ID) {
			t.reported = false
		}
	}
	p.notifyLocked()
}

// loadRouting restores the persisted routing (NewServer).
func (s *Server) loadRouting() error {
	var rt *Routing
	err := s.db.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta).Get(keyRouting); b != nil {
			rt = &Routing{}
			return json.Unmarshal(b, rt)
		}
		return nil
	})
	if err != nil || rt == nil {
		return err
	}
	s.repl.mu.Lock()
	defer s.repl.mu.Unlock()
	s.applyRoutingLocked(rt)
	if rt.Primary != rt.Self && rt.inSync(rt.Self) {
		// A replica that restarted may have missed writes the primary
		// acknowledged without it: its reads go to the primary until the
		// platform pushes a routing (the same one or newer) that still
		// lists it in sync.
		s.repl.unconfirmed, s.repl.confirm = true, [2]int64{rt.Term, rt.Version}
		s.log.Info("replica restarted: reads go to the primary until the platform confirms this copy is in sync", "term", rt.Term, "version", rt.Version)
	}
	return nil
}

// unconfirmLocked makes reads go to the primary until a routing newer
// than the one held lists this copy in sync (p.mu held).
func (p *repl) unconfirmLocked() {
	if p.rt == nil {
		return
	}
	p.unconfirmed, p.confirm = true, [2]int64{p.rt.Term, p.rt.Version + 1}
}

// --- events ---

func (s *Server) replicationEvents(w http.ResponseWriter, r *http.Request, _ params) error {
	q := r.URL.Query()
	after := int64(0)
	if v := q.Get("after"); v != "" {
		if _, err := fmt.Sscan(v, &after); err != nil || after < 0 {
			return eserr.BadRequest("[after] must be a non-negative number (the previous answer's next), got [%s]", v)
		}
	}
	wait := time.Duration(0)
	if v := q.Get("wait"); v != "" {
		d, err := shard.ParseDuration(v)
		if err != nil {
			d, err = time.ParseDuration(v) // Go's form ("1m0s") too
		}
		if err != nil || d < 0 {
			return eserr.BadRequest("[wait] must be a duration such as 25s, got [%s]", v)
		}
		wait = min(d, time.Minute)
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	p := s.repl
	for {
		p.mu.Lock()
		if after > p.evNext {
			after = 0 // the node restarted: its events start again at 1
		}
		var out []Event
		for _, e := range p.events {
			if e.Seq >= after {
				out = append(out, e)
			}
		}
		next, ch := p.evNext, p.evCh
		p.mu.Unlock()
		if len(out) > 0 || wait == 0 {
			if out == nil {
				out = []Event{}
			}
			writeJSON(w, http.StatusOK, map[string]any{"events": out, "next": next})
			return nil
		}
		select {
		case <-ch:
		case <-deadline.C:
			wait = 0
		case <-r.Context().Done():
			return r.Context().Err()
		}
	}
}

// --- the write path on the primary ---

// replication is a replicated write's outcome for _shards.
type replication struct{ total, ok, failed int }

// plus adds the legacy peers' outcome.
func (rp replication) plus(ok, failed int) replication {
	rp.total += ok + failed
	rp.ok += ok
	rp.failed += failed
	return rp
}

// begin registers a write about to be done on the primary.
func (p *repl) begin(sh *shard.Shard) *ticket {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := &ticket{index: sh.Name(), bound: sh.MaxSeqNo() + 1}
	m := p.inflight[t.index]
	if m == nil {
		m = map[*ticket]struct{}{}
		p.inflight[t.index] = m
	}
	m[t] = struct{}{}
	return t
}

func (p *repl) end(t *ticket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inflight[t.index], t)
}

// globalCheckpoint: every seq_no up to it was written by a request
// that finished replicating (to every in-sync copy).
func (p *repl) globalCheckpoint(sh *shard.Shard) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := sh.MaxSeqNo()
	for t := range p.inflight[sh.Name()] {
		g = min(g, t.bound-1)
	}
	sh.SetGlobalCheckpoint(g)
	return g
}

// writeShard applies ops on the shard and, on a primary, replicates the
// writes they made to the group before returning.
func (s *Server) writeShard(ctx context.Context, sh *shard.Shard, ops []shard.Op, refresh string) ([]shard.Result, replication, error) {
	if !s.replicated() {
		res, err := sh.Write(ctx, ops)
		return res, replication{total: 1, ok: 1}, err
	}
	if role := s.repl.role(); role != RolePrimary {
		return nil, replication{}, unavailable("this node is no longer the primary (role %s): retry the request", role)
	}
	if err := s.repl.waitReady(ctx); err != nil {
		return nil, replication{}, err
	}
	term, primary := s.repl.primaryTerm()
	if !primary {
		return nil, replication{}, unavailable("this node is no longer the primary: retry the request")
	}
	tk := s.repl.begin(sh)
	defer s.repl.end(tk)
	res, err := sh.Write(ctx, ops)
	if err != nil {
		return nil, replication{}, err
	}
	var rops []shard.ReplicaOp
	for i, r := range res {
		if op, ok := shard.FromResult(ops[i].ID, r); ok {
			rops = append(rops, op)
		}
	}
	rp, err := s.replicateOps(ctx, sh, rops, refresh, term)
	return res, rp, err
}

// primaryTerm is the routing's term and whether this node is its primary.
func (p *repl) primaryTerm() (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.roleLocked() != RolePrimary {
		return 0, false
	}
	return p.rt.Term, true
}

// errNodeClosed: a request that would open an index arrived while the
// node shuts down.
func errNodeClosed() *eserr.Error {
	return unavailable("the node is shutting down: retry the request on another node")
}

func unavailable(format string, args ...any) *eserr.Error {
	return eserr.New(http.StatusServiceUnavailable, "unavailable_shards_exception", format, args...)
}

type opsRequest struct {
	Term             int64             `json:"term"`
	Index            string            `json:"index"`
	GlobalCheckpoint int64             `json:"global_checkpoint"`
	Refresh          string            `json:"refresh,omitempty"`
	Ops              []shard.ReplicaOp `json:"ops"`
}

type copyTarget struct {
	t    *copyTrack
	wait bool // in sync (or recovered): the write waits for it
	sync bool // in the routing's in_sync
	dead bool // failed already: hold without sending
}

// targets are the copies a write goes to, with the routing's term.
func (p *repl) targets() ([]copyTarget, int64, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []copyTarget
	for _, t := range p.copies {
		tg := copyTarget{t: t, sync: p.rt.inSync(t.id)}
		switch t.state {
		case copyInSync, copyTracking:
			tg.wait = true
		case copyFailed:
			tg.wait, tg.dead = tg.sync, true
		}
		out = append(out, tg)
	}
	return out, p.rt.Term, len(p.rt.Copies)
}

// replicateOps sends a write's operations to every copy and waits for
// the in-sync ones; a copy that fails is reported and the write held.
//
// term is the one the write began in: when the routing moved on in
// between (this node deposed, its copies forgotten), the write is not
// acknowledged: no copy was asked for it.
func (s *Server) replicateOps(ctx context.Context, sh *shard.Shard, rops []shard.ReplicaOp, refresh string, began int64) (replication, error) {
	targets, term, total := s.repl.targets()
	if now, primary := s.repl.primaryTerm(); !primary || now != began || term != began {
		return replication{total: max(total, 1), ok: 1}, unavailable("the routing changed during the write (term %d, then %d; primary here: %v): it is not acknowledged: retry the request", began, now, primary)
	}
	rp := replication{total: max(total, 1), ok: 1}
	if len(rops) == 0 || len(targets) == 0 {
		return rp, nil
	}
	gcp := s.repl.globalCheckpoint(sh)
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		if tg.dead {
			errs[i] = fmt.Errorf("copy [%s] failed earlier: %s", tg.t.id, tg.t.err)
			continue
		}
		// Copies not (yet) in in_sync must not take the global
		// checkpoint: they may lack operations below it.
		k := batchKey{index: sh.Name(), term: term, synced: tg.sync, refresh: refresh}
		if !tg.wait {
			// Recovering: sent, not waited for; a miss restarts its
			// recovery's catch-up.
			s.repl.wg.Add(1)
			go func(t *copyTrack) {
				defer s.repl.wg.Done()
				if err := s.sendBatched(s.repl.ctx, t, k, gcp, rops); err != nil {
					t.dirty.Store(true)
				}
			}(tg.t)
			continue
		}
		wg.Add(1)
		go func(i int, t *copyTrack) {
			defer wg.Done()
			errs[i] = s.sendBatched(ctx, t, k, gcp, rops)
		}(i, tg.t)
	}
	wg.Wait()
	var held []string
	for i, tg := range targets {
		if !tg.wait {
			continue
		}
		if errs[i] == nil {
			rp.ok++
			continue
		}
		rp.failed++
		if s.copyFailed(tg.t, term, errs[i]) {
			held = append(held, tg.t.id)
		}
	}
	if len(held) > 0 {
		if err := s.holdFor(ctx, term, held); err != nil {
			return rp, err
		}
	}
	return rp, nil
}

// copyFailed records that a copy missed a write; true when the write
// must be held until the routing drops the copy from in_sync.
func (s *Server) copyFailed(t *copyTrack, term int64, err error) bool {
	p := s.repl
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rt == nil || p.rt.Term != term || p.copies[t.id] != t {
		return true // the routing moved on: holdFor sorts it out
	}
	t.setErr(err)
	if !p.rt.inSync(t.id) {
		// Recovered but not yet in in_sync: recover it again.
		if t.state == copyTracking {
			t.state = copyRecovering
			t.dirty.Store(true)
		}
		return false
	}
	if t.state != copyFailed {
		s.log.Warn("in-sync copy failed a write: asking to drop it from in_sync", "copy", t.id, "term", term, "err", err)
	}
	t.state = copyFailed
	if !t.reported {
		t.reported = true
		p.emitLocked("failed", t.id, err.Error())
	}
	return true
}

// holdFor waits until the routing no longer holds the failed copies in
// in_sync (the write may then be acknowledged), or fails the write: the
// node is no longer primary, or holdTimeout passed.
func (s *Server) holdFor(ctx context.Context, term int64, failed []string) error {
	p := s.repl
	timer := time.NewTimer(p.holdTimeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		rt, ch, role, seen := p.rt, p.changed, p.roleLocked(), p.term
		p.mu.Unlock()
		if role != RolePrimary {
			return unavailable("the write is applied on this node but not acknowledged: it is no longer the primary (term %d, now %d)", term, seen)
		}
		need := false
		for _, id := range failed {
			if rt.inSync(id) {
				need = true
			}
		}
		if !need {
			return nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return unavailable("[%s] copies %v failed and are still in sync after %s: the write is applied on the primary but not acknowledged", rt.Self, failed, p.holdTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sendOps posts one operations request to a copy, pushing metadata
// first when the copy lacks it, with retries within sendTimeout.
func (s *Server) sendOps(ctx context.Context, t *copyTrack, index string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, s.repl.sendTimeout)
	defer cancel()
	var err error
	for attempt, backoff := 0, 25*time.Millisecond; ; attempt, backoff = attempt+1, min(backoff*3, time.Second) {
		if err = s.ensureMetadata(ctx, t); err == nil {
			var code int
			var resp []byte
			code, resp, err = s.call(ctx, http.MethodPost, t.base()+ReplicationOpsPath, body)
			if err == nil {
				switch {
				case code == http.StatusOK:
					var ans struct {
						LocalCheckpoint int64 `json:"local_checkpoint"`
					}
					_ = json.Unmarshal(resp, &ans)
					t.checkpoint.Store(max(t.checkpoint.Load(), ans.LocalCheckpoint))
					return nil
				case code == http.StatusConflict && bytes.Contains(resp, []byte("stale_primary")):
					s.staleTerm(resp)
					return fmt.Errorf("copy [%s] has a newer primary term: %s", t.id, bytes.TrimSpace(resp))
				case code == http.StatusNotFound:
					t.metaSent.Store(0) // it lacks the index: push metadata again
					err = fmt.Errorf("copy [%s] lacks index [%s]", t.id, index)
				default:
					err = refused(code, fmt.Errorf("copy [%s] answered %d: %s", t.id, code, bytes.TrimSpace(resp)))
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-time.After(backoff):
		}
	}
}

// staleTerm learns from a copy's answer that a newer term exists: this
// node is no longer primary and waits for the routing.
func (s *Server) staleTerm(resp []byte) {
	var ans struct {
		Error struct {
			Term int64 `json:"term"`
		} `json:"error"`
	}
	_ = json.Unmarshal(resp, &ans)
	p := s.repl
	p.mu.Lock()
	defer p.mu.Unlock()
	if ans.Error.Term > p.term {
		s.log.Warn("a copy holds a newer primary term: stepping down until the routing arrives", "term", p.term, "newer", ans.Error.Term)
		p.term = ans.Error.Term
		p.notifyLocked()
	}
}

// call makes a platform-authenticated request to another node.
func (s *Server) call(ctx context.Context, method, url string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	s.sec.platform().SetAuth(req)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.repl.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxContentLength))
	return resp.StatusCode, b, err
}

// --- the copy side ---

// checkTerm refuses a request from a primary of an older term and
// adopts a newer one.
func (s *Server) checkTerm(term int64) error {
	p := s.repl
	p.mu.Lock()
	defer p.mu.Unlock()
	if term < p.term {
		e := errf(http.StatusConflict, "stale_primary", "primary term [%d] is older than this copy's [%d]", term, p.term)
		e.Extra = map[string]any{"term": p.term}
		return e
	}
	if term > p.term {
		p.term = term
		p.notifyLocked()
	}
	return nil
}

// replicaOps: POST /_paddock/replication/ops (primary → copy).
func (s *Server) replicaOps(w http.ResponseWriter, r *http.Request, _ params) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	req, err := decodeOps(b)
	if err != nil {
		return err
	}
	if err := s.checkTerm(req.Term); err != nil {
		return err
	}
	sh := s.index(req.Index)
	if sh == nil {
		return eserr.IndexNotFound(req.Index)
	}
	cp, err := sh.ApplyReplica(r.Context(), req.Ops, req.GlobalCheckpoint)
	if err != nil {
		return err
	}
	switch req.Refresh {
	case "true":
		err = sh.Refresh(r.Context())
	case "wait_for":
		err = sh.WaitRefreshed(r.Context(), cp.MaxSeqNo)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"local_checkpoint": cp.MaxSeqNo, "global_checkpoint": cp.GlobalCheckpoint})
	return nil
}

// listReplicaOps: GET /_paddock/replication/ops?index=I&from=N (new
// primary → copy): the documents the copy's operation log names from
// seq_no N on, as ids, seq_nos and versions (no sources), at most
// opsListLimit, with the seq_no to continue from; covered is false when
// the log no longer holds N.
func (s *Server) listReplicaOps(w http.ResponseWriter, r *http.Request, _ params) error {
	q := r.URL.Query()
	name := q.Get("index")
	if err := validIndex(name); err != nil {
		return err
	}
	from := int64(0)
	if v := q.Get("from"); v != "" {
		if _, err := fmt.Sscan(v, &from); err != nil || from < 0 {
			return eserr.BadRequest("[from] must be a non-negative seq_no, got [%s]", v)
		}
	}
	sh := s.index(name)
	if sh == nil {
		return eserr.IndexNotFound(name)
	}
	ops, next, covered, err := sh.OpsSince(from, opsListLimit)
	if err != nil {
		return err
	}
	for i := range ops {
		ops[i].Source = nil
	}
	if ops == nil {
		ops = []shard.ReplicaOp{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ops": ops, "next": next, "covered": covered})
	return nil
}

// errNotCovered: a copy's operation log no longer holds the seq_nos
// asked for.
var errNotCovered = errors.New("its operation log no longer holds those seq_nos")

// opsListLimit bounds one answer of listReplicaOps.
const opsListLimit = 1000

// decodeOps decodes and checks an operations request.
func decodeOps(b []byte) (*opsRequest, error) {
	var req opsRequest
	if err := decodeJSON(b, &req); err != nil {
		return nil, err
	}
	if req.Term < 1 {
		return nil, eserr.BadRequest("replication ops need a [term] of at least 1, got %d", req.Term)
	}
	if err := validIndex(req.Index); err != nil {
		return nil, err
	}
	switch req.Refresh {
	case "", "true", "false", "wait_for":
	default:
		return nil, eserr.BadRequest("replication ops [refresh] must be true, false or wait_for, got [%s]", req.Refresh)
	}
	for _, o := range req.Ops {
		if err := o.Validate(); err != nil {
			return nil, eserr.BadRequest("replication ops for [%s]: %v", req.Index, err)
		}
	}
	return &req, nil
}

// --- metadata ---

type copyIndexMeta struct {
	Settings shard.Settings   `json:"settings"`
	Mapping  *mapping.Mapping `json:"mappings"`
}

type metadataPush struct {
	Term     int64                    `json:"term"`
	Version  int64                    `json:"version"`
	Indices  map[string]copyIndexMeta `json:"indices"`
	Registry json.RawMessage          `json:"registry"`
	APIKeys  []apiKey                 `json:"api_keys"`
	// Repos are the registered snapshot repositories.
	Repos map[string]repository `json:"repositories"`
}

// metadataChanged bumps the metadata version: copies get the new state
// before the next operation sent to them.
func (s *Server) metadataChanged() {
	p := s.repl
	p.mu.Lock()
	p.metaVer = max(p.metaVer+1, time.Now().UnixNano())
	p.mu.Unlock()
}

func (s *Server) metadataState() (metadataPush, int64) {
	p := s.repl
	p.mu.Lock()
	ver := p.metaVer
	term := int64(0)
	if p.rt != nil {
		term = p.rt.Term
	}
	p.mu.Unlock()
	mp := metadataPush{Term: term, Version: ver, Indices: map[string]copyIndexMeta{}, Registry: s.meta.Export()}
	for _, n := range s.indexNames() {
		if sh := s.index(n); sh != nil {
			mp.Indices[n] = copyIndexMeta{Settings: sh.Settings(), Mapping: sh.Mapping()}
		}
	}
	mp.APIKeys, _ = s.keys.all()
	mp.Repos, _ = s.db.repos()
	return mp, ver
}

// ensureMetadata pushes the metadata to a copy that lacks its version.
func (s *Server) ensureMetadata(ctx context.Context, t *copyTrack) error {
	s.repl.mu.Lock()
	ver := s.repl.metaVer
	s.repl.mu.Unlock()
	if t.metaSent.Load() >= ver {
		return nil
	}
	mp, ver := s.metadataState()
	b, _ := json.Marshal(mp)
	code, resp, err := s.call(ctx, http.MethodPut, t.base()+ReplicationMetadataPath, b)
	if err != nil {
		return err
	}
	if code == http.StatusConflict && bytes.Contains(resp, []byte("stale_primary")) {
		s.staleTerm(resp)
	}
	if code != http.StatusOK {
		return refused(code, fmt.Errorf("copy [%s] refused the metadata (%d): %s", t.id, code, bytes.TrimSpace(resp)))
	}
	for {
		cur := t.metaSent.Load()
		if ver <= cur || t.metaSent.CompareAndSwap(cur, ver) {
			return nil
		}
	}
}

// pushMetadata sends changed metadata to every copy now (a metadata
// write's acknowledgement waits for it; a copy that misses it gets it
// before its next operation).
func (s *Server) pushMetadata(ctx context.Context) {
	if s.repl.role() != RolePrimary {
		return
	}
	targets, _, _ := s.repl.targets()
	var wg sync.WaitGroup
	for _, tg := range targets {
		if tg.dead {
			continue
		}
		wg.Add(1)
		go func(t *copyTrack) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, s.repl.sendTimeout)
			defer cancel()
			if err := s.ensureMetadata(cctx, t); err != nil {
				s.log.Warn("metadata push failed (retried before the next write)", "copy", t.id, "err", err)
			}
		}(tg.t)
	}
	wg.Wait()
}

// replicaMetadata: PUT /_paddock/replication/metadata (primary → copy):
// the copy's indices, aliases, templates and API keys become the
// primary's.
func (s *Server) replicaMetadata(w http.ResponseWriter, r *http.Request, _ params) error {
	var mp metadataPush
	if err := decodeBody(r, &mp); err != nil {
		return err
	}
	if err := s.checkTerm(mp.Term); err != nil {
		return err
	}
	p := s.repl
	p.mu.Lock()
	if mp.Term < p.metaGot[0] || mp.Term == p.metaGot[0] && mp.Version <= p.metaGot[1] {
		p.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"applied": false})
		return nil
	}
	p.mu.Unlock()
	for name := range mp.Indices {
		if err := validIndex(name); err != nil {
			return err
		}
	}
	if err := s.applyMetadata(mp); err != nil {
		return err
	}
	p.mu.Lock()
	if mp.Term > p.metaGot[0] || mp.Term == p.metaGot[0] && mp.Version > p.metaGot[1] {
		p.metaGot = [2]int64{mp.Term, mp.Version}
	}
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"applied": true})
	return nil
}

func (s *Server) applyMetadata(mp metadataPush) error {
	for _, n := range s.indexNames() {
		if _, ok := mp.Indices[n]; !ok {
			if err := s.dropIndices([]string{n}); err != nil {
				return err
			}
		}
	}
	for name, im := range mp.Indices {
		sh := s.index(name)
		if sh != nil && sh.Settings().UUID != im.Settings.UUID {
			if err := s.dropIndices([]string{name}); err != nil {
				return err
			}
			sh = nil
		}
		if sh == nil {
			if _, err := s.createCopy(name, im); err != nil {
				return err
			}
			continue
		}
		if im.Mapping != nil {
			if err := sh.PutMapping(im.Mapping); err != nil {
				s.log.Warn("primary's mapping does not merge into this copy's", "index", name, "err", err)
			}
		}
		if err := sh.ReplaceSettings(im.Settings); err != nil {
			return err
		}
	}
	if len(mp.Registry) > 0 {
		if err := s.meta.Import(mp.Registry); err != nil {
			return err
		}
	}
	if mp.Repos != nil {
		cur, err := s.db.repos()
		if err != nil {
			return err
		}
		for name := range cur {
			if _, ok := mp.Repos[name]; !ok {
				if _, err := s.db.deleteRepo(name); err != nil {
					return err
				}
			}
		}
		for name, r := range mp.Repos {
			if err := s.db.putRepo(name, r); err != nil {
				return err
			}
		}
	}
	changedKeys := false
	for _, k := range mp.APIKeys {
		if cur, ok, _ := s.keys.get(k.ID); ok && cur.Invalidated == k.Invalidated {
			continue
		}
		if err := s.keys.put(k); err != nil {
			return err
		}
		changedKeys = true
	}
	if changedKeys {
		s.sec.forget() // an invalidated key stops working here too
	}
	return nil
}

// createCopy creates an index as the primary holds it (its uuid,
// settings and mapping).
func (s *Server) createCopy(name string, im copyIndexMeta) (*shard.Shard, error) {
	s.imu.Lock()
	defer s.imu.Unlock()
	if sh := s.indices[name]; sh != nil {
		return sh, nil
	}
	if s.closed {
		return nil, errNodeClosed()
	}
	sh, err := shard.Create(s.indexDir(name), name, im.Mapping, im.Settings, s.shardOptions())
	if err != nil {
		return nil, err
	}
	s.indices[name] = sh
	return sh, nil
}

// replicaReset: POST /_paddock/replication/reset (primary → copy, before
// a full copy): the copy empties the index, keeping its metadata.
func (s *Server) replicaReset(w http.ResponseWriter, r *http.Request, _ params) error {
	var req struct {
		Term  int64  `json:"term"`
		Index string `json:"index"`
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := s.checkTerm(req.Term); err != nil {
		return err
	}
	// From here the index is partial until the copy is done: this copy
	// serves no read until the platform lists it in sync again.
	s.repl.mu.Lock()
	s.repl.unconfirmLocked()
	s.repl.mu.Unlock()
	sh := s.takeIndex(req.Index)
	if sh == nil {
		return eserr.IndexNotFound(req.Index)
	}
	im := copyIndexMeta{Settings: sh.Settings(), Mapping: sh.Mapping()}
	if err := sh.Delete(); err != nil {
		return err
	}
	if _, err := s.createCopy(req.Index, im); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}

// indexCreated gives a new index on the primary the routing's term; its
// copies get it with the next metadata push.
func (s *Server) indexCreated(sh *shard.Shard) {
	p := s.repl
	p.mu.Lock()
	defer p.mu.Unlock()
	p.metaVer = max(p.metaVer+1, time.Now().UnixNano())
	if p.roleLocked() == RolePrimary {
		if err := sh.SetTerm(p.rt.Term); err != nil {
			s.log.Error("set primary term", "index", sh.Name(), "err", err)
		}
	}
}

// waitReady waits for a promotion in progress (10 s at most).
func (p *repl) waitReady(ctx context.Context) error {
	p.mu.Lock()
	ch := p.ready
	p.mu.Unlock()
	select {
	case <-ch:
		return nil
	default:
	}
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case <-ch:
		return nil
	case <-timer.C:
		return unavailable("the new primary is still taking over its copies: retry")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startPromotionLocked runs a new primary's takeover (p.mu held): it
// asks every in-sync copy its seq_nos, steps past the highest (its own
// writes then supersede whatever an older primary left on a copy), and
// re-sends the operations above each copy's global checkpoint (a copy
// may have missed some the new primary holds). Writes wait meanwhile.
func (s *Server) startPromotionLocked(rt *Routing) {
	p := s.repl
	ready := make(chan struct{})
	p.ready = ready
	var targets []*copyTrack
	for _, t := range p.copies {
		if rt.inSync(t.id) {
			targets = append(targets, t)
		}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(ready)
		ctx, cancel := context.WithTimeout(p.ctx, 8*time.Second)
		defer cancel()
		views := make([]*copyView, len(targets))
		var wg sync.WaitGroup
		for i, t := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, b, err := s.call(ctx, http.MethodGet, t.base()+ReplicationPath, nil)
				if err != nil || code != http.StatusOK {
					return // unreachable: its next write fails and it leaves in_sync
				}
				var v copyView
				if json.Unmarshal(b, &v) == nil {
					views[i] = &v
				}
			}()
		}
		wg.Wait()
		// A copy that has seen a newer term: this node was deposed (a
		// restart with the routing it held when it was primary). It
		// steps down and touches nothing until the routing arrives.
		newest := int64(0)
		for _, v := range views {
			if v != nil {
				newest = max(newest, v.Term)
			}
		}
		if newest > rt.Term {
			p.mu.Lock()
			if newest > p.term {
				s.log.Warn("a copy holds a newer primary term: stepping down until the routing arrives", "term", rt.Term, "newer", newest)
				p.term = newest
				p.notifyLocked()
			}
			p.mu.Unlock()
			return
		}
		for _, v := range views {
			if v == nil {
				continue
			}
			for name, cv := range v.Indices {
				if sh := s.index(name); sh != nil {
					if err := sh.AdvanceSeqNo(cv.MaxSeqNo); err != nil {
						s.log.Error("step past the copies' seq_nos", "index", name, "err", err)
					}
				}
			}
		}
		// A copy this node could not bring onto its history is not in
		// sync: it leaves in_sync and recovers (its operations above the
		// global checkpoint are of an older term: a full copy).
		for i, t := range targets {
			if views[i] == nil {
				s.promotionMissed(t, rt.Term, "unreachable when this node became primary")
			}
		}
		if err := s.reassertDiverged(ctx, targets, views, rt.Term); err != nil {
			s.log.Warn("resync of the copies' history after promotion failed", "err", err)
		}
		for i, t := range targets {
			if views[i] == nil {
				continue
			}
			for name, cv := range views[i].Indices {
				sh := s.index(name)
				if sh == nil {
					continue
				}
				if _, err := s.sendOpsSince(ctx, t, sh, rt.Term, cv.GlobalCheckpoint+1, -1); err != nil {
					// It may keep what the deposed primary left: out of
					// in_sync, it recovers.
					s.log.Warn("resync of a copy after promotion failed", "copy", t.id, "index", name, "err", err)
					s.promotionMissed(t, rt.Term, "missed the resync after the promotion: "+err.Error())
					break
				}
			}
		}
	}()
}

// promotionMissed takes an in-sync copy the new primary could not bring
// onto its history out of in_sync (a failed event), as a failed write
// would.
func (s *Server) promotionMissed(t *copyTrack, term int64, why string) {
	s.copyFailed(t, term, fmt.Errorf("copy [%s] %s", t.id, why))
}

// reassertDiverged makes the in-sync copies' history this new primary's
// (Elasticsearch rolls copies back above the global checkpoint; here the
// documents are written again): every document a copy holds above its
// global checkpoint in a state this node does not hold (an operation of
// the deposed primary that never reached this node, never acknowledged)
// is written again here with a fresh seq_no, as this node holds it (or
// deleted when it holds none). The resend that follows then carries it
// to every copy, superseding what the deposed primary left. A copy whose
// operations cannot be listed (unreachable, or its log no longer holds
// them) leaves in_sync and recovers.
func (s *Server) reassertDiverged(ctx context.Context, targets []*copyTrack, views []*copyView, term int64) error {
	diverged := map[string]map[string]int64{} // index → id → version on the copy
	for i, t := range targets {
		if views[i] == nil {
			continue
		}
		for name, cv := range views[i].Indices {
			sh := s.index(name)
			if sh == nil || cv.MaxSeqNo <= cv.GlobalCheckpoint {
				continue
			}
			d, err := s.divergedOps(ctx, t, sh, cv.GlobalCheckpoint+1)
			if err != nil {
				views[i] = nil
				s.promotionMissed(t, term, "could not list its operations above the global checkpoint: "+err.Error())
				break
			}
			for id, v := range d {
				if diverged[name] == nil {
					diverged[name] = map[string]int64{}
				}
				diverged[name][id] = max(diverged[name][id], v)
			}
		}
	}
	return s.reassert(ctx, diverged)
}

// divergedOps are the documents copy t holds from seq_no from on in a
// state this node has not got nor superseded (this node holds none of
// them, or an older seq_no): operations of a deposed primary that
// never reached this node. Each is named with its version there.
func (s *Server) divergedOps(ctx context.Context, t *copyTrack, sh *shard.Shard, from int64) (map[string]int64, error) {
	ops, err := s.copyOpsSince(ctx, t, sh.Name(), from)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, o := range ops {
		seq, ok, err := sh.SeqNoOf(o.ID)
		if err != nil {
			return nil, err
		}
		if ok && seq >= o.SeqNo {
			continue // the same operation here, or a newer one the resend carries
		}
		out[o.ID] = max(out[o.ID], o.Version)
	}
	return out, nil
}

// reassert writes the diverged documents (index → id → version on a
// copy) again on this primary (Shard.Reassert).
func (s *Server) reassert(ctx context.Context, diverged map[string]map[string]int64) error {
	for name, byID := range diverged {
		sh := s.index(name)
		if sh == nil {
			continue
		}
		ids := make([]string, 0, len(byID))
		for id := range byID {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		if err := sh.Reassert(ctx, ids, byID); err != nil {
			return fmt.Errorf("index [%s]: %w", name, err)
		}
		s.log.Info("documents a deposed primary left on copies written again from this primary's history", "index", name, "documents", len(ids))
	}
	return nil
}

// copyOpsSince lists the operations a copy's log names from seq_no from
// on (GET /_paddock/replication/ops), every page.
func (s *Server) copyOpsSince(ctx context.Context, t *copyTrack, index string, from int64) ([]shard.ReplicaOp, error) {
	var out []shard.ReplicaOp
	for {
		code, b, err := s.call(ctx, http.MethodGet, fmt.Sprintf("%s%s?index=%s&from=%d", t.base(), ReplicationOpsPath, url.QueryEscape(index), from), nil)
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("copy [%s] answered %d: %s", t.id, code, bytes.TrimSpace(b))
		}
		var ans struct {
			Ops     []shard.ReplicaOp `json:"ops"`
			Next    int64             `json:"next"`
			Covered bool              `json:"covered"`
		}
		if err := json.Unmarshal(b, &ans); err != nil {
			return nil, fmt.Errorf("copy [%s] operations: %w", t.id, err)
		}
		if !ans.Covered {
			return nil, fmt.Errorf("copy [%s]: %w (from seq_no %d)", t.id, errNotCovered, from)
		}
		out = append(out, ans.Ops...)
		if len(ans.Ops) < opsListLimit || ans.Next <= from {
			return out, nil
		}
		from = ans.Next
	}
}

// Leave tells the primary, as this in-sync replica shuts down (a
// restart, a stop), that it is going: the primary takes it for failed at
// once (event failed, writes that need it held until the routing drops
// it, as when a write to it fails) instead of after its sends to the
// stopped node have timed out. Best effort, within ctx.
func (s *Server) Leave(ctx context.Context) {
	p := s.repl
	p.mu.Lock()
	rt, role := p.rt, p.roleLocked()
	p.mu.Unlock()
	if rt == nil || role != RoleReplica {
		return
	}
	url := rt.url(rt.Primary)
	if url == "" {
		return
	}
	b, _ := json.Marshal(map[string]any{"term": rt.Term, "copy": rt.Self})
	code, resp, err := s.call(ctx, http.MethodPost, url+ReplicationLeavePath, b)
	switch {
	case err != nil:
		s.log.Warn("could not tell the primary this copy is leaving: it finds out when a write to it fails", "primary", rt.Primary, "err", err)
	case code != http.StatusOK:
		s.log.Warn("the primary refused this copy's leave: it finds out when a write to it fails", "primary", rt.Primary, "status", code, "answer", string(bytes.TrimSpace(resp)))
	default:
		s.log.Info("told the primary this copy is leaving", "primary", rt.Primary, "term", rt.Term)
	}
}

// replicaLeave: POST /_paddock/replication/leave (copy → primary): an
// in-sync copy shutting down. The primary treats it as a copy that
// failed a write: event failed, and writes that need it wait until the
// routing drops it from in_sync. A stale term or an unknown copy
// changes nothing.
func (s *Server) replicaLeave(w http.ResponseWriter, r *http.Request, _ params) error {
	var req struct {
		Term int64  `json:"term"`
		Copy string `json:"copy"`
	}
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	p := s.repl
	p.mu.Lock()
	var t *copyTrack
	if p.rt != nil && p.rt.Term == req.Term && p.roleLocked() == RolePrimary {
		t = p.copies[req.Copy]
	}
	p.mu.Unlock()
	if t == nil {
		writeJSON(w, http.StatusOK, map[string]any{"acknowledged": false})
		return nil
	}
	s.copyFailed(t, req.Term, errors.New("the copy is shutting down (it said so)"))
	writeJSON(w, http.StatusOK, map[string]any{"acknowledged": true})
	return nil
}
