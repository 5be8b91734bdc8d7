package constructor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"paddock/engine"
	"paddock/engine/placement"
)

// AllocatorView is what rescheduling needs of an allocator.
type AllocatorView struct {
	ID, Zone  string
	Alive     bool
	Instances int
}

// rescheduler decides which lost allocators to move instances off, with
// Kubernetes-style brakes: a token bucket on replacements and a freeze
// when the loss looks like a partition rather than failed hosts. Pure
// logic: the caller gives it the time and the fleet.
type rescheduler struct {
	missingSince map[string]time.Time
	tokens       float64
	last         time.Time
	frozen       string
}

func newRescheduler() *rescheduler {
	return &rescheduler{missingSince: map[string]time.Time{}, tokens: -1}
}

// Observe updates the missing-since clock of each allocator and returns
// the allocators lost longer than grace that hold instances, and a
// freeze reason ("" when rescheduling may proceed). An allocator seen
// missing for the first time starts its clock now: a new leader never
// acts on a loss it did not see last for the whole grace period.
func (r *rescheduler) Observe(now time.Time, fleet []AllocatorView, grace time.Duration) (lost []string, freeze string) {
	seen := map[string]bool{}
	rule := make([]placement.FleetAllocator, 0, len(fleet))
	for _, a := range fleet {
		seen[a.ID] = true
		rule = append(rule, placement.FleetAllocator{Zone: a.Zone, Alive: a.Alive})
		if a.Alive {
			delete(r.missingSince, a.ID)
			continue
		}
		since, ok := r.missingSince[a.ID]
		if !ok {
			r.missingSince[a.ID] = now
			since = now
		}
		if now.Sub(since) >= grace && a.Instances > 0 {
			lost = append(lost, a.ID)
		}
	}
	for id := range r.missingSince {
		if !seen[id] {
			delete(r.missingSince, id)
		}
	}
	sort.Strings(lost)
	if reasons := placement.FreezeReasons(rule); len(reasons) > 0 {
		freeze = strings.Join(reasons, "; ") + ": rescheduling frozen to avoid a replacement storm after a network split; " +
			"check the network and the allocators, then vacate allocators by hand if they are really gone"
	}
	return lost, freeze
}

// Take spends n replacement tokens if the bucket (perMinute per minute,
// burst perMinute) holds them.
func (r *rescheduler) Take(now time.Time, n, perMinute int) bool {
	if perMinute <= 0 {
		perMinute = 20
	}
	if r.tokens < 0 {
		r.tokens, r.last = float64(perMinute), now
	}
	r.tokens += now.Sub(r.last).Minutes() * float64(perMinute)
	r.last = now
	if r.tokens > float64(perMinute) {
		r.tokens = float64(perMinute)
	}
	if r.tokens < float64(n) {
		return false
	}
	r.tokens -= float64(n)
	return true
}

// reschedule creates move plans for the deployments on lost allocators.
func (l *leader) reschedule(ctx context.Context) {
	cfg := l.config()
	grace := time.Duration(cfg.LostAllocatorGraceSeconds) * time.Second
	if cfg.LostAllocatorGraceSeconds <= 0 {
		grace = 30 * time.Second
	}
	fleet, missing := l.w.fleet()
	l.m.lost.Set(float64(missing))
	if stale, _ := l.allocs.Stale(); stale {
		return // a stale cache says nothing about liveness
	}
	lost, freeze := l.resched.Observe(time.Now(), fleet, grace)
	if freeze != l.resched.frozen {
		if freeze != "" {
			l.log.Error("RESCHEDULING FROZEN", "reason", freeze)
			l.m.frozen.Set(1)
		} else {
			l.log.Info("rescheduling resumed")
			l.m.frozen.Set(0)
		}
		l.resched.frozen = freeze
		l.st.Set("rescheduling", freeze)
	}
	if freeze != "" {
		if len(lost) > 0 {
			l.m.held.Inc()
		}
		return
	}
	for _, alloc := range lost {
		byDep := l.w.instancesByDeployment(alloc)
		deps := make([]string, 0, len(byDep))
		for d := range byDep {
			deps = append(deps, d)
		}
		sort.Strings(deps)
		for _, depID := range deps {
			if l.busy(depID) {
				continue
			}
			if _, _, pending := l.w.pending(depID); pending {
				continue
			}
			d, _, ok := l.w.deployment(depID)
			if !ok || d.Status == engine.DeploymentDeleted || d.Status == engine.DeploymentDeleting {
				continue
			}
			onIt := 0
			for _, in := range d.Instances {
				if in.Allocator == alloc {
					onIt++
				}
			}
			if onIt == 0 {
				continue
			}
			if !l.resched.Take(time.Now(), onIt, cfg.MaxReplacementsPerMinute) {
				l.st.Set("rescheduling", fmt.Sprintf("rate limited: %d replacements per minute (max_replacements_per_minute)", cfg.MaxReplacementsPerMinute))
				return
			}
			l.st.Set("rescheduling", "")
			plan := engine.Plan{ID: engine.NewID(), DeploymentID: depID, Action: engine.ActionMove, Spec: d.Spec,
				Strategy: engine.PlanGrowAndShrink, MoveFrom: []string{alloc}, CreatedAt: time.Now().UTC(),
				CreatedBy: fmt.Sprintf("constructor %s: allocator %s lost for more than %s", l.cfg.ID, alloc, grace),
				Status:    engine.PlanPending, Steps: []engine.PlanStep{}}
			err := l.s.Multi(ctx, l.fenced(engine.OpCreate(engine.PendingPlanPath(depID), plan))...)
			switch {
			case err == nil:
				l.m.replacements.Add(float64(onIt))
				l.log.Warn("replacing instances of a lost allocator", "allocator", alloc, "deployment", depID, "instances", onIt, "plan", plan.ID)
			case errors.Is(err, engine.ErrExists):
			default:
				if ctx.Err() == nil {
					l.log.Warn("create move plan for lost allocator", "allocator", alloc, "deployment", depID, "err", err)
				}
			}
		}
	}
}
