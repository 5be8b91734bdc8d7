package constructor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"paddock/engine"
)

// The replication authority (docs/architecture.md, "Replication
// authority"). A deployment's Elasticsearch nodes form one replication
// group: /paddock/deployments/<id>/replication names its primary, its
// copies and the copies in sync. The leading constructor alone writes
// it, by compare-and-set fenced by its election znode, and pushes every
// change to every copy; nodes never read ZooKeeper. Terms are assigned
// here only, so a node may always adopt a higher term.
//
// The pure decisions (planRouting, applyEvents, promote) take the
// routing as it is and return the next one; the replicator serialises
// them per deployment, writes and pushes.

// planRouting is the routing once a plan settles on copies (the ids of
// its Elasticsearch instances). cur is the routing before it (nil:
// none). created: a new deployment, whose copies all start empty and
// so are all in sync. Copies a plan adds to a deployment with data
// start out of sync and recover from the primary. When the primary
// leaves the group, an in-sync copy that stays takes over (term+1).
// When none stays: if the plan migrated the data into new copies
// (migrated; source() takes it from the primary or an in-sync copy when
// one runs), the first of them becomes primary (term+1) and the others
// recover from it; else the old primary stays primary and a copy (the
// deployment is red while it does not run), as no copy out of sync is
// ever made primary.
func planRouting(cur *engine.Replication, copies []string, created bool, migrated []string, why string) (engine.Replication, bool) {
	copies = sortedSet(copies)
	if len(copies) == 0 {
		if cur == nil {
			return engine.Replication{}, false
		}
		return *cur, false
	}
	if cur == nil {
		r := engine.Replication{Term: 1, Primary: copies[0], Copies: copies, InSync: []string{copies[0]}, Reason: why + ": first routing"}
		if created {
			r.InSync = slices.Clone(copies)
			r.Reason = why + ": new deployment, every copy empty and in sync"
		}
		return r, true
	}
	var in, fresh []string
	for _, c := range migrated {
		if slices.Contains(copies, c) {
			fresh = append(fresh, c)
		}
	}
	fresh = sortedSet(fresh)
	for _, c := range cur.InSync {
		if slices.Contains(copies, c) {
			in = append(in, c)
		}
	}
	next := engine.Replication{Term: cur.Term, Primary: cur.Primary, Copies: copies, InSync: sortedSet(in)}
	switch {
	case slices.Contains(next.InSync, cur.Primary):
		next.Reason = why + ": copies " + strings.Join(shorts(copies), ", ")
	case len(next.InSync) > 0:
		next.Term, next.Primary = cur.Term+1, next.InSync[0]
		next.Reason = fmt.Sprintf("%s: primary %s left the group; in-sync copy %s promoted", why, engine.Short(cur.Primary), engine.Short(next.Primary))
	case len(fresh) == 0:
		next.Copies, next.InSync = sortedSet(append(copies, cur.Primary)), []string{cur.Primary}
		next.Reason = fmt.Sprintf("%s: no in-sync copy among the new nodes: primary %s stays primary", why, engine.Short(cur.Primary))
	default:
		next.Term, next.Primary, next.InSync = cur.Term+1, fresh[0], []string{fresh[0]}
		next.Reason = fmt.Sprintf("%s: no in-sync copy stays; %s, which took the migrated data, is primary and the others recover from it",
			why, engine.Short(next.Primary))
	}
	if next.Equal(*cur) {
		return *cur, false
	}
	return next, true
}

// applyEvents applies the events a primary asked for (from: the copy
// the events were read from). An event counts only when its term is the
// routing's and it came from the routing's primary; the others are
// stale (a deposed primary's) and counted. failed takes a copy out of
// in_sync (never the primary); in_sync adds a recovered copy.
func applyEvents(cur engine.Replication, from string, evs []ReplicationEvent) (engine.Replication, bool, int) {
	next := cur
	next.InSync = slices.Clone(cur.InSync)
	stale := 0
	var why []string
	for _, ev := range evs {
		if from != cur.Primary || ev.Term != cur.Term {
			stale++
			continue
		}
		switch ev.Kind {
		case EventFailed:
			if ev.Copy == next.Primary || !slices.Contains(next.InSync, ev.Copy) {
				continue
			}
			next.InSync = slices.DeleteFunc(next.InSync, func(c string) bool { return c == ev.Copy })
			why = append(why, "copy "+engine.Short(ev.Copy)+" failed: "+orUnknownReason(ev.Reason))
		case EventInSync:
			if !slices.Contains(next.Copies, ev.Copy) || slices.Contains(next.InSync, ev.Copy) {
				continue
			}
			next.InSync = sortedSet(append(next.InSync, ev.Copy))
			why = append(why, "copy "+engine.Short(ev.Copy)+" recovered and is in sync")
		}
	}
	if next.Equal(cur) {
		return cur, false, stale
	}
	next.Reason = strings.Join(why, "; ")
	return next, true, stale
}

