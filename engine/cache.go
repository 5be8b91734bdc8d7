package engine

import (
	"context"
	"errors"
	"log/slog"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/go-zookeeper/zk"
)

// CacheEventType says what happened to the cached tree.
type CacheEventType int

// Cache event types.
const (
	NodeAdded CacheEventType = iota + 1
	NodeUpdated
	NodeRemoved
	// CacheInitialized follows the events of the first full load.
	CacheInitialized
	// CacheResynced follows the events of a rebuild after a session
	// expiry or a lost watch: the cache matches ZooKeeper again.
	CacheResynced
	// ConnectionLost: the cache is stale until ConnectionRestored.
	ConnectionLost
	ConnectionRestored
)

func (t CacheEventType) String() string {
	return [...]string{"", "added", "updated", "removed", "initialized", "resynced", "connection-lost", "connection-restored"}[t]
}

// CacheEvent is one change of the cached tree.
type CacheEvent struct {
	Type CacheEventType
	Path string
	Data []byte
	Stat Stat
}

// CachedNode is one znode as the cache knows it.
type CachedNode struct {
	Path string
	Data []byte
	Stat Stat
}

type cnode struct {
	CachedNode
	children map[string]struct{}
}

// TreeCache mirrors a ZooKeeper subtree in memory, in the spirit of
// Curator's TreeCache: an initial snapshot, then every change, with
// one-shot watches re-armed, and a full rebuild (diffed into events)
// after a session expiry or any lost watch.
//
// Reads are pipelined: watch events are handled in batches (every event
// queued while the previous batch was being read), the batch's reads go
// out together on the session (go-zookeeper pipelines requests), and a
// new subtree is loaded level by level, each level's reads at once. A
// change of one znode costs one read (its data or its children list),
// never a re-read of its siblings' data. Watch events arrive through the
// store's event callback, so no goroutine waits per watched znode.
type TreeCache struct {
	s    *Store
	root string
	log  *slog.Logger
	opt  cacheOptions

	mu          sync.RWMutex
	nodes       map[string]*cnode
	initialized bool
	connected   bool
	staleSince  time.Time
	lastSync    time.Time

	// Watch events queued by the store's callback.
	evMu  sync.Mutex
	evQ   []zk.Event
	evSig chan struct{}
	// Barrier counters (under evMu): events queued in all, events taken
	// for a batch, events whose batch has been applied; synced is closed
	// and replaced each time applied moves.
	queued, taken, applied uint64
	synced                 chan struct{}
	// own maps a znode this store wrote to the number of events queued
	// when ZooKeeper answered the write: its watch events are among
	// them (SyncPath). Entries leave once applied passes them.
	own map[string]uint64

	listeners []chan CacheEvent
	changed   []chan struct{}
	ready     chan struct{}
}

type cacheOptions struct {
	skip, leaf, container func(p string) bool
	data                  func(p string, data []byte) []byte
	ownWrites             bool
}

// CacheOption tunes a TreeCache.
type CacheOption func(*cacheOptions)

// CacheSkip leaves out the znodes for which skip reports true, with
// their subtrees: they are neither read nor watched, and do not appear
// among their parent's children. The constructor skips plan history;
// an allocator skips the status znodes it writes itself.
func CacheSkip(skip func(p string) bool) CacheOption {
	return func(o *cacheOptions) { o.skip = skip }
}

// CacheLeaves names znodes that never have children by the layout
// (instances, statuses, a pending plan): their children are neither
// listed nor watched, one read less per znode.
func CacheLeaves(leaf func(p string) bool) CacheOption {
	return func(o *cacheOptions) { o.leaf = leaf }
}

// CacheContainers names znodes that never hold data by the layout (a
// deployment's plans and history folders, an allocator's instances and
// status folders): only their children are read and watched (the
// children watch also reports their deletion), one read less per znode.
func CacheContainers(container func(p string) bool) CacheOption {
	return func(o *cacheOptions) { o.container = container }
}

