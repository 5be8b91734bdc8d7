package service

import (
	"context"
	"errors"
	"sort"

	"paddock/engine"
)

// PlatformView is GET /platform: zones with allocator counts and
// capacity, the constructor leader, the proxies.
type PlatformView struct {
	engine.PlatformSummary
	Name          string               `json:"name"`
	Domain        string               `json:"domain"`
	Versions      []string             `json:"versions"`
	ProxyRecords  []engine.ProxyRecord `json:"proxy_records"`
	ConstructorCf ConstructorSettings  `json:"constructor"`
}

// Platform reads the platform overview.
func (s *Service) Platform(ctx context.Context) (PlatformView, error) {
	sum, err := s.store.Summary(ctx)
	if err != nil {
		return PlatformView{}, storeErr(err, "platform", "summary")
	}
	cfg, ver, err := s.store.Platform(ctx)
	if err != nil {
		return PlatformView{}, storeErr(err, "platform", "config")
	}
	if sum.Zones == nil {
		sum.Zones = []engine.ZoneSummary{}
	}
	proxies, err := s.ListProxies(ctx)
	if err != nil {
		return PlatformView{}, err
	}
	return PlatformView{PlatformSummary: sum, Name: cfg.Name, Domain: cfg.Domain, Versions: cfg.Versions,
		ProxyRecords: proxies, ConstructorCf: constructorSettings(cfg, ver)}, nil
}

// ListProxies returns the registered proxies, sorted by id.
func (s *Service) ListProxies(ctx context.Context) ([]engine.ProxyRecord, error) {
	ids, err := s.store.Children(ctx, engine.PathProxies)
	if err != nil {
		return nil, storeErr(err, "proxy", "list")
	}
	out := []engine.ProxyRecord{}
	for _, id := range ids {
		var p engine.ProxyRecord
		if _, err := s.store.GetJSON(ctx, engine.ProxyPath(id), &p); err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				continue
			}
			return nil, storeErr(err, "proxy", id)
		}
		if p.ID == "" {
			p.ID = id
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ConstructorSettings is the constructor's part of the platform config
// (GET|PUT /platform/configuration/store/constructor).
type ConstructorSettings struct {
	PlacementStrategy         string `json:"placement_strategy"`
	LostAllocatorGraceSeconds int    `json:"lost_allocator_grace_seconds"`
	MaxReplacementsPerMinute  int    `json:"max_replacements_per_minute"`
	// ResourceVersion is the config znode's version (for If-Match).
	ResourceVersion int32 `json:"resource_version"`
}

func constructorSettings(cfg engine.PlatformConfig, ver int32) ConstructorSettings {
	return ConstructorSettings{PlacementStrategy: cfg.PlacementStrategy, LostAllocatorGraceSeconds: cfg.LostAllocatorGraceSeconds,
		MaxReplacementsPerMinute: cfg.MaxReplacementsPerMinute, ResourceVersion: ver}
}

// Strategies are the placement strategies offered.
var Strategies = []string{engine.StrategyFillAntiAffinity, engine.StrategyFill, engine.StrategyDistribute, engine.StrategyDistributeAntiAffinity}

// GetConstructorSettings reads the constructor settings.
func (s *Service) GetConstructorSettings(ctx context.Context) (ConstructorSettings, error) {
	cfg, ver, err := s.store.Platform(ctx)
	if err != nil {
		return ConstructorSettings{}, storeErr(err, "platform", "config")
	}
	return constructorSettings(cfg, ver), nil
}

// SetConstructorSettings writes the constructor settings by
// compare-and-set; version nil uses the version just read.
func (s *Service) SetConstructorSettings(ctx context.Context, set ConstructorSettings, version *int32, actor Actor) (ConstructorSettings, error) {
	var fe []FieldError
	if !contains(Strategies, set.PlacementStrategy) {
		fe = append(fe, field("placement_strategy", "unknown strategy %q: use one of fill-anti-affinity, fill, distribute, distribute-anti-affinity", set.PlacementStrategy))
	}
	if set.LostAllocatorGraceSeconds < 1 || set.LostAllocatorGraceSeconds > 86400 {
		fe = append(fe, field("lost_allocator_grace_seconds", "must be between 1 and 86400, got %d", set.LostAllocatorGraceSeconds))
	}
	if set.MaxReplacementsPerMinute < 1 || set.MaxReplacementsPerMinute > 10000 {
		fe = append(fe, field("max_replacements_per_minute", "must be between 1 and 10000, got %d", set.MaxReplacementsPerMinute))
	}
	if len(fe) > 0 {
		return ConstructorSettings{}, invalid(fe...)
	}
	cfg, ver, err := s.store.Platform(ctx)
	if err != nil {
		return ConstructorSettings{}, storeErr(err, "platform", "config")
	}
	if version != nil && *version != ver {
		return ConstructorSettings{}, conflict("version.stale", "the platform configuration is at version %d, the request was based on version %d: read it again and retry", ver, *version)
	}
	cfg.PlacementStrategy = set.PlacementStrategy
	cfg.LostAllocatorGraceSeconds = set.LostAllocatorGraceSeconds
	cfg.MaxReplacementsPerMinute = set.MaxReplacementsPerMinute
	nv, err := s.store.Set(ctx, engine.PathConfig, cfg, ver)
	if err != nil {
		if errors.Is(err, engine.ErrConflict) {
			return ConstructorSettings{}, conflict("version.stale", "the platform configuration changed while the request was processed: read it again and retry")
		}
		return ConstructorSettings{}, storeErr(err, "platform", "config")
	}
	s.log.Info("constructor settings", "strategy", cfg.PlacementStrategy, "grace", cfg.LostAllocatorGraceSeconds, "by", string(actor))
	return constructorSettings(cfg, nv), nil
}
