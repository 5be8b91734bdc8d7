package engine

import (
	"context"
	"errors"
	"sort"
	"time"
)

// ZoneSummary is one zone's capacity and allocators.
type ZoneSummary struct {
	Name            string `json:"name"`
	Allocators      int    `json:"allocators"`
	AllocatorsAlive int    `json:"allocators_alive"`
	Maintenance     int    `json:"allocators_in_maintenance"`
	CapacityMB      int    `json:"capacity_mb"`
	UsedMB          int    `json:"used_mb"`
	Instances       int    `json:"instances"`
}

// PlatformSummary is the one-screen view of `paddock status`.
type PlatformSummary struct {
	ZooKeeper           string         `json:"zookeeper"`
	Zones               []ZoneSummary  `json:"zones"`
	AllocatorsAlive     int            `json:"allocators_alive"`
	AllocatorsTotal     int            `json:"allocators_total"`
	CapacityMB          int            `json:"capacity_mb"`
	UsedMB              int            `json:"used_mb"`
	Deployments         int            `json:"deployments"`
	DeploymentsByStatus map[string]int `json:"deployments_by_status"`
	PendingPlans        int            `json:"pending_plans"`
	Proxies             int            `json:"proxies"`
	ConstructorLeader   string         `json:"constructor_leader,omitempty"`
	GeneratedAt         time.Time      `json:"generated_at"`
}

// Summary reads the platform's state straight from ZooKeeper.
func (s *Store) Summary(ctx context.Context) (PlatformSummary, error) {
	sum := PlatformSummary{ZooKeeper: s.Servers(), DeploymentsByStatus: map[string]int{}, GeneratedAt: time.Now().UTC()}
	zones := map[string]*ZoneSummary{}
	zoneNames, err := s.Children(ctx, PathZones)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return sum, errors.New("no paddock platform in this ZooKeeper: create one with `paddock up`")
		}
		return sum, err
	}
	for _, z := range zoneNames {
		zones[z] = &ZoneSummary{Name: z}
	}
	allocs, err := s.Children(ctx, PathAllocators)
	if err != nil {
		return sum, err
	}
	for _, id := range allocs {
		var a Allocator
		if _, err := s.GetJSON(ctx, AllocatorPath(id), &a); err != nil {
			if errors.Is(err, ErrNotFound) {
				continue
			}
			return sum, err
		}
		z := zones[a.Zone]
		if z == nil {
			z = &ZoneSummary{Name: a.Zone}
			zones[a.Zone] = z
		}
		z.Allocators++
		sum.AllocatorsTotal++
		var alive AllocatorAlive
		if _, err := s.GetJSON(ctx, AllocatorAlivePath(id), &alive); err == nil {
			z.AllocatorsAlive++
			sum.AllocatorsAlive++
			z.CapacityMB += alive.CapacityMB
			z.UsedMB += alive.UsedMB
			z.Instances += alive.Instances
		} else if !errors.Is(err, ErrNotFound) {
			return sum, err
		}
		var m Maintenance
		if _, err := s.GetJSON(ctx, AllocatorMaintenancePath(id), &m); err == nil && m.On {
			z.Maintenance++
		}
	}
	for _, z := range zones {
		sum.Zones = append(sum.Zones, *z)
		sum.CapacityMB += z.CapacityMB
		sum.UsedMB += z.UsedMB
	}
	sort.Slice(sum.Zones, func(i, j int) bool { return sum.Zones[i].Name < sum.Zones[j].Name })
	deps, err := s.Children(ctx, PathDeployments)
	if err != nil && !errors.Is(err, ErrNoAuth) {
		return sum, err
	}
	for _, id := range deps {
		var d Deployment
		if _, err := s.GetJSON(ctx, DeploymentPath(id), &d); err != nil {
			continue
		}
		sum.Deployments++
		sum.DeploymentsByStatus[d.Status]++
		if ok, _, _ := s.Exists(ctx, PendingPlanPath(id)); ok {
			sum.PendingPlans++
		}
	}
	if ps, err := s.Children(ctx, PathProxies); err == nil {
		sum.Proxies = len(ps)
	}
	if cands, err := s.Children(ctx, PathLeaderCons); err == nil && len(cands) > 0 {
		sort.Strings(cands)
		if b, _, err := s.Get(ctx, PathLeaderCons+"/"+cands[0]); err == nil {
			sum.ConstructorLeader = string(b)
		}
	}
	return sum, nil
}
