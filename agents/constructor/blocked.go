package constructor

import (
	"sort"
	"sync"
	"time"
)

// inflight tracks the waiting steps running now, so that the leader's
// sweep can tell the ones past their deadline (blocked) and raise the
// alarm once per step.
type inflight struct {
	mu    sync.Mutex
	steps map[string]*runningStep // by deployment id
}

type runningStep struct {
	dep, plan, step string
	deadline        time.Time
	waiting         string
	alerted         bool
}

func (f *inflight) start(dep, plan, step string, deadline time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.steps == nil {
		f.steps = map[string]*runningStep{}
	}
	f.steps[dep] = &runningStep{dep: dep, plan: plan, step: step, deadline: deadline}
}

func (f *inflight) wait(dep, waiting string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.steps[dep]; r != nil {
		r.waiting = waiting
	}
}

func (f *inflight) end(dep string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.steps, dep)
}

// blocked returns, per step name, how many steps are past their
// deadline at now, and the ones not alerted yet (marked alerted).
func (f *inflight) blocked(now time.Time) (count map[string]int, fresh []runningStep) {
	f.mu.Lock()
	defer f.mu.Unlock()
	count = map[string]int{}
	for _, r := range f.steps {
		if !now.After(r.deadline) {
			continue
		}
		count[r.step]++
		if !r.alerted {
			r.alerted = true
			fresh = append(fresh, *r)
		}
	}
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].dep < fresh[j].dep })
	return count, fresh
}

// checkBlocked sets paddock_plan_step_blocked and logs each step the
// first time it is found past its deadline.
func (l *leader) checkBlocked(now time.Time) {
	count, fresh := l.inflight.blocked(now)
	l.m.blocked.Reset()
	for step, n := range count {
		l.m.blocked.WithLabelValues(step).Set(float64(n))
	}
	for _, r := range fresh {
		l.log.Error("PLAN STEP BLOCKED: running past its deadline", "deployment", r.dep, "plan", r.plan, "step", r.step,
			"deadline", r.deadline.UTC().Format(time.RFC3339), "waiting", r.waiting,
			"hint", "see `paddock deployment activity "+r.dep+"`; cancel the plan (`paddock deployment cancel "+r.dep+"`) or fix what it waits for")
	}
}
