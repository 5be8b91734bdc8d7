package engine

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-zookeeper/zk"
)

// Watch events reach tree caches through the connection's event callback
// (go-zookeeper publishes every watch event there as well as on the
// one-shot channel of the call that set the watch). A cache therefore
// needs no goroutine per watched znode: with 100,000 znodes that is
// 200,000 parked goroutines fewer. The callback runs on go-zookeeper's
// receive loop: subscribers must only queue the event.

type watchSub struct {
	prefix string
	fn     func(zk.Event)
	// wrote, when set, is told of every write this store makes on
	// prefix or below it, when ZooKeeper has answered it (the write's
	// watch events have been dispatched by then).
	wrote func(p string)
}

type watchHub struct {
	mu   sync.RWMutex
	subs map[*watchSub]struct{}
	// writers counts the subscriptions with a wrote callback: a store
	// without any (agents whose caches do not track their own writes)
	// skips noteWrites at once.
	writers atomic.Int32
}

// watchPrefix calls fn (on the receive loop: it must not block nor call
// ZooKeeper) for every watch event on prefix or below it, until the
// returned function is called.
func (s *Store) watchPrefix(prefix string, fn func(zk.Event), wrote func(p string)) func() {
	sub := &watchSub{prefix: prefix, fn: fn, wrote: wrote}
	s.watches.mu.Lock()
	if s.watches.subs == nil {
		s.watches.subs = map[*watchSub]struct{}{}
	}
	s.watches.subs[sub] = struct{}{}
	if wrote != nil {
		s.watches.writers.Add(1)
	}
	s.watches.mu.Unlock()
	return func() {
		s.watches.mu.Lock()
		if _, ok := s.watches.subs[sub]; ok && wrote != nil {
			s.watches.writers.Add(-1)
		}
		delete(s.watches.subs, sub)
		s.watches.mu.Unlock()
	}
}

// noteWrites tells the subscribers of each path that this store's write
// there was answered. Called on the writing goroutine as soon as the
// answer arrives (go-zookeeper dispatches a session's watch events on
// its receive loop before it hands over a later answer).
func (s *Store) noteWrites(paths ...string) {
	if s.watches.writers.Load() == 0 {
		return
	}
	s.watches.mu.RLock()
	defer s.watches.mu.RUnlock()
	for sub := range s.watches.subs {
		if sub.wrote == nil {
			continue
		}
		for _, p := range paths {
			if p == sub.prefix || strings.HasPrefix(p, sub.prefix+"/") {
				sub.wrote(p)
			}
		}
	}
}

func (s *Store) dispatchWatch(ev zk.Event) {
	s.stats.watchEvents.Add(1)
	s.watches.mu.RLock()
	defer s.watches.mu.RUnlock()
	for sub := range s.watches.subs {
		if ev.Path == sub.prefix || strings.HasPrefix(ev.Path, sub.prefix+"/") {
			sub.fn(ev)
		}
	}
}

// StoreStats counts the requests a store sent to ZooKeeper: what a
// benchmark divides by the work done ("reads per plan", "write
// transactions per instance"). A Multi is one write transaction of
// MultiOps operations.
type StoreStats struct {
	Reads       int64 // get, exists, children (with or without a watch)
	Writes      int64 // create, set, delete: one transaction each
	Multis      int64 // multi: one transaction each
	MultiOps    int64 // operations inside those multis
	WatchEvents int64 // watch events received
}

type storeStats struct {
	reads, writes, multis, multiOps, watchEvents atomic.Int64
	tally                                        atomic.Pointer[func(op, path string)]
}

// read counts one read request of op ("get", "exists", "children") on
// p, and tells the tally when one is set.
func (s *Store) read(op, p string) {
	s.stats.reads.Add(1)
	if t := s.stats.tally.Load(); t != nil {
		(*t)(op, p)
	}
}

// TallyReads calls fn with every read request this store sends from
// now on (op "get", "exists" or "children", with or without a watch,
// and its path); nil stops. For a benchmark's "which reads, on which
// znodes" table: fn runs on the reading goroutine and must be cheap
// and safe for concurrent use.
func (s *Store) TallyReads(fn func(op, path string)) {
	if fn == nil {
		s.stats.tally.Store(nil)
		return
	}
	s.stats.tally.Store(&fn)
}

// Stats returns the request counts of this store since it connected.
func (s *Store) Stats() StoreStats {
	return StoreStats{Reads: s.stats.reads.Load(), Writes: s.stats.writes.Load(), Multis: s.stats.multis.Load(),
		MultiOps: s.stats.multiOps.Load(), WatchEvents: s.stats.watchEvents.Load()}
}

// Sub returns the counts of a since b.
func (a StoreStats) Sub(b StoreStats) StoreStats {
	return StoreStats{Reads: a.Reads - b.Reads, Writes: a.Writes - b.Writes, Multis: a.Multis - b.Multis,
		MultiOps: a.MultiOps - b.MultiOps, WatchEvents: a.WatchEvents - b.WatchEvents}
}

// Add sums two counts.
func (a StoreStats) Add(b StoreStats) StoreStats {
	return StoreStats{Reads: a.Reads + b.Reads, Writes: a.Writes + b.Writes, Multis: a.Multis + b.Multis,
		MultiOps: a.MultiOps + b.MultiOps, WatchEvents: a.WatchEvents + b.WatchEvents}
}

// Transactions is the number of write transactions (single writes and
// multis).
func (a StoreStats) Transactions() int64 { return a.Writes + a.Multis }
