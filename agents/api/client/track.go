package client

import (
	"context"
	"fmt"
	"time"

	"paddock/engine"
)

// PlanFailedError is a tracked plan that did not succeed: its last
// step's status was not success.
type PlanFailedError struct {
	Plan   engine.Plan
	Status string
	Reason string
}

func (e *PlanFailedError) Error() string {
	return fmt.Sprintf("plan %s %s: %s", e.Plan.ID, e.Status, e.Reason)
}

// Outcome judges a finished plan honestly: the last step's status
// decides (the plan's own status when it has no steps).
func Outcome(p engine.Plan) error {
	status, msg := p.Status, ""
	if n := len(p.Steps); n > 0 {
		status, msg = p.Steps[n-1].Status, p.Steps[n-1].Message
	}
	if status == engine.PlanSuccess {
		return nil
	}
	if msg == "" {
		msg = "plan status " + p.Status
	}
	return &PlanFailedError{Plan: p, Status: status, Reason: msg}
}

// Track follows plan planID of deployment depID through the activity
// endpoint, calling onStep for each step as it appears or changes
// status, until the plan is in the history. It returns the finished plan
// and Outcome's verdict. A 503 (ZooKeeper unavailable) is retried until
// ctx ends.
func (c *Client) Track(ctx context.Context, depID, planID string, every time.Duration, onStep func(engine.PlanStep)) (engine.Plan, error) {
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	seen := map[int]string{}
	missing := 0
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		a, _, err := c.Activity(ctx, depID)
		if err != nil && StatusOf(err) != 503 {
			if ctx.Err() != nil {
				return engine.Plan{}, fmt.Errorf("stopped tracking plan %s of %s: %w (it goes on: `paddock deployment activity %s`)", planID, depID, ctx.Err(), depID)
			}
			return engine.Plan{}, err
		}
		if err == nil {
			p, found := a.Plan(planID)
			if found {
				missing = 0
				for i, st := range p.Steps {
					if seen[i] != st.Status {
						seen[i] = st.Status
						if onStep != nil {
							onStep(st)
						}
					}
				}
				if a.Pending == nil || a.Pending.ID != planID {
					return p, Outcome(p)
				}
			} else if missing++; missing > 20 {
				return engine.Plan{}, fmt.Errorf("plan %s of deployment %s is neither pending nor in the history", planID, depID)
			}
		}
		select {
		case <-ctx.Done():
			return engine.Plan{}, fmt.Errorf("stopped tracking plan %s of %s: %w (it goes on: `paddock deployment activity %s`)", planID, depID, ctx.Err(), depID)
		case <-tick.C:
		}
	}
}