func orUnknownReason(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

// promote replaces a lost primary by a live in-sync copy (term+1, the
// old primary out of in_sync, still a copy: it recovers if it returns).
// ok is false when no in-sync copy runs: the deployment stays red, and
// a copy out of sync is never promoted.
func promote(cur engine.Replication, live func(string) bool, why string) (engine.Replication, bool) {
	for _, c := range cur.InSync {
		if c == cur.Primary || !live(c) {
			continue
		}
		next := cur
		next.Term, next.Primary = cur.Term+1, c
		next.InSync = slices.DeleteFunc(slices.Clone(cur.InSync), func(x string) bool { return x == cur.Primary })
		next.Reason = fmt.Sprintf("promoted %s: primary %s lost (%s)", engine.Short(c), engine.Short(cur.Primary), why)
		return next, true
	}
	return cur, false
}

// nodesAhead reports whether a copy holds a newer routing than the
// znode's (r at version ver): it has seen a higher term, or holds a
// routing of the same term at a higher version. Terms and versions come
// from the znode only, so it went back: a ZooKeeper restore brought an
// older copy of it back (with its version restarted), and the nodes
// would ignore every push of that term.
func nodesAhead(r engine.Replication, ver engine.Version, views map[string]NodeReplication) bool {
	for c, v := range views {
		if !holdsRouting(c, v) {
			continue
		}
		if v.Term > r.Term || (v.RoutingTerm == r.Term && v.Version > ver) {
			return true
		}
	}
	return false
}

// holdsRouting reports whether view v is copy c's, pushed as c.
func holdsRouting(c string, v NodeReplication) bool {
	return v.Self == c && v.Role != RoleStandalone && v.Role != ""
}

// restoredRouting is the routing to write when the copies are ahead of
// the znode (nodesAhead): the newest routing a copy holds (its primary
// and in_sync, kept to the znode's copies), under a term above every
// term a copy has seen, so that every node takes it and the same-term
// changes after it. The newest routing a copy holds is at least as new
// as any the copies acted on (a routing nobody received changed nothing
// a node did). When no copy names a primary among the znode's copies,
// the znode's primary stays and the others recover from it.
func restoredRouting(cur engine.Replication, views map[string]NodeReplication) engine.Replication {
	term := cur.Term
	var newest NodeReplication
	found := false
	ids := make([]string, 0, len(views))
	for c := range views {
		ids = append(ids, c)
	}
	slices.Sort(ids)
	for _, c := range ids {
		v := views[c]
		if !holdsRouting(c, v) {
			continue
		}
		term = max(term, v.Term, v.RoutingTerm)
		if v.Primary == "" || !slices.Contains(v.InSync, v.Primary) {
			continue
		}
		if !found || v.RoutingTerm > newest.RoutingTerm || (v.RoutingTerm == newest.RoutingTerm && v.Version > newest.Version) {
			newest, found = v, true
		}
	}
	next := engine.Replication{Term: term + 1, Primary: cur.Primary, Copies: slices.Clone(cur.Copies), InSync: []string{cur.Primary}}
	if found && slices.Contains(cur.Copies, newest.Primary) {
		var in []string
		for _, c := range newest.InSync {
			if slices.Contains(cur.Copies, c) {
				in = append(in, c)
			}
		}
		next.Primary, next.InSync = newest.Primary, sortedSet(in)
		next.Reason = fmt.Sprintf("the copies hold a newer routing than ZooKeeper (term %d version %d, ZooKeeper term %d: restored from a backup?): theirs is kept, primary %s, term %d",
			newest.RoutingTerm, newest.Version, cur.Term, engine.Short(next.Primary), next.Term)
		return next
	}
	next.Reason = fmt.Sprintf("the copies hold a newer routing than ZooKeeper (term %d seen, ZooKeeper term %d) naming no primary among its copies: primary %s kept, the other copies recover, term %d",
		term, cur.Term, engine.Short(cur.Primary), next.Term)
	return next
}

func sortedSet(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

func shorts(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = engine.Short(id)
	}
	return out
}

// replicator is the leader's replication authority: routing writes
// serialised per deployment, pushes, event polls on primaries,
// failover and the check of the nodes' views.
type replicator struct {
	l *leader

	mu    sync.Mutex
	locks map[string]*sync.Mutex
	// polls are the event long-polls running, per deployment.
	polls map[string]*eventPoll
	// lost: when each deployment's primary (by primary and term) was
	// first seen lost.
	lost map[string]lostMark
	// red: deployments whose lost primary has no in-sync copy to
	// promote (the reason recorded).
	red map[string]bool
	// pushedURLs: the copies' URLs last pushed per deployment (a change
	// of address is pushed again).
	pushedURLs map[string]string
	// lastURL: the last URL known of each copy.
	lastURL map[string]string
	wg      sync.WaitGroup
}

type lostMark struct {
	primary string
	term    int64
	since   time.Time
}

type eventPoll struct {
	primary string
	term    int64
	cancel  context.CancelFunc
}

func newReplicator(l *leader) *replicator {
	return &replicator{l: l, locks: map[string]*sync.Mutex{}, polls: map[string]*eventPoll{}, lost: map[string]lostMark{},
		red: map[string]bool{}, pushedURLs: map[string]string{}, lastURL: map[string]string{}}
}

func (rp *replicator) lock(depID string) *sync.Mutex {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	m := rp.locks[depID]
	if m == nil {
		m = &sync.Mutex{}
		rp.locks[depID] = m
	}
	return m
}

// update changes a deployment's routing: fn gets the routing as it is
// (nil: none) and returns the next one and whether it changed. The
// write is a compare-and-set fenced by the leader's election znode; a
// lost race (or a connection lost mid-write) reads the znode again and
// asks fn again, so fn must decide from what it is given only.
func (rp *replicator) update(ctx context.Context, depID, cause string, fn func(cur *engine.Replication) (engine.Replication, bool)) (engine.Replication, engine.Version, bool, error) {
	return rp.updateAssuming(ctx, depID, cause, false, fn)
}

// updateAssuming is update; with absent, a routing the leader's state
// does not know is taken as not there (a new deployment's) without
// reading it first: writing it is a create, which fails if one exists
// after all, and the next attempt reads it.
func (rp *replicator) updateAssuming(ctx context.Context, depID, cause string, absent bool, fn func(cur *engine.Replication) (engine.Replication, bool)) (engine.Replication, engine.Version, bool, error) {
	lk := rp.lock(depID)
	lk.Lock()
	defer lk.Unlock()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		cur, ver, ok := rp.l.w.replication(depID)
		if attempt > 0 || !ok && !absent {
			r, v, err := rp.l.s.Replication(ctx, depID)
			switch {
			case err == nil:
				cur, ver, ok = r, v, true
				rp.l.w.replicationWritten(depID, r, v)
			case errors.Is(err, engine.ErrNotFound):
				ok = false
			default:
				return engine.Replication{}, 0, false, fmt.Errorf("read the replication routing of %s: %w", depID, err)
			}
		}
		var curp *engine.Replication
		if ok {
			curp = &cur
		}
		next, changed := fn(curp)
		if !changed {
			return cur, ver, false, nil
		}
		next.Updated = time.Now().UTC()
		wver := engine.AnyVersion
		if ok {
			wver = ver
		}
		op, err := engine.OpReplication(depID, next, wver)
		if err != nil {
			return engine.Replication{}, 0, false, err
		}
		res, err := rp.l.s.MultiResults(ctx, rp.l.fenced(op)...)
		if err == nil {
			nv := res[1].Version
			rp.l.w.replicationWritten(depID, next, nv)
			rp.l.m.replWrites.WithLabelValues(cause).Inc()
			rp.l.log.Info("replication routing written", "deployment", depID, "cause", cause, "term", next.Term,
				"primary", next.Primary, "in_sync", len(next.InSync), "copies", len(next.Copies), "version", nv, "reason", next.Reason)
			return next, nv, true, nil
		}
		if i, ok := engine.FailedOp(err); ok && i == 0 {
			return engine.Replication{}, 0, false, fmt.Errorf("%w: %v", errLost, err)
		}
		if ctx.Err() != nil {
			return engine.Replication{}, 0, false, ctx.Err()
		}
		if !(errors.Is(err, engine.ErrConflict) || errors.Is(err, engine.ErrExists) || errors.Is(err, engine.ErrNotFound) ||
			errors.Is(err, engine.ErrUnavailable)) {
			return engine.Replication{}, 0, false, fmt.Errorf("write the replication routing of %s: %w", depID, err)
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return engine.Replication{}, 0, false, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		}
	}
	return engine.Replication{}, 0, false, fmt.Errorf("write the replication routing of %s: %w (after 5 attempts)", depID, lastErr)
}

