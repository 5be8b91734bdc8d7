package service

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"paddock/engine"
)

// Cache is the service's informer: watch caches of what the API and the
// console read, kept by ZooKeeper watches on the service's own session.
// It holds the allocators (with their desired instances and observed
// statuses), the deployments with their pending plans, routing and plan
// history, the platform config, the traffic filters, the API key records
// (every API request authenticates against them) and, of each
// deployment's credentials record, only its reset count (no hashes, no
// secrets).
//
// Reads of one deployment (GET, activity) are answered from it without
// a ZooKeeper round trip, with read-after-write for the caller: the
// service writes on the cache's session, ZooKeeper delivers a write's
// watch events before its answer, and the cache notes the events queued
// when each of this service's writes was answered; a read waits only
// until the cache has applied those of its deployment's znodes
// (TreeCache.SyncPath), not for other sessions' changes nor for a burst
// elsewhere. Changes made by other sessions (the constructor's plan
// steps, the allocators' statuses) show as soon as their events are
// applied, as from any watch cache (an informer). Lists and the
// placement check still make one round trip and catch up to it
// (TreeCache.Sync), so they also see other sessions' changes made
// before them.
//
// A read the cache cannot serve (not loaded, disconnected, the events
// not applied within syncWait, a deployment it does not have) goes to
// ZooKeeper.
type Cache struct {
	allocs, deps, config, creds, filters, keys *engine.TreeCache
	// served and missed count the reads of one deployment answered
	// from the cache and those that went to ZooKeeper.
	served, missed atomic.Int64
}

// ReadStats returns how many reads of one deployment (GET, activity)
// the cache answered, and how many went to ZooKeeper instead.
func (c *Cache) ReadStats() (served, missed int64) {
	return c.served.Load(), c.missed.Load()
}

// CacheReadStats is the service cache's ReadStats (zeros without a
// cache).
func (s *Service) CacheReadStats() (served, missed int64) {
	if s.cache == nil {
		return 0, 0
	}
	return s.cache.ReadStats()
}

// count records whether a read was served.
func (c *Cache) count(ok bool) bool {
	if c != nil {
		if ok {
			c.served.Add(1)
		} else {
			c.missed.Add(1)
		}
	}
	return ok
}

func everyZnode(string) bool { return true }

// NewCache returns a cache over the store; Run drives it.
func NewCache(s *engine.Store) *Cache {
	own := engine.CacheOwnWrites() // SyncPath: read-after-write
	return &Cache{
		allocs: engine.NewTreeCache(s, engine.PathAllocators, own,
			engine.CacheLeaves(engine.LeafAllocatorZnode), engine.CacheContainers(engine.ContainerZnode)),
		deps: engine.NewTreeCache(s, engine.PathDeployments, own,
			engine.CacheLeaves(engine.LeafDeploymentZnode), engine.CacheContainers(engine.ContainerZnode)),
		config:  engine.NewTreeCache(s, engine.PathConfig, own, engine.CacheLeaves(everyZnode)),
		creds:   engine.NewTreeCache(s, engine.PathCredentials, own, engine.CacheLeaves(everyZnode), engine.CacheData(credentialsSummary)),
		filters: engine.NewTreeCache(s, engine.PathTrafficFilters, own, engine.CacheLeaves(everyZnode)),
		keys:    engine.NewTreeCache(s, engine.PathAPIKeys, own, engine.CacheLeaves(everyZnode)),
	}
}

// credsSummary is what the cache keeps of a credentials record.
type credsSummary struct {
	Resets  int        `json:"resets"`
	ResetAt *time.Time `json:"reset_at,omitempty"`
}

// credentialsSummary keeps the reset count of a credentials record
// (nil when it is not one: reads of it go to ZooKeeper).
func credentialsSummary(_ string, data []byte) []byte {
	var rec engine.DeploymentCredentials
	if json.Unmarshal(data, &rec) != nil {
		return nil
	}
	b, _ := json.Marshal(credsSummary{Resets: rec.Resets, ResetAt: rec.ResetAt})
	return b
}

func (c *Cache) parts() []*engine.TreeCache {
	return []*engine.TreeCache{c.allocs, c.deps, c.config, c.creds, c.filters, c.keys}
}