// CacheOwnWrites makes the cache note its store's writes under its root
// as ZooKeeper answers them, for SyncPath. Without it SyncPath never
// waits (agents that do not read their own writes through the cache pay
// nothing per write).
func CacheOwnWrites() CacheOption {
	return func(o *cacheOptions) { o.ownWrites = true }
}

// CacheData keeps what keep returns of each znode's data instead of the
// data itself: a cache keeps only the fields its readers use (no
// password hashes or secrets in a cache of credentials records).
func CacheData(keep func(p string, data []byte) []byte) CacheOption {
	return func(o *cacheOptions) { o.data = keep }
}

func (c *TreeCache) keep(p string, data []byte) []byte {
	if c.opt.data == nil || data == nil {
		return data
	}
	return c.opt.data(p, data)
}

// maxInFlight bounds a cache's concurrent reads (each node load is a
// data read and, unless a leaf, a children read).
const maxInFlight = 64

// NewTreeCache creates a cache of the subtree at root. Call Listen or
// Changed before Run to receive changes; Run drives it until ctx ends.
func NewTreeCache(s *Store, root string, opts ...CacheOption) *TreeCache {
	c := &TreeCache{
		s: s, root: root, log: s.log.With("cache", root),
		nodes:  map[string]*cnode{},
		evSig:  make(chan struct{}, 1),
		ready:  make(chan struct{}),
		synced: make(chan struct{}),
	}
	for _, o := range opts {
		o(&c.opt)
	}
	return c
}

func (c *TreeCache) skipped(p string) bool {
	return p != c.root && c.opt.skip != nil && c.opt.skip(p)
}

func (c *TreeCache) isContainer(p string) bool {
	return p != c.root && c.opt.container != nil && c.opt.container(p)
}

func (c *TreeCache) isLeaf(p string) bool {
	return p != c.root && c.opt.leaf != nil && c.opt.leaf(p)
}

// Listen returns a channel receiving every change in order. The cache
// blocks (backpressure) when the listener falls behind by 4096 events.
// Call before Run.
func (c *TreeCache) Listen() <-chan CacheEvent {
	ch := make(chan CacheEvent, 4096)
	c.listeners = append(c.listeners, ch)
	return ch
}

// Changed returns a channel signalled (coalesced) after each batch of
// changes: for consumers that re-read a snapshot. Call before Run.
func (c *TreeCache) Changed() <-chan struct{} {
	ch := make(chan struct{}, 1)
	c.changed = append(c.changed, ch)
	return ch
}

// Ready is closed after the first full load.
func (c *TreeCache) Ready() <-chan struct{} { return c.ready }

// Stale reports whether the cache may lag ZooKeeper (connection lost)
// and since when.
func (c *TreeCache) Stale() (bool, time.Time) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return !c.connected, c.staleSince
}

// LastSync is when the cache last matched ZooKeeper for sure.
func (c *TreeCache) LastSync() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.lastSync
}

// Get returns the cached node at p.
func (c *TreeCache) Get(p string) (CachedNode, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n, ok := c.nodes[p]
	if !ok {
		return CachedNode{}, false
	}
	return n.CachedNode, true
}