// copyAddrs are the addresses pushed for copies: through the
// allocators' peer egress and tunnels when every copy's allocator
// offers both (copyVia), else copyURL.
func (rp *replicator) copyAddrs(depID string, copies []string) []PushCopy {
	out := make([]PushCopy, len(copies))
	vias := make([]string, len(copies))
	egress := len(copies) > 0
	for i, c := range copies {
		vias[i] = rp.copyVia(depID, c)
		egress = egress && vias[i] != ""
	}
	for i, c := range copies {
		if egress {
			out[i] = PushCopy{ID: c, URL: "http://" + c + PeerHostSuffix, Via: vias[i]}
			continue
		}
		out[i] = PushCopy{ID: c, URL: rp.copyURL(depID, c)}
	}
	return out
}

// PeerHostSuffix ends the URL host of a copy reached through the
// allocators (node.PeerHostSuffix).
const PeerHostSuffix = ".peer.paddock"

// copyVia is the allocator tunnel in front of copy iid when its
// allocator runs Docker nodes with a peer egress ("" otherwise): from
// the copy's status, else its allocator's record, else the last known.
func (rp *replicator) copyVia(depID, iid string) string {
	in, ok := rp.l.w.instanceAt(depID, iid)
	if !ok {
		return ""
	}
	rec, ok := rp.l.w.allocRecord(in.Allocator)
	if !ok || rec.Runtime != "docker" || !rec.PeerEgress {
		return ""
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	key := "via " + iid
	if st, sok := rp.l.status(in.Allocator, iid); sok && st.TunnelAddr != "" {
		rp.lastURL[key] = st.TunnelAddr
		return st.TunnelAddr
	}
	if rec.TunnelAddr != "" {
		rp.lastURL[key] = rec.TunnelAddr
		return rec.TunnelAddr
	}
	return rp.lastURL[key]
}

// copyURL is how the other copies reach copy iid (peerURL): from its
// status address, else the last one known, else its Docker network
// alias (a copy that does not run is unreachable whatever its URL;
// nodes refuse a routing with a copy without one).
func (rp *replicator) copyURL(depID, iid string) string {
	in, ok := rp.l.w.instanceAt(depID, iid)
	if ok && rp.l.w.runtime(in.Allocator) == "docker" {
		return rp.l.peerURL(in, "")
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if ok {
		if st, sok := rp.l.status(in.Allocator, iid); sok && st.Address != "" {
			u := rp.l.peerURL(in, st.Address)
			rp.lastURL[iid] = u
			return u
		}
	}
	if u := rp.lastURL[iid]; u != "" {
		return u
	}
	return fmt.Sprintf("http://paddock-%s:%d", iid, DockerPeerPort)
}

// push sends the routing to its copies (only: to that copy alone, which
// may be a copy that left the group), in parallel; it returns what
// failed. A node without the replication
// endpoints gets the other copies as best-effort peers instead.
func (rp *replicator) push(ctx context.Context, depID string, r engine.Replication, ver engine.Version, only string) []string {
	ctx = WithDeployment(ctx, depID) // as the platform
	copies := rp.copyAddrs(depID, r.Copies)
	if only == "" {
		rp.mu.Lock()
		rp.pushedURLs[depID] = addrsKey(copies)
		rp.mu.Unlock()
	}
	var (
		mu     sync.Mutex
		failed []string
		wg     sync.WaitGroup
	)
	targets := r.Copies
	if only != "" {
		targets = []string{only}
	}
	for _, c := range targets {
		in, ok := rp.l.w.instanceAt(depID, c)
		addr := ""
		if ok {
			addr = rp.l.nodeAddr(in)
		}
		if addr == "" {
			mu.Lock()
			failed = append(failed, engine.Short(c)+": not running")
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			p := ReplicationPush{Term: r.Term, Version: ver, Self: c, Primary: r.Primary, Copies: copies, InSync: r.InSync}
			applied, err := rp.l.cfg.Nodes.PushReplication(cctx, addr, p)
			if errors.Is(err, errNoReplicationAPI) {
				var peers []string
				for _, o := range copies {
					if o.ID != c && o.URL != "" {
						peers = append(peers, o.URL)
					}
				}
				err = rp.l.cfg.Nodes.SetPeers(cctx, addr, peers)
				applied = err == nil
			}
			result := "applied"
			switch {
			case err != nil:
				result = "error"
				mu.Lock()
				failed = append(failed, err.Error())
				mu.Unlock()
			case !applied:
				result = "ignored"
			}
			rp.l.m.replPushes.WithLabelValues(result).Inc()
		}()
	}
	wg.Wait()
	return failed
}

// live reports whether instance iid of a deployment runs healthy on a
// live allocator.
func (rp *replicator) live(depID, iid string) bool {
	in, ok := rp.l.w.instanceAt(depID, iid)
	return ok && rp.l.address(in) != ""
}

// replicate is the plan's step: the routing for the Elasticsearch
// instances of ins (migrated: the new ones the plan restored the data
// into), written and pushed. It answers the step message's
// tail ("" when there is nothing to say); failures to push are said,
// not fatal (the replication check pushes again).
func (x *executor) replicate(ctx context.Context, ins []engine.PlacedInstance, migrated []engine.PlacedInstance) string {
	msg, err := x.replicateErr(ctx, ins, migrated)
	if err != nil {
		return msg + "; " + err.Error()
	}
	return msg
}

// replicateErr is replicate with the failures as an error: the routing
// not written, or not pushed to every copy.
func (x *executor) replicateErr(ctx context.Context, ins []engine.PlacedInstance, migrated []engine.PlacedInstance) (string, error) {
	var ids []string
	for _, in := range esOnly(ins) {
		ids = append(ids, in.ID)
	}
	if len(ids) == 0 {
		return "", nil
	}
	var fresh []string
	for _, in := range esOnly(migrated) {
		fresh = append(fresh, in.ID)
	}
	created := x.plan.Action == engine.ActionCreate
	r, ver, _, err := x.l.repl.updateAssuming(ctx, x.depID, "plan", created, func(cur *engine.Replication) (engine.Replication, bool) {
		return planRouting(cur, ids, created, fresh, "plan "+engine.Short(x.plan.ID))
	})
	if err != nil {
		return "", fmt.Errorf("replication routing not written: %w", err)
	}
	msg := fmt.Sprintf("; replication term %d, primary %s, %d of %d copies in sync", r.Term, engine.Short(r.Primary), len(r.InSync), len(r.Copies))
	// Copies that left the group learn it too (they step down and
	// forward what they still receive to the primary), at the same time
	// as the copies: pushed one after the other after the copies', they
	// held a resize's switch, and so the route's, up to 1.5 s under load
	// while writes to the old nodes failed (docs/benchmarks.md).
	var leaving sync.WaitGroup
	for _, in := range esOnly(append(append([]engine.PlacedInstance{}, x.dep.Instances...), x.plan.NewInstances...)) {
		if !slices.Contains(r.Copies, in.ID) && x.l.address(in) != "" {
			leaving.Add(1)
			go func() {
				defer leaving.Done()
				x.l.repl.push(ctx, x.depID, r, ver, in.ID)
			}()
		}
	}
	failed := x.l.repl.push(ctx, x.depID, r, ver, "")
	leaving.Wait()
	if len(failed) > 0 {
		return msg, fmt.Errorf("routing not pushed to every copy (pushed again when they run): %s", strings.Join(failed, "; "))
	}
	return msg, nil
}

// canRecover reports whether the new Elasticsearch copies can take the
// data by replication recovery: the deployment has a routing whose
// primary runs and stays a copy until the switch.
func (x *executor) canRecover() bool {
	r, _, ok := x.l.w.replication(x.depID)
	if !ok {
		return false
	}
	for _, in := range esOnly(append(append([]engine.PlacedInstance{}, x.change.Keep...), x.change.Retire...)) {
		if in.ID == r.Primary {
			return x.l.address(in) != "" && !(slices.Contains(x.plan.MoveFrom, in.Allocator) && !x.l.alive(in.Allocator))
		}
	}
	return false
}

// run is the replicator's work while leading: failover checks every
// quarter second, event polls kept on every primary, and the check of
// the copies' views.
func (rp *replicator) run(ctx context.Context) {
	defer rp.wg.Wait()
	rp.wg.Add(1)
	go func() {
		defer rp.wg.Done()
		rp.checkLoop(ctx)
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	sw := &sweep{period: failoverFullPass, limit: failoverSweepLimit}
	for {
		// The deployments that changed (routing, instances, statuses,
		// allocators' liveness) and those whose primary looks lost
		// (their grace runs out), and the next slice of the sweep over
		// every deployment (all of them every failoverFullPass, at most
		// failoverSweepLimit a pass).
		now := time.Now()
		rp.mu.Lock()
		lost := slices.Collect(maps.Keys(rp.lost))
		rp.mu.Unlock()
		ids, gone := rp.l.w.takeFailChanged(lost...)
		swept, round := sw.next(now, rp.l.w.replicated)
		ids = union(ids, rp.l.w.stillRouted(swept))
		rp.mu.Lock()
		for _, id := range gone {
			delete(rp.lost, id)
		}
		rp.mu.Unlock()
		rp.failover(ctx, now, ids)
		rp.syncPolls(ctx, ids, gone, round)
		select {
		case <-ctx.Done():
			rp.mu.Lock()
			for id, p := range rp.polls {
				p.cancel()
				delete(rp.polls, id)
			}
			rp.mu.Unlock()
			return
		case <-tick.C:
		}
	}
}

// failoverFullPass is how often the failover pass and the event polls
// look at every deployment with a routing (in between: the changed ones),
// failoverSweepLimit how many of them a pass (4 a second) looks at
// besides the changed ones at most: above 5,000 deployments the sweep's
// rounds last longer than failoverFullPass (10 s at 10,000).
const (
	failoverFullPass   = 5 * time.Second
	failoverSweepLimit = 250
)

// union is a with the ids of b not in it.
func union(a, b []string) []string {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	seen := make(map[string]struct{}, len(a))
	for _, id := range a {
		seen[id] = struct{}{}
	}
	for _, id := range b {
		if _, ok := seen[id]; !ok {
			a = append(a, id)
		}
	}
	return a
}

// failover promotes an in-sync copy of every deployment of ids whose
// primary has looked lost for FailoverGrace, or records it red when none
// runs.
func (rp *replicator) failover(ctx context.Context, now time.Time, ids []string) {
	for _, id := range ids {
		r, rver, ok := rp.l.w.replication(id)
		if !ok {
			continue
		}
		if rp.live(id, r.Primary) {
			rp.mu.Lock()
			delete(rp.lost, id)
			wasRed := rp.red[id]
			delete(rp.red, id)
			rp.mu.Unlock()
			if wasRed {
				// The routing said red: say it is over.
				_, _, _, _ = rp.update(ctx, id, "failover", func(cur *engine.Replication) (engine.Replication, bool) {
					if cur == nil || cur.Primary != r.Primary || !strings.Contains(cur.Reason, "red until it returns") {
						return engine.Replication{}, false
					}
					next := *cur
					next.Reason = "primary " + engine.Short(cur.Primary) + " runs again"
					return next, true
				})
			}
			continue
		}
		rp.mu.Lock()
		m, seen := rp.lost[id]
		if !seen || m.primary != r.Primary || m.term != r.Term {
			m = lostMark{primary: r.Primary, term: r.Term, since: now}
			rp.lost[id] = m
		}
		rp.mu.Unlock()
		if now.Sub(m.since) < rp.l.cfg.FailoverGrace {
			continue
		}
		if _, ok := promote(r, func(c string) bool { return rp.live(id, c) }, ""); ok {
			// Never promote from a routing older than the copies' (a
			// ZooKeeper restore): its in_sync may name a copy that
			// left it since. Catch up first; the next round decides.
			if views := rp.views(ctx, id, r, 2*time.Second); nodesAhead(r, rver, views) {
				rp.catchUpWithNodes(ctx, id, r, views)
				continue
			}
		}
		why := rp.lostReason(id, r.Primary)
		next, ver, changed, err := rp.update(ctx, id, "failover", func(cur *engine.Replication) (engine.Replication, bool) {
			if cur == nil || cur.Primary != m.primary || cur.Term != m.term || rp.live(id, cur.Primary) {
				return engine.Replication{}, false // changed meanwhile: look again next time
			}
			if next, ok := promote(*cur, func(c string) bool { return rp.live(id, c) }, why); ok {
				return next, true
			}
			reason := fmt.Sprintf("primary %s lost (%s) and no in-sync copy runs: red until it returns", engine.Short(cur.Primary), why)
			if cur.Reason == reason {
				return *cur, false
			}
			next := *cur
			next.Reason = reason
			return next, true
		})
		if err != nil {
			if ctx.Err() == nil {
				rp.l.log.Warn("failover: routing not written", "deployment", id, "err", err)
			}
			continue
		}
		switch {
		case changed && next.Primary != m.primary:
			rp.l.m.promotions.Inc()
			rp.l.log.Warn("primary lost: replica promoted", "deployment", id, "lost", m.primary, "primary", next.Primary, "term", next.Term, "why", why)
			rp.mu.Lock()
			delete(rp.lost, id)
			delete(rp.red, id)
			rp.mu.Unlock()
			if failed := rp.push(ctx, id, next, ver, ""); len(failed) > 0 {
				rp.l.log.Warn("failover: routing not pushed to every copy", "deployment", id, "failed", strings.Join(failed, "; "))
			}
		case next.Primary != m.primary || next.Term != m.term:
			// Changed meanwhile (a plan, another path): looked at again.
		default:
			rp.mu.Lock()
			if !rp.red[id] {
				rp.l.log.Error("primary lost and no in-sync copy to promote: deployment red", "deployment", id, "primary", m.primary, "why", why)
			}
			rp.red[id] = true
			rp.mu.Unlock()
		}
	}
	rp.mu.Lock()
	red := len(rp.red)
	rp.mu.Unlock()
	rp.l.m.replRed.Set(float64(red))
}

// lostReason says why a copy looks lost.
func (rp *replicator) lostReason(depID, iid string) string {
	in, ok := rp.l.w.instanceAt(depID, iid)
	if !ok {
		return "its instance is gone"
	}
	if !rp.l.alive(in.Allocator) {
		return "allocator " + in.Allocator + " lost"
	}
	st, ok := rp.l.status(in.Allocator, iid)
	switch {
	case !ok:
		return "no status on allocator " + in.Allocator
	case st.State != engine.StateRunning:
		return "container " + st.State + " on " + in.Allocator
	default:
		return "not healthy on " + in.Allocator
	}
}

// syncPolls keeps one event poll on the primary of every deployment
// with more than one copy (at most MaxReplicationPolls), restarted when
// the primary changes. ids are the deployments with a routing to look
// at, gone those changed without one; all (a sweep's round starts):
// the polls of deployments no longer polled end.
func (rp *replicator) syncPolls(ctx context.Context, ids, gone []string, all bool) {
	want := map[string]engine.Replication{}
	for _, id := range ids {
		if r, _, ok := rp.l.w.replication(id); ok && len(r.Copies) > 1 {
			want[id] = r
		}
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	stop := func(id string) {
		if p, ok := rp.polls[id]; ok {
			p.cancel()
			delete(rp.polls, id)
		}
	}
	for _, id := range gone {
		stop(id)
	}
	if all {
		for id := range rp.polls {
			if _, ok := want[id]; !ok && !rp.l.w.polled(id) {
				stop(id)
			}
		}
	}
	for _, id := range ids {
		if p, ok := rp.polls[id]; ok {
			if r, ok := want[id]; !ok || r.Primary != p.primary || r.Term != p.term {
				stop(id)
			}
		}
	}
	for id, r := range want {
		if _, ok := rp.polls[id]; ok || len(rp.polls) >= rp.l.cfg.MaxReplicationPolls {
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		rp.polls[id] = &eventPoll{primary: r.Primary, term: r.Term, cancel: cancel}
		rp.wg.Add(1)
		go func() {
			defer rp.wg.Done()
			rp.poll(pctx, id, r.Primary)
		}()
	}
	rp.l.m.replPollers.Set(float64(len(rp.polls)))
}

// pollWait is how long one events long-poll waits on the primary.
const pollWait = 25 * time.Second

// poll long-polls a primary's events and applies them until ctx ends
// (the primary changed, or leading ended). It reads from the start of
// the primary's log: events already applied change nothing when applied
// again in order.
func (rp *replicator) poll(ctx context.Context, depID, primary string) {
	ctx = WithDeployment(ctx, depID) // as the platform
	var after int64
	pause := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	for ctx.Err() == nil {
		in, ok := rp.l.w.instanceAt(depID, primary)
		addr := ""
		if ok {
			addr = rp.l.nodeAddr(in)
		}
		if addr == "" {
			if !pause(250 * time.Millisecond) {
				return
			}
			continue
		}
		evs, err := rp.l.cfg.Nodes.ReplicationEvents(ctx, addr, after, pollWait)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errNoReplicationAPI):
			if !pause(30 * time.Second) {
				return
			}
			continue
		case err != nil:
			rp.l.log.Debug("replication events poll failed", "deployment", depID, "primary", primary, "err", err)
			if !pause(time.Second) {
				return
			}
			continue
		}
		if evs.Next < after {
			after = 0 // the node started its log over (restarted)
			continue
		}
		if len(evs.Events) > 0 {
			rp.applyPolled(ctx, depID, primary, evs.Events)
		}
		after = evs.Next
	}
}

// applyPolled applies a primary's events and pushes the result to every
// copy; stale events (a deposed primary's) get the current routing
// pushed to the asker, which makes it step down.
func (rp *replicator) applyPolled(ctx context.Context, depID, from string, evs []ReplicationEvent) {
	stale := 0
	r, ver, changed, err := rp.update(ctx, depID, "event", func(cur *engine.Replication) (engine.Replication, bool) {
		if cur == nil {
			return engine.Replication{}, false
		}
		next, changed, s := applyEvents(*cur, from, evs)
		stale = s
		return next, changed
	})
	if err != nil {
		if ctx.Err() == nil {
			rp.l.log.Warn("replication events not applied", "deployment", depID, "err", err)
		}
		return
	}
	switch {
	case changed:
		if failed := rp.push(ctx, depID, r, ver, ""); len(failed) > 0 {
			rp.l.log.Warn("routing not pushed to every copy", "deployment", depID, "failed", strings.Join(failed, "; "))
		}
	case stale > 0:
		rp.push(ctx, depID, r, ver, from)
	}
}

// checkLoop compares the copies' views with the routing: at once for
// deployments whose instances changed (a node restarted, a container
// re-created), and every deployment by a sweep, all of them every
// ReplicationCheck, at most replicationCheckLimit a second (a larger
// platform is swept in longer rounds: the check reads every running
// copy's view, a request per copy).
func (rp *replicator) checkLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sw := &sweep{period: rp.l.cfg.ReplicationCheck, limit: replicationCheckLimit}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ids := rp.l.w.takeReplChanged()
		swept, round := sw.next(time.Now(), rp.l.w.replicated)
		ids = union(ids, rp.l.w.stillRouted(swept))
		if round {
			for _, id := range rp.l.w.unreplicated() {
				if !rp.l.busy(id) {
					rp.adopt(ctx, id)
				}
			}
		}
		sem := make(chan struct{}, 8)
		var wg sync.WaitGroup
		for _, id := range ids {
			if rp.l.busy(id) {
				continue // the plan pushes what it writes
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				rp.check(ctx, id)
			}()
		}
		wg.Wait()
	}
}

// replicationCheckLimit bounds the deployments the check's sweep looks
// at per second (besides those that changed): above 1,250 deployments
// its rounds last longer than ReplicationCheck (40 s at 10,000).
const replicationCheckLimit = 250

// adopt writes the first routing of a running deployment made before
// the replication authority: a running copy is primary, the others
// recover from it (their best-effort copies are not trusted).
func (rp *replicator) adopt(ctx context.Context, depID string) {
	d, _, ok := rp.l.w.deployment(depID)
	if !ok {
		return
	}
	var ids []string
	primary := ""
	for _, in := range esOnly(d.Instances) {
		ids = append(ids, in.ID)
		if primary == "" && rp.l.address(in) != "" {
			primary = in.ID
		}
	}
	if primary == "" {
		return // nothing runs: adopted when a copy does
	}
	r, ver, changed, err := rp.update(ctx, depID, "adopt", func(cur *engine.Replication) (engine.Replication, bool) {
		if cur != nil {
			return *cur, false
		}
		return adoptRouting(ids, primary), true
	})
	if err != nil {
		if ctx.Err() == nil {
			rp.l.log.Warn("routing of a running deployment not written", "deployment", depID, "err", err)
		}
		return
	}
	if changed {
		rp.push(ctx, depID, r, ver, "")
	}
}

// adoptRouting is the first routing of a deployment that already holds
// data: primary (a running copy) alone in sync.
func adoptRouting(copies []string, primary string) engine.Replication {
	return engine.Replication{Term: 1, Primary: primary, Copies: sortedSet(copies), InSync: []string{primary},
		Reason: "running deployment adopted: " + engine.Short(primary) + " is primary, the other copies recover from it"}
}

// check reads every running copy's view and pushes the routing to those
// behind it. An in-sync replica that holds no routing at all (a new
// container without its data) leaves in_sync first and recovers.
func (rp *replicator) check(ctx context.Context, depID string) {
	ctx = WithDeployment(ctx, depID) // as the platform
	r, ver, ok := rp.l.w.replication(depID)
	if !ok {
		return
	}
	if rp.pushIfMoved(ctx, depID, r, ver) {
		return
	}
	views := rp.views(ctx, depID, r, 5*time.Second)
	if nodesAhead(r, ver, views) {
		rp.catchUpWithNodes(ctx, depID, r, views)
		return
	}
	for _, c := range r.Copies {
		view, ok := views[c]
		if !ok {
			continue
		}
		if view.Role == RoleRecovering && r.IsInSync(c) && view.Term == r.Term && view.Version == ver {
			// A replica that restarted holds the current routing but sends
			// its reads to the primary until the platform confirms it is
			// in sync: the routing pushed again does.
			rp.push(ctx, depID, r, ver, c)
			continue
		}
		if view.Term > r.Term || (view.Term == r.Term && view.Version >= ver) {
			continue
		}
		if view.Role == RoleStandalone && c != r.Primary && r.IsInSync(c) {
			next, nver, changed, err := rp.update(ctx, depID, "reconcile", func(cur *engine.Replication) (engine.Replication, bool) {
				if cur == nil || cur.Primary == c || !cur.IsInSync(c) {
					return engine.Replication{}, false
				}
				n := *cur
				n.InSync = slices.DeleteFunc(slices.Clone(cur.InSync), func(x string) bool { return x == c })
				n.Reason = "copy " + engine.Short(c) + " holds no routing (new container): out of sync until it recovers"
				return n, true
			})
			if err == nil && changed {
				rp.push(ctx, depID, next, nver, "")
				return
			}
		}
		rp.push(ctx, depID, r, ver, c)
	}
}

// pushIfMoved pushes routing r (at version ver) when a copy's address
// changed since the last push (a node re-created: restarted, moved by
// its allocator), and says whether it did.
func (rp *replicator) pushIfMoved(ctx context.Context, depID string, r engine.Replication, ver engine.Version) bool {
	key := addrsKey(rp.copyAddrs(depID, r.Copies))
	rp.mu.Lock()
	moved := rp.pushedURLs[depID] != key
	rp.mu.Unlock()
	if moved {
		rp.push(WithDeployment(ctx, depID), depID, r, ver, "")
	}
	return moved
}

// addrsKey is what a push said of its copies' addresses (a change is
// pushed again).
func addrsKey(copies []PushCopy) string {
	var b strings.Builder
	for _, c := range copies {
		b.WriteString(c.URL + "|" + c.Via + " ")
	}
	return b.String()
}

// views reads the view of every running copy of r, in parallel (a copy
// that does not answer within timeout is left out).
func (rp *replicator) views(ctx context.Context, depID string, r engine.Replication, timeout time.Duration) map[string]NodeReplication {
	ctx = WithDeployment(ctx, depID) // as the platform
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[string]NodeReplication{}
	)
	for _, c := range r.Copies {
		in, ok := rp.l.w.instanceAt(depID, c)
		if !ok {
			continue
		}
		addr := rp.l.nodeAddr(in)
		if addr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			v, err := rp.l.cfg.Nodes.NodeReplication(cctx, addr)
			if err != nil {
				return
			}
			mu.Lock()
			out[c] = v
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// catchUpWithNodes writes restoredRouting when the copies hold a newer
// routing than the znode (seen: the routing the views were compared
// with; changed since, it is looked at again on the next check), and
// pushes it.
func (rp *replicator) catchUpWithNodes(ctx context.Context, depID string, seen engine.Replication, views map[string]NodeReplication) {
	next, ver, changed, err := rp.update(ctx, depID, "restored", func(cur *engine.Replication) (engine.Replication, bool) {
		if cur == nil || !cur.Equal(seen) {
			return engine.Replication{}, false
		}
		return restoredRouting(*cur, views), true
	})
	if err != nil {
		if ctx.Err() == nil {
			rp.l.log.Warn("the copies hold a newer routing than ZooKeeper: routing not written", "deployment", depID, "err", err)
		}
		return
	}
	if !changed {
		return
	}
	rp.l.log.Warn("the copies held a newer routing than ZooKeeper (restored from a backup?): the term moved past theirs",
		"deployment", depID, "term", next.Term, "primary", next.Primary, "reason", next.Reason)
	if failed := rp.push(ctx, depID, next, ver, ""); len(failed) > 0 {
		rp.l.log.Warn("routing not pushed to every copy", "deployment", depID, "failed", strings.Join(failed, "; "))
	}
}
