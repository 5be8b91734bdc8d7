package service

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"paddock/engine"
)

// Cache keeps what the API reads on every request from ZooKeeper
// watches: the allocators (with their desired instances, for the
// placement check), the deployments with their pending plans (for
// lists) and the platform config. A service with a cache answers those
// from memory while the cache is connected and synced, and from
// ZooKeeper otherwise; single reads that must see the caller's own last
// write (GET of one deployment) still go to ZooKeeper.
//
// During a burst of creates this turns a create's placement check from
// one read per instance on the platform into none, and a list from two
// reads per deployment into one.
type Cache struct {
	allocs, deps, config *engine.TreeCache
}

// NewCache returns a cache over the store; Run drives it.
func NewCache(s *engine.Store) *Cache {
	return &Cache{
		allocs: engine.NewTreeCache(s, engine.PathAllocators,
			engine.CacheSkip(engine.AllocatorStatusesZnode), engine.CacheLeaves(engine.LeafAllocatorZnode), engine.CacheContainers(engine.ContainerZnode)),
		deps: engine.NewTreeCache(s, engine.PathDeployments,
			engine.CacheSkip(engine.PlanHistoryZnode), engine.CacheLeaves(engine.LeafDeploymentZnode), engine.CacheContainers(engine.ContainerZnode)),
		config: engine.NewTreeCache(s, engine.PathConfig, engine.CacheLeaves(func(string) bool { return true })),
	}
}

// Run keeps the cache until ctx ends.
func (c *Cache) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, tc := range []*engine.TreeCache{c.allocs, c.deps, c.config} {
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
	for _, tc := range []*engine.TreeCache{c.allocs, c.deps, c.config} {
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

// cachedDeployment reads a deployment and its pending plan from the
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
