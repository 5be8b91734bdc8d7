package constructor

import (
	"strings"
	"testing"
	"time"

	"paddock/engine"
)

// TestRollingRestartHandsOverUnderWrites: restarting a replicated
// deployment under a writer hands the primary over before its node
// goes down (term+1, planned: no failover counted; the primary's node
// last: one handover), and waits for each copy to be in sync again
// before the next one restarts; no acknowledged write is lost and the
// deployment ends green. Before, the primary's restart was
// seen as a lost primary and promoted after the failover grace, and the
// second copy could restart while the first still recovered (red).
func TestRollingRestartHandsOverUnderWrites(t *testing.T) {
	h := newHarness(t, "zone-1", "zone-2")
	h.startAllocator("alloc-1", "zone-1", 4096, nil)
	h.startAllocator("alloc-2", "zone-2", 4096, nil)
	_, metrics := h.startConstructorWithMetrics("c1", NewHTTPNodes(), func(c *Config) {
		c.FailoverGrace = time.Minute // a promotion could only be the restart's own handover
	})
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	if p := h.waitPlan(id, planID, 60*time.Second); p.Status != engine.PlanSuccess {
		t.Fatalf("create: %s", stepNames(p))
	}
	checkRunning(t, h, id, 2)
	r0, _, _ := h.replication(id)

	w, stopWriter := startWriter(t, h, id)

	rs := h.submit(id, engine.Plan{Action: engine.ActionRestart})
	p := h.waitPlan(id, rs, 90*time.Second)
	if p.Status != engine.PlanSuccess {
		t.Fatalf("restart %s: %s", p.Status, stepNames(p))
	}
	var restarts []string
	for _, s := range p.Steps {
		if s.Name == StepRestart && s.Status == engine.PlanSuccess {
			restarts = append(restarts, s.Message)
		}
	}
	if len(restarts) != 2 {
		t.Fatalf("restart steps %q, want 2 successful", restarts)
	}
	all := strings.Join(restarts, "\n")
	for _, want := range []string{"primary handed over to", "in sync"} {
		if !strings.Contains(all, want) {
			t.Fatalf("restart steps lack %q:\n%s", want, all)
		}
	}
	// The primary's node restarts last: one handover.
	if strings.Contains(restarts[0], "primary handed over to") || !strings.Contains(restarts[1], "primary handed over to") {
		t.Fatalf("want the replica restarted first, then the primary handed over:\n%s", all)
	}
	r, _, _ := h.replication(id)
	if r.Term != r0.Term+1 || len(r.InSync) != 2 || r.Primary == r0.Primary {
		t.Fatalf("routing after the restart %+v (was %+v): want one handover (term+1) and both copies in sync", r, r0)
	}
	if n := metric(t, metrics, "paddock_constructor_promotions_total"); n != 0 {
		t.Fatalf("paddock_constructor_promotions_total = %v: the restart went through failover", n)
	}
	w.waitMore("writes after the restart")
	stopWriter()
	w.checkNoLoss(t)
	t.Logf("%d failed write attempts during the restart; steps:\n%s", w.fails.Load(), all)
}