// Children returns the sorted child names of p.
func (c *TreeCache) Children(p string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n, ok := c.nodes[p]
	if !ok {
		return nil
	}
	out := make([]string, 0, len(n.children))
	for k := range n.children {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Len is the number of cached nodes.
func (c *TreeCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.nodes)
}

// enqueue runs on go-zookeeper's receive loop: queue and signal only.
func (c *TreeCache) enqueue(ev zk.Event) {
	c.evMu.Lock()
	c.evQ = append(c.evQ, ev)
	c.queued++
	c.evMu.Unlock()
	select {
	case c.evSig <- struct{}{}:
	default:
	}
}

func (c *TreeCache) takeEvents() []zk.Event {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	evs := c.evQ
	c.evQ = nil
	c.taken = c.queued
	return evs
}

// caughtUp records that every event taken so far is applied.
func (c *TreeCache) caughtUp() {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	if c.applied != c.taken {
		c.applied = c.taken
		for p, seq := range c.own {
			if seq <= c.applied {
				delete(c.own, p)
			}
		}
		close(c.synced)
		c.synced = make(chan struct{})
	}
}

// Sync waits until the cache has applied every watch event received so
// far. ZooKeeper delivers a session's watch events before the answer to
// any later request on it, so after a read on the cache's session
// returns, Sync makes the cache show at least what that read saw of the
// watched znodes: a caller reading its own writes through the cache
// first makes one round trip (for example listing children), then
// Syncs. It returns early with ctx's error, or when the cache is not
// connected (ErrStale).
func (c *TreeCache) Sync(ctx context.Context) error {
	c.evMu.Lock()
	target := c.queued
	c.evMu.Unlock()
	return c.waitApplied(ctx, target)
}

// SyncPath is Sync for this store's own writes at p: it waits only
// while an event received before the answer to this store's last write
// on p (or below it; with ancestors, above it too: a parent's children
// list may add or remove p) is not yet applied. ZooKeeper delivers a
// write's watch events before its answer, so after SyncPath the cache
// shows every write this store made at p, and a reader of one
// deployment waits only for that deployment's writes by this store,
// not for other sessions' changes nor for a burst of changes elsewhere
// (those show as soon as the cache applies them, as in any watch
// cache). Pass ancestors when p is not cached yet. It needs
// CacheOwnWrites.
func (c *TreeCache) SyncPath(ctx context.Context, p string, ancestors bool) error {
	c.evMu.Lock()
	var target uint64
	for q, seq := range c.own {
		if seq > c.applied && seq > target && relevant(q, p, ancestors) {
			target = seq
		}
	}
	c.evMu.Unlock()
	if target == 0 {
		return nil
	}
	return c.waitApplied(ctx, target)
}

// wrote records this store's write at p, answered just now.
func (c *TreeCache) wrote(p string) {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	if c.queued == c.applied {
		return // its events, if any, are applied
	}
	if c.own == nil {
		c.own = map[string]uint64{}
	}
	c.own[p] = c.queued
}

// relevant reports whether an event on q can change what the cache
// shows at p: q is p, below p or (with ancestors) above it.
func relevant(q, p string, ancestors bool) bool {
	if q == p || (strings.HasPrefix(q, p) && q[len(p)] == '/') {
		return true
	}
	return ancestors && strings.HasPrefix(p, q) && (q == "/" || p[len(q)] == '/')
}

// waitApplied waits until every event up to sequence number target is
// applied.
func (c *TreeCache) waitApplied(ctx context.Context, target uint64) error {
	for {
		c.evMu.Lock()
		done, ch := c.applied >= target, c.synced
		c.evMu.Unlock()
		if done {
			return nil
		}
		if stale, _ := c.Stale(); stale {
			return ErrCacheStale
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // re-check connection
		}
	}
}

// Run keeps the cache in step with ZooKeeper until ctx ends.
func (c *TreeCache) Run(ctx context.Context) error {
	var wrote func(string)
	if c.opt.ownWrites {
		wrote = c.wrote
	}
	unwatch := c.s.watchPrefix(c.root, c.enqueue, wrote)
	defer unwatch()
	sess, cancel := c.s.Subscribe()
	defer cancel()
	lastSession := int64(0)
	needSync := true
	// Resync failures back off exponentially (100 ms to 5 s), reset on
	// success.
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 100*time.Millisecond, 5*time.Second
	retry := time.NewTimer(0)
	defer retry.Stop()
	wasConnected := c.s.Connected()
	for {
		if needSync && c.s.Connected() {
			// Queued events describe changes the full load reads anyway.
			c.takeEvents()
			if err := c.resync(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				next := bo.NextBackOff()
				c.log.Debug("cache resync failed, retrying", "err", err, "in", next)
				retry.Reset(next)
			} else {
				needSync = false
				c.caughtUp()
				bo.Reset()
				lastSession = c.s.SessionID()
				wasConnected = true
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-retry.C:
		case <-sess:
			connected := c.s.Connected()
			if connected && c.s.SessionID() != lastSession {
				needSync = true // new session: every watch is gone
			}
			if connected != wasConnected {
				wasConnected = connected
				c.setConnected(connected)
			}
		case <-c.evSig:
			if needSync {
				continue
			}
			if err := c.apply(ctx, c.takeEvents()); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				c.log.Debug("cache refresh failed; full resync", "err", err)
				needSync = true
			} else {
				c.caughtUp()
			}
		}
	}
}

func (c *TreeCache) setConnected(connected bool) {
	c.mu.Lock()
	c.connected = connected
	if !connected {
		c.staleSince = time.Now()
	}
	c.mu.Unlock()
	if connected {
		c.emit(CacheEvent{Type: ConnectionRestored, Path: c.root})
	} else {
		c.emit(CacheEvent{Type: ConnectionLost, Path: c.root})
	}
	c.notify()
}

func (c *TreeCache) emit(ev CacheEvent) {
	for _, l := range c.listeners {
		l <- ev
	}
}

func (c *TreeCache) notify() {
	for _, ch := range c.changed {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// parallel runs fn(0..n-1) on up to maxInFlight goroutines: the reads
// they make are pipelined on the session.
func parallel(ctx context.Context, n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, maxInFlight) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

type fetched struct {
	data []byte
	st   *zk.Stat
	kids []string
	err  error
}

// fetchNodes reads (with watches) the data (unless a container) and,
// unless a leaf, the children of every path, pipelined.
func (c *TreeCache) fetchNodes(ctx context.Context, paths []string) []fetched {
	out := make([]fetched, len(paths))
	parallel(ctx, len(paths), func(i int) {
		p := paths[i]
		if c.isContainer(p) {
			c.s.read("children", p)
			kids, st, _, err := c.s.conn.ChildrenW(p)
			out[i].kids, out[i].st, out[i].err = kids, st, err
			return
		}
		c.s.read("get", p)
		data, st, _, err := c.s.conn.GetW(p)
		if err != nil {
			out[i].err = err
			return
		}
		out[i].data, out[i].st = data, st
		if c.isLeaf(p) {
			return
		}
		c.s.read("children", p)
		kids, _, _, err := c.s.conn.ChildrenW(p)
		out[i].kids, out[i].err = kids, err
	})
	if err := ctx.Err(); err != nil {
		for i := range out {
			if out[i].err == nil && out[i].st == nil {
				out[i].err = err
			}
		}
	}
	return out
}

// loadTrees reads the subtrees at roots, level by level, with fresh
// watches. A znode deleted while it is read is left out.
func (c *TreeCache) loadTrees(ctx context.Context, roots []string) (map[string]*cnode, error) {
	m := map[string]*cnode{}
	level := roots
	for len(level) > 0 {
		res := c.fetchNodes(ctx, level)
		var next []string
		for i, p := range level {
			r := res[i]
			if errors.Is(r.err, zk.ErrNoNode) {
				continue
			}
			if r.err != nil {
				return nil, r.err
			}
			n := &cnode{CachedNode: CachedNode{Path: p, Data: c.keep(p, r.data), Stat: toStat(r.st)}, children: map[string]struct{}{}}
			m[p] = n
			for _, k := range r.kids {
				cp := path.Join(p, k)
				if c.skipped(cp) {
					continue
				}
				n.children[k] = struct{}{}
				next = append(next, cp)
			}
		}
		level = next
	}
	// Children listed but deleted before they were read.
	for _, n := range m {
		for k := range n.children {
			if _, ok := m[path.Join(n.Path, k)]; !ok {
				delete(n.children, k)
			}
		}
	}
	return m, nil
}

// loadRoot loads the whole subtree; a missing root gets an existence
// watch (NodeCreated loads it).
func (c *TreeCache) loadRoot(ctx context.Context) (map[string]*cnode, error) {
	for {
		m, err := c.loadTrees(ctx, []string{c.root})
		if err != nil || len(m) > 0 {
			return m, err
		}
		c.s.read("exists", c.root)
		ok, _, _, err := c.s.conn.ExistsW(c.root)
		if err != nil {
			return nil, err
		}
		if !ok {
			return m, nil
		}
		// Created between the two reads: load it.
	}
}

// resync rebuilds the whole tree with new watches and emits the diff.
func (c *TreeCache) resync(ctx context.Context) error {
	fresh, err := c.loadRoot(ctx)
	if err != nil {
		return err
	}
	var events []CacheEvent
	c.mu.Lock()
	old := c.nodes
	for _, p := range sortedKeys(old) {
		if _, ok := fresh[p]; !ok {
			events = append(events, CacheEvent{Type: NodeRemoved, Path: p, Data: old[p].Data, Stat: old[p].Stat})
		}
	}
	// deepest first for removals
	sort.SliceStable(events, func(i, j int) bool { return depth(events[i].Path) > depth(events[j].Path) })
	for _, p := range sortedKeys(fresh) {
		n := fresh[p]
		o, ok := old[p]
		switch {
		case !ok:
			events = append(events, CacheEvent{Type: NodeAdded, Path: p, Data: n.Data, Stat: n.Stat})
		case o.Stat.Mzxid != n.Stat.Mzxid || o.Stat.Ctime != n.Stat.Ctime:
			events = append(events, CacheEvent{Type: NodeUpdated, Path: p, Data: n.Data, Stat: n.Stat})
		}
	}
	c.nodes = fresh
	first := !c.initialized
	c.initialized = true
	c.connected = true
	c.lastSync = time.Now()
	c.mu.Unlock()
	for _, ev := range events {
		c.emit(ev)
	}
	if first {
		c.emit(CacheEvent{Type: CacheInitialized, Path: c.root})
		close(c.ready)
	} else {
		c.emit(CacheEvent{Type: CacheResynced, Path: c.root})
	}
	c.notify()
	return nil
}

var errWatchLost = errors.New("watch lost")

// apply handles a batch of watch events: deletions first (locally: a
// deleted znode's parent's children watch brings back one re-created
// since), then the data and children reads of the batch at once, then
// the new subtrees, level by level.
func (c *TreeCache) apply(ctx context.Context, evs []zk.Event) error {
	type want struct{ data, kids, deleted, created bool }
	ws := map[string]*want{}
	for _, ev := range evs {
		if c.skipped(ev.Path) {
			continue
		}
		w := ws[ev.Path]
		if w == nil {
			w = &want{}
			ws[ev.Path] = w
		}
		switch ev.Type {
		case zk.EventNotWatching:
			return errWatchLost
		case zk.EventNodeDataChanged:
			w.data = true
		case zk.EventNodeChildrenChanged:
			w.kids = true
		case zk.EventNodeDeleted:
			w.deleted = true
		case zk.EventNodeCreated:
			w.created = true
		}
	}
	if len(ws) == 0 {
		return nil
	}
	paths := make([]string, 0, len(ws))
	for p := range ws {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	changed := false
	rootBack := false
	type read struct {
		p    string
		kids bool
	}
	var reads []read
	for _, p := range paths {
		w := ws[p]
		if w.deleted {
			changed = c.removeTree(p) || changed
			if p == c.root {
				rootBack = true
			}
			continue
		}
		if w.created && p == c.root {
			rootBack = true
			continue
		}
		if w.data {
			reads = append(reads, read{p, false})
		}
		if w.kids {
			reads = append(reads, read{p, true})
		}
	}
	type result struct {
		data []byte
		st   *zk.Stat
		kids []string
		err  error
	}
	res := make([]result, len(reads))
	parallel(ctx, len(reads), func(i int) {
		if reads[i].kids {
			c.s.read("children", reads[i].p)
			res[i].kids, _, _, res[i].err = c.s.conn.ChildrenW(reads[i].p)
		} else {
			c.s.read("get", reads[i].p)
			res[i].data, res[i].st, _, res[i].err = c.s.conn.GetW(reads[i].p)
		}
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	var added []string
	for i, r := range reads {
		x := res[i]
		if errors.Is(x.err, zk.ErrNoNode) {
			changed = c.removeTree(r.p) || changed
			continue
		}
		if x.err != nil {
			return x.err
		}
		if !r.kids {
			changed = c.setData(r.p, x.data, x.st) || changed
			continue
		}
		gone, add := c.diffChildren(r.p, x.kids)
		for _, k := range gone {
			changed = c.removeTree(path.Join(r.p, k)) || changed
		}
		added = append(added, add...)
	}
	if rootBack {
		m, err := c.loadRoot(ctx)
		if err != nil {
			return err
		}
		changed = c.addAll(m) || changed
	}
	if len(added) > 0 {
		m, err := c.loadTrees(ctx, added)
		if err != nil {
			return err
		}
		changed = c.addAll(m) || changed
	}
	if changed {
		c.notify()
	}
	return nil
}

// diffChildren compares a fresh children list of p with the cache: the
// names gone, and the paths of the new ones (not skipped).
func (c *TreeCache) diffChildren(p string, kids []string) (gone, added []string) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n, ok := c.nodes[p]
	if !ok {
		return nil, nil
	}
	now := make(map[string]struct{}, len(kids))
	for _, k := range kids {
		now[k] = struct{}{}
		if _, had := n.children[k]; !had {
			if cp := path.Join(p, k); !c.skipped(cp) {
				added = append(added, cp)
			}
		}
	}
	for k := range n.children {
		if _, still := now[k]; !still {
			gone = append(gone, k)
		}
	}
	sort.Strings(gone)
	return gone, added
}

func (c *TreeCache) setData(p string, data []byte, st *zk.Stat) bool {
	c.mu.Lock()
	n, ok := c.nodes[p]
	if !ok {
		c.mu.Unlock()
		return false
	}
	n.Data, n.Stat = c.keep(p, data), toStat(st)
	ev := CacheEvent{Type: NodeUpdated, Path: p, Data: n.Data, Stat: n.Stat}
	c.mu.Unlock()
	c.emit(ev)
	return true
}

func (c *TreeCache) addAll(m map[string]*cnode) bool {
	if len(m) == 0 {
		return false
	}
	var events []CacheEvent
	c.mu.Lock()
	for _, p := range sortedKeys(m) {
		n := m[p]
		if par, ok := c.nodes[path.Dir(p)]; ok && p != c.root {
			par.children[path.Base(p)] = struct{}{}
		}
		_, existed := c.nodes[p]
		c.nodes[p] = n
		t := NodeAdded
		if existed {
			t = NodeUpdated
		}
		events = append(events, CacheEvent{Type: t, Path: p, Data: n.Data, Stat: n.Stat})
	}
	c.mu.Unlock()
	for _, ev := range events {
		c.emit(ev)
	}
	return true
}

func (c *TreeCache) removeTree(p string) bool {
	var events []CacheEvent
	c.mu.Lock()
	if _, ok := c.nodes[p]; !ok {
		c.mu.Unlock()
		return false
	}
	// Depth-first through the children maps: children before parents.
	var walk func(string)
	walk = func(q string) {
		n, ok := c.nodes[q]
		if !ok {
			return
		}
		kids := make([]string, 0, len(n.children))
		for k := range n.children {
			kids = append(kids, k)
		}
		sort.Strings(kids)
		for _, k := range kids {
			walk(path.Join(q, k))
		}
		events = append(events, CacheEvent{Type: NodeRemoved, Path: q, Data: n.Data, Stat: n.Stat})
		delete(c.nodes, q)
	}
	walk(p)
	if par, ok := c.nodes[path.Dir(p)]; ok {
		delete(par.children, path.Base(p))
	}
	c.mu.Unlock()
	for _, ev := range events {
		c.emit(ev)
	}
	return true
}

func sortedKeys(m map[string]*cnode) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func depth(p string) int { return strings.Count(p, "/") }
