package constructor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"paddock/agents/allocator"
	"paddock/engine"
)

// sickRuntime runs real nodes that never pass their health check.
type sickRuntime struct{ *nodeRuntime }

func (sickRuntime) Probe(context.Context, allocator.Workload) error {
	return errors.New("health check refused (test)")
}

// TestPlanStepBlockedPastDeadline: a plan held on "wait until running and
// healthy" by a node that never becomes healthy says what it waits for
// in words, gets a deadline, and once past it counts in
// paddock_plan_step_blocked; cancelling the plan clears the metric.
func TestPlanStepBlockedPastDeadline(t *testing.T) {
	h := newHarness(t, "zone-1")
	h.startAllocatorWith("a1", "zone-1", 4096, nil, func(c *allocator.Config) {
		rt := newNodeRuntime(t, h.snapshots)
		c.NewRuntime = func(allocator.Config) (allocator.Runtime, error) { return sickRuntime{rt}, nil }
		c.StartTimeout = time.Hour // no restarts: the node just stays unhealthy
	})
	_, addr := h.startConstructorWithMetrics("c1", nil, func(c *Config) {
		c.StepDeadline = time.Second
		c.HealthyTimeout = 5 * time.Minute
	})
	id, planID := h.createDeployment(spec("8.17.0", 1024, 1))

	var step engine.PlanStep
	h.waitFor("the wait step saying what it waits for", 30*time.Second, func() bool {
		p, ok := h.pendingPlan(id)
		if !ok || len(p.Steps) == 0 {
			return false
		}
		step = lastStep(p)
		return step.Name == StepWait && strings.Contains(step.Waiting, "0 of 1 instances healthy; waiting for instance") &&
			strings.Contains(step.Waiting, "on a1 (starting")
	})
	if step.Deadline == nil || step.Deadline.Sub(step.Started) != time.Second {
		t.Fatalf("wait step deadline: %+v", step)
	}
	blocked := `paddock_plan_step_blocked{step="` + StepWait + `"}`
	h.waitFor("the blocked-step metric", 30*time.Second, func() bool { return metric(t, addr, blocked) == 1 })
	if p, _ := h.pendingPlan(id); !lastStep(p).Blocked(time.Now()) {
		t.Fatalf("step past its deadline not blocked: %+v", lastStep(p))
	}

	var p engine.Plan
	if _, err := h.admin.Update(ctxT(t, 10*time.Second), engine.PendingPlanPath(id), &p, func() error {
		p.CancelRequested = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if p = h.waitPlan(id, planID, 60*time.Second); p.Status != engine.PlanCancelled {
		t.Fatalf("cancelled plan ended %s: %s", p.Status, stepNames(p))
	}
	for _, st := range p.Steps {
		if st.Waiting != "" {
			t.Fatalf("finished step keeps a waiting text: %+v", st)
		}
	}
	h.waitFor("the blocked-step metric cleared", 30*time.Second, func() bool { return metric(t, addr, blocked) == 0 })
}
