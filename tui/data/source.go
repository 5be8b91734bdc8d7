package data

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"paddock/engine"
)

// Source feeds the console. Snapshot is cheap (a value already built);
// Changed is signalled (coalesced) whenever a new snapshot is ready.
type Source interface {
	Snapshot() Snapshot
	Changed() <-chan struct{}
}

// Static is a Source of fixed data (tests, fixtures).
type Static struct {
	mu sync.Mutex
	s  Snapshot
	ch chan struct{}
}

// NewStatic returns a source that serves s until Set.
func NewStatic(s Snapshot) *Static { return &Static{s: s, ch: make(chan struct{}, 1)} }

// Snapshot returns the current fixture.
func (st *Static) Snapshot() Snapshot {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.s
}

// Changed is signalled after Set.
func (st *Static) Changed() <-chan struct{} { return st.ch }

// Set replaces the fixture and signals listeners.
func (st *Static) Set(s Snapshot) {
	st.mu.Lock()
	st.s = s
	st.mu.Unlock()
	select {
	case st.ch <- struct{}{}:
	default:
	}
}

// Subtrees the console mirrors. /paddock as a whole is not readable by
// the admin role (security/** is the director's), so the console keeps
// one cache per readable subtree.
var Subtrees = []string{
	engine.PathConfig, engine.PathZones, engine.PathAllocators,
	engine.PathDeployments, engine.PathRoutes, engine.PathProxies, engine.PathLeader,
	engine.PathTrafficFilters, engine.PathCredentials, engine.PathSnapshots,
}

// Live is the production Source: TreeCaches over the platform's
// subtrees, driven by ZooKeeper watches. Each batch of changes rebuilds
// the snapshot (decoding only changed znodes); while ZooKeeper is lost
// the last snapshot stays, marked stale with its age.
type Live struct {
	store  *engine.Store
	caches []*engine.TreeCache
	log    *slog.Logger
	dec    *Decoder

	mu   sync.RWMutex
	snap Snapshot
	ch   chan struct{}
	// Builds counts snapshot rebuilds (benchmarks, tests).
	builds int
}

// NewLive prepares caches over the platform's subtrees; Run drives them.
func NewLive(s *engine.Store, log *slog.Logger) *Live {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Live{store: s, log: log, dec: NewDecoder(), ch: make(chan struct{}, 1)}
	for _, p := range Subtrees {
		var opts []engine.CacheOption
		if leaf := engine.LayoutLeaves(p); leaf != nil {
			// Statuses, instances, pending and finished plans: their
			// children are neither listed nor watched; the plans,
			// history, instances and status folders: their data is not
			// read (a read less each).
			opts = append(opts, engine.CacheLeaves(leaf), engine.CacheContainers(engine.ContainerZnode))
		}
		l.caches = append(l.caches, engine.NewTreeCache(s, p, opts...))
	}
	l.snap = Snapshot{ZooKeeper: s.Servers(), ByHealth: map[string]int{}}
	return l
}

// Snapshot returns the latest snapshot.
func (l *Live) Snapshot() Snapshot {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.snap
}

// Changed is signalled after each rebuild.
func (l *Live) Changed() <-chan struct{} { return l.ch }

// Builds is the number of snapshot rebuilds so far.
func (l *Live) Builds() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.builds
}

// Run keeps the snapshot current until ctx ends.
func (l *Live) Run(ctx context.Context) error {
	var changed []<-chan struct{}
	for _, c := range l.caches {
		changed = append(changed, c.Changed())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range l.caches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil {
				l.log.Warn("console cache stopped", "err", err)
			}
		}()
	}
	defer wg.Wait()
	// Fan the caches' coalesced signals into one.
	sig := make(chan struct{}, 1)
	for _, ch := range changed {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-ch:
					select {
					case sig <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	// (The stale age on screen moves with the console's own clock tick;
	// no rebuild is needed for it.)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sig:
			l.rebuild()
		}
	}
}

func (l *Live) ready() bool {
	for _, c := range l.caches {
		select {
		case <-c.Ready():
		default:
			return false
		}
	}
	return true
}

func (l *Live) stale() (bool, time.Time) {
	var since time.Time
	stale := false
	for _, c := range l.caches {
		if s, t := c.Stale(); s {
			stale = true
			if since.IsZero() || (!t.IsZero() && t.Before(since)) {
				since = t
			}
		}
	}
	return stale || !l.store.Connected(), since
}

func (l *Live) rebuild() {
	snap := Build(merged(l.caches), l.dec)
	snap.ZooKeeper = l.store.Servers()
	snap.Loaded = l.ready()
	stale, since := l.stale()
	snap.Connected = !stale
	snap.StaleSince = since
	for _, c := range l.caches {
		if t := c.LastSync(); snap.LastSync.IsZero() || t.Before(snap.LastSync) {
			snap.LastSync = t
		}
	}
	if stale {
		snap.Alerts = append([]Alert{{SevCritical, "ZooKeeper connection lost: showing the last known state, reconnecting"}}, snap.Alerts...)
	}
	l.mu.Lock()
	l.snap = snap
	l.builds++
	l.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
	default:
	}
}

// merged reads from the cache whose root holds the path.
type merged []*engine.TreeCache

func (m merged) pick(p string) *engine.TreeCache {
	for i, root := range Subtrees {
		if p == root || (len(p) > len(root) && p[:len(root)] == root && p[len(root)] == '/') {
			return m[i]
		}
	}
	return nil
}

func (m merged) Get(p string) (engine.CachedNode, bool) {
	if c := m.pick(p); c != nil {
		return c.Get(p)
	}
	return engine.CachedNode{}, false
}

func (m merged) Children(p string) []string {
	if c := m.pick(p); c != nil {
		return c.Children(p)
	}
	return nil
}
