package service

import (
	"context"

	"paddock/engine"
)

// Retryable reports whether a finished plan may be retried: it failed,
// was rolled back or was cancelled.
func Retryable(p *engine.Plan) bool {
	if p == nil {
		return false
	}
	switch p.Status {
	case engine.PlanError, engine.PlanRolledBack, engine.PlanCancelled:
		return true
	}
	return false
}

// RetryPlan asks again for what the deployment's last plan asked for,
// when that plan failed (error, rolled back or cancelled): the same
// action and spec in a new plan, through the same checks as the first
// request (placement, one plan at a time).
func (s *Service) RetryPlan(ctx context.Context, id string, actor Actor) (PlanResult, error) {
	cur, err := s.planReady(ctx, id)
	if err != nil {
		return PlanResult{}, err
	}
	act, err := s.readActivity(ctx, id, false)
	if err != nil {
		return PlanResult{}, err
	}
	if len(act.History) == 0 {
		return PlanResult{}, conflict("plan.not_failed", "deployment %s has no finished plan to retry", id)
	}
	last := act.History[len(act.History)-1]
	if !Retryable(&last) {
		return PlanResult{}, conflict("plan.not_failed",
			"the last plan of deployment %s (%s %s) ended %s: only a failed, rolled back or cancelled plan can be retried", id, last.Action, last.ID, last.Status)
	}
	var res PlanResult
	switch {
	case last.Action == engine.ActionUpdate:
		v := cur.ResourceVersion
		spec := last.Spec
		res, err = s.UpdateDeployment(ctx, id, UpdateRequest{Spec: &spec, Version: &v, Actor: actor})
	case last.Action == engine.ActionMove && len(last.MoveFrom) > 0:
		var planID string
		planID, err = s.move(ctx, id, last.MoveFrom[0], last.Targets, actor)
		res = PlanResult{DeploymentID: id, PlanID: planID, Changed: err == nil}
	default:
		plan := s.newPlan(id, last.Action, last.Spec, actor)
		err = s.writePlan(ctx, id, []engine.Op{
			engine.OpCheck(engine.DeploymentPath(id), cur.ResourceVersion),
			engine.OpCreate(engine.PendingPlanPath(id), plan),
		})
		res = PlanResult{DeploymentID: id, PlanID: plan.ID, Changed: err == nil}
	}
	if err != nil {
		return PlanResult{}, err
	}
	s.log.Info("plan retried", "deployment", id, "failed_plan", last.ID, "action", last.Action, "plan", res.PlanID, "by", string(actor))
	return res, nil
}
