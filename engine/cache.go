package engine

import (
	"context"
	"errors"
	"log/slog"
	"path"
	"sort"
	"strings"
	"sync"
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
type TreeCache struct {
	s    *Store
	root string
	log  *slog.Logger

	mu          sync.RWMutex
	nodes       map[string]*cnode
	initialized bool
	connected   bool
	staleSince  time.Time
	lastSync    time.Time

	watchCh chan watchEvent
	gen     int64

	listeners []chan CacheEvent
	changed   []chan struct{}
	ready     chan struct{}
}

type watchEvent struct {
	gen   int64
	path  string
	child bool
	ev    zk.Event
}

// NewTreeCache creates a cache of the subtree at root. Call Listen or
// Changed before Run to receive changes; Run drives it until ctx ends.
func NewTreeCache(s *Store, root string) *TreeCache {
	return &TreeCache{
		s: s, root: root, log: s.log.With("cache", root),
		nodes:   map[string]*cnode{},
		watchCh: make(chan watchEvent, 256),
		ready:   make(chan struct{}),
	}
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

// Run keeps the cache in step with ZooKeeper until ctx ends.
func (c *TreeCache) Run(ctx context.Context) error {
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
			if err := c.resync(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				next := bo.NextBackOff()
				c.log.Debug("cache resync failed, retrying", "err", err, "in", next)
				retry.Reset(next)
			} else {
				needSync = false
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
		case we := <-c.watchCh:
			if we.gen != c.gen {
				continue
			}
			if err := c.handle(ctx, we); err != nil {
				c.log.Debug("cache refresh failed; full resync", "path", we.path, "err", err)
				needSync = true
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

func (c *TreeCache) forward(gen int64, p string, child bool, ch <-chan zk.Event) {
	go func() {
		ev, ok := <-ch
		if !ok {
			ev = zk.Event{Type: zk.EventNotWatching, Path: p}
		}
		c.watchCh <- watchEvent{gen: gen, path: p, child: child, ev: ev}
	}()
}

// load reads the subtree at p with fresh watches into m.
func (c *TreeCache) load(ctx context.Context, p string, m map[string]*cnode) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	data, st, dw, err := c.s.conn.GetW(p)
	if errors.Is(err, zk.ErrNoNode) {
		if p == c.root {
			ok, _, ew, err := c.s.conn.ExistsW(p)
			if err != nil {
				return err
			}
			if !ok {
				c.forward(c.gen, p, false, ew)
				return nil
			}
			return c.load(ctx, p, m)
		}
		return nil
	}
	if err != nil {
		return err
	}
	kids, _, cw, err := c.s.conn.ChildrenW(p)
	if errors.Is(err, zk.ErrNoNode) {
		c.forward(c.gen, p, false, dw)
		return nil
	}
	if err != nil {
		return err
	}
	c.forward(c.gen, p, false, dw)
	c.forward(c.gen, p, true, cw)
	n := &cnode{CachedNode: CachedNode{Path: p, Data: data, Stat: toStat(st)}, children: map[string]struct{}{}}
	m[p] = n
	for _, k := range kids {
		n.children[k] = struct{}{}
		if err := c.load(ctx, path.Join(p, k), m); err != nil {
			return err
		}
	}
	return nil
}

// resync rebuilds the whole tree with new watches and emits the diff.
func (c *TreeCache) resync(ctx context.Context) error {
	c.gen++
	fresh := map[string]*cnode{}
	if err := c.load(ctx, c.root, fresh); err != nil {
		return err
	}
	// Children lists may include names whose load raced a delete.
	for _, n := range fresh {
		for k := range n.children {
			if _, ok := fresh[path.Join(n.Path, k)]; !ok {
				delete(n.children, k)
			}
		}
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

func (c *TreeCache) handle(ctx context.Context, we watchEvent) error {
	switch we.ev.Type {
	case zk.EventNotWatching:
		return errors.New("watch lost")
	case zk.EventNodeDataChanged:
		return c.refreshData(we.path)
	case zk.EventNodeChildrenChanged:
		return c.refreshChildren(ctx, we.path)
	case zk.EventNodeCreated:
		m := map[string]*cnode{}
		if err := c.load(ctx, we.path, m); err != nil {
			return err
		}
		c.addAll(m)
		return nil
	case zk.EventNodeDeleted:
		if we.child {
			return nil // the data watch of the same node handles it
		}
		// Recreated since? Then it is an update, with fresh watches.
		data, st, dw, err := c.s.conn.GetW(we.path)
		if errors.Is(err, zk.ErrNoNode) {
			c.removeTree(we.path)
			if we.path == c.root {
				m := map[string]*cnode{}
				return c.load(ctx, c.root, m)
			}
			return nil
		}
		if err != nil {
			return err
		}
		c.forward(c.gen, we.path, false, dw)
		c.setData(we.path, data, st)
		return c.refreshChildren(ctx, we.path)
	}
	return nil
}

func (c *TreeCache) refreshData(p string) error {
	data, st, dw, err := c.s.conn.GetW(p)
	if errors.Is(err, zk.ErrNoNode) {
		c.removeTree(p)
		return nil
	}
	if err != nil {
		return err
	}
	c.forward(c.gen, p, false, dw)
	c.setData(p, data, st)
	return nil
}

func (c *TreeCache) setData(p string, data []byte, st *zk.Stat) {
	c.mu.Lock()
	n, ok := c.nodes[p]
	if !ok {
		c.mu.Unlock()
		return
	}
	n.Data, n.Stat = data, toStat(st)
	ev := CacheEvent{Type: NodeUpdated, Path: p, Data: data, Stat: n.Stat}
	c.mu.Unlock()
	c.emit(ev)
	c.notify()
}

func (c *TreeCache) refreshChildren(ctx context.Context, p string) error {
	kids, _, cw, err := c.s.conn.ChildrenW(p)
	if errors.Is(err, zk.ErrNoNode) {
		c.removeTree(p)
		return nil
	}
	if err != nil {
		return err
	}
	c.forward(c.gen, p, true, cw)
	c.mu.RLock()
	n, ok := c.nodes[p]
	var gone, added []string
	if ok {
		now := map[string]struct{}{}
		for _, k := range kids {
			now[k] = struct{}{}
			if _, had := n.children[k]; !had {
				added = append(added, k)
			}
		}
		for k := range n.children {
			if _, still := now[k]; !still {
				gone = append(gone, k)
			}
		}
	}
	c.mu.RUnlock()
	for _, k := range gone {
		c.removeTree(path.Join(p, k))
	}
	sort.Strings(added)
	for _, k := range added {
		m := map[string]*cnode{}
		if err := c.load(ctx, path.Join(p, k), m); err != nil {
			return err
		}
		c.addAll(m)
	}
	return nil
}

func (c *TreeCache) addAll(m map[string]*cnode) {
	if len(m) == 0 {
		return
	}
	var events []CacheEvent
	c.mu.Lock()
	for _, p := range sortedKeys(m) {
		n := m[p]
		if par, ok := c.nodes[path.Dir(p)]; ok {
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
	c.notify()
}

func (c *TreeCache) removeTree(p string) {
	var events []CacheEvent
	c.mu.Lock()
	if _, ok := c.nodes[p]; !ok {
		c.mu.Unlock()
		return
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
	c.notify()
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