// Run keeps the cache until ctx ends.
func (c *Cache) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	parts := c.parts()
	errs := make([]error, len(parts))
	for i, tc := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tc.Run(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && ctx.Err() == nil {
			return err
		}
	}
	return nil
}

// WaitReady waits until every part has loaded once, or ctx ends.
func (c *Cache) WaitReady(ctx context.Context) error {
	for _, tc := range c.parts() {
		select {
		case <-tc.Ready():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// usable reports whether tc has loaded and is connected now.
func usable(c *Cache, tc *engine.TreeCache) bool {
	if c == nil {
		return false
	}
	select {
	case <-tc.Ready():
	default:
		return false
	}
	stale, _ := tc.Stale()
	return !stale
}

// WithCache makes the service read from c where a slightly older view is
// acceptable (see Cache).
func WithCache(c *Cache) Option { return func(s *Service) { s.cache = c } }

// placementInventory is the inventory for a placement check.
func (s *Service) placementInventory(ctx context.Context) ([]engine.InventoryAllocator, error) {
	if s.cache != nil && usable(s.cache, s.cache.allocs) {
		// One round trip, then the cache caught up to it: the check sees
		// every allocator change made before the request (an allocator
		// that has just come up), in one read instead of one per
		// instance on the platform.
		if _, _, err := s.store.Exists(ctx, engine.PathAllocators); err != nil {
			return nil, err
		}
		if s.cache.synced(ctx, s.cache.allocs) {
			return engine.InventoryFromCache(s.cache.allocs, false), nil
		}
	}
	return s.store.PlacementInventory(ctx)
}

// platformConfig is the platform config.
func (s *Service) platformConfig(ctx context.Context) (engine.PlatformConfig, error) {
	if s.cache != nil && usable(s.cache, s.cache.config) {
		if n, ok := s.cache.config.Get(engine.PathConfig); ok {
			var cfg engine.PlatformConfig
			if err := json.Unmarshal(n.Data, &cfg); err == nil {
				return cfg, nil
			}
		}
	}
	cfg, _, err := s.store.Platform(ctx)
	return cfg, err
}

// deployment reads a deployment and its pending plan from the
// cache; ok is false when the cache does not have it.
func (c *Cache) deployment(id, domain string) (DeploymentView, bool, error) {
	n, ok := c.deps.Get(engine.DeploymentPath(id))
	if !ok {
		return DeploymentView{}, false, nil
	}
	var d engine.Deployment
	if err := json.Unmarshal(n.Data, &d); err != nil {
		return DeploymentView{}, true, err
	}
	v := DeploymentView{Deployment: d, ResourceVersion: n.Stat.Version, Endpoint: id + "." + domain}
	if v.Instances == nil {
		v.Instances = []engine.PlacedInstance{}
	}
	if pn, ok := c.deps.Get(engine.PendingPlanPath(id)); ok {
		var p engine.Plan
		if err := json.Unmarshal(pn.Data, &p); err != nil {
			return v, true, err
		}
		v.PendingPlan = &p
	}
	return v, true, nil
}

// syncWait bounds how long a read waits for the cache to apply the
// changes ZooKeeper has already told it of; past it the read goes to
// ZooKeeper.
const syncWait = 2 * time.Second

// synced reports whether tc can serve a read that must see every change
// made before this call's round trip (the caller has just made one on
// the store's session): connected, loaded, and caught up.
func (c *Cache) synced(ctx context.Context, tc *engine.TreeCache) bool {
	if !usable(c, tc) {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, syncWait)
	defer cancel()
	return tc.Sync(ctx) == nil
}

// fresh reports whether tc shows every write this service made at p
// before the call: connected, loaded, and the watch events of those
// writes (on p, below it, or above it while p is not cached, as a
// parent's children list may add it) applied within syncWait.
func (c *Cache) fresh(ctx context.Context, tc *engine.TreeCache, p string) bool {
	if !usable(c, tc) {
		return false
	}
	_, cached := tc.Get(p)
	ctx, cancel := context.WithTimeout(ctx, syncWait)
	defer cancel()
	return tc.SyncPath(ctx, p, !cached) == nil
}

// freshFor reports whether every part a read of deployment id uses is
// fresh for it (the allocators only need to be usable: the service
// never writes statuses or liveness).
func (c *Cache) freshFor(ctx context.Context, id string) bool {
	return c != nil && usable(c, c.allocs) &&
		c.fresh(ctx, c.deps, engine.DeploymentPath(id)) &&
		c.fresh(ctx, c.creds, engine.CredentialsPath(id)) &&
		c.fresh(ctx, c.filters, engine.PathTrafficFilters)
}

// security is deployment id's security view; ok is false when the
// cached record is not usable.
func (c *Cache) security(id string) (*SecurityView, bool) {
	n, ok := c.creds.Get(engine.CredentialsPath(id))
	if !ok {
		return nil, true
	}
	var sum credsSummary
	if n.Data == nil || json.Unmarshal(n.Data, &sum) != nil {
		return nil, false
	}
	return &SecurityView{Username: engine.SuperUser, PasswordReset: sum.Resets > 0, Resets: sum.Resets, ResetAt: sum.ResetAt}, true
}

// trafficFilters are the cached rule sets, sorted as trafficFilters
// sorts them; ok is false when one does not decode.
func (c *Cache) trafficFilters() ([]engine.TrafficFilterRuleSet, bool) {
	ids := c.filters.Children(engine.PathTrafficFilters)
	out := make([]engine.TrafficFilterRuleSet, 0, len(ids))
	for _, id := range ids {
		n, ok := c.filters.Get(engine.TrafficFilterPath(id))
		if !ok {
			continue
		}
		var r engine.TrafficFilterRuleSet
		if json.Unmarshal(n.Data, &r) != nil {
			return nil, false
		}
		r.ID = id
		out = append(out, r)
	}
	sortRuleSets(out)
	return out, true
}

// getDeployment answers GetDeployment from the cache; ok is false when
// it cannot (the caller reads ZooKeeper).
func (c *Cache) getDeployment(ctx context.Context, id, domain string) (v DeploymentView, ok bool) {
	defer func() { c.count(ok) }()
	if !c.freshFor(ctx, id) {
		return DeploymentView{}, false
	}
	v, ok, err := c.deployment(id, domain)
	if !ok || err != nil {
		return DeploymentView{}, false
	}
	filters, ok := c.trafficFilters()
	if !ok {
		return DeploymentView{}, false
	}
	v.TrafficFilters = filtersOf(filters, id)
	if v.Health, ok = c.health(v.Deployment); !ok {
		return DeploymentView{}, false
	}
	if v.Security, ok = c.security(id); !ok {
		return DeploymentView{}, false
	}
	return v, true
}

// activity answers Activity from the cache; ok is false when it cannot.
func (c *Cache) activity(ctx context.Context, id string) (act Activity, ok bool) {
	defer func() { c.count(ok) }()
	if !c.freshFor(ctx, id) {
		return Activity{}, false
	}
	if _, ok := c.deps.Get(engine.DeploymentPath(id)); !ok {
		return Activity{}, false
	}
	act = Activity{DeploymentID: id, History: []engine.Plan{}}
	if n, ok := c.deps.Get(engine.PendingPlanPath(id)); ok {
		var p engine.Plan
		if json.Unmarshal(n.Data, &p) != nil {
			return Activity{}, false
		}
		act.Pending = &p
	}
	for _, name := range c.deps.Children(engine.PlanHistoryPath(id)) {
		n, ok := c.deps.Get(engine.PlanHistoryEntryPath(id, name))
		if !ok {
			continue
		}
		var p engine.Plan
		if json.Unmarshal(n.Data, &p) != nil {
			return Activity{}, false
		}
		act.History = append(act.History, p)
	}
	if act.Security, ok = c.security(id); !ok {
		return Activity{}, false
	}
	return act, true
}

// apiKey reads API key record id into r; ok is false when the cache
// cannot answer (not loaded, or it has no such key: a key made a moment
// ago by another API process is then read from ZooKeeper). A key this
// service revoked is gone from it at once; one revoked elsewhere once
// its watch event is applied.
func (c *Cache) apiKey(ctx context.Context, id string, r *APIKeyRecord) bool {
	if c == nil || !c.fresh(ctx, c.keys, engine.APIKeyPath(id)) {
		return false
	}
	n, ok := c.keys.Get(engine.APIKeyPath(id))
	return ok && json.Unmarshal(n.Data, r) == nil
}
