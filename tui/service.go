package tui

import (
	"context"

	"paddock/engine"
	"paddock/engine/service"
)

// ServiceActions are the console's actions through the engine's service
// layer: the same functions the REST API calls, recorded with the
// console's actor name.
type ServiceActions struct {
	Svc   *service.Service
	Actor service.Actor
	// Perm is checked again at each call (the screens check it first,
	// to say why before any dialog).
	Perm Permissions
}

// CreateDeployment implements Actions.
func (s ServiceActions) CreateDeployment(ctx context.Context, req CreateRequest) (Created, error) {
	if err := s.Perm.Check(service.AccessDeployments); err != nil {
		return Created{}, err
	}
	spec := engine.DeploymentSpec{
		Version:       req.Version,
		Elasticsearch: engine.Topology{SizeMB: req.SizeMB, Zones: req.Zones},
	}
	if req.KibanaMB > 0 {
		spec.Kibana = engine.Topology{SizeMB: req.KibanaMB, Zones: 1}
	}
	res, err := s.Svc.CreateDeployment(ctx, service.CreateRequest{Name: req.Name, Spec: spec, Actor: s.Actor, RequestID: engine.NewID()})
	if err != nil {
		return Created{}, err
	}
	c := Created{ID: res.Deployment.ID}
	if res.Credentials != nil {
		c.Username, c.Password = res.Credentials.Username, res.Credentials.Password
	}
	return c, nil
}

// ResizeDeployment implements Actions.
func (s ServiceActions) ResizeDeployment(ctx context.Context, id string, sizeMB int) error {
	if err := s.Perm.Check(service.AccessDeployments); err != nil {
		return err
	}
	_, err := s.Svc.Resize(ctx, id, sizeMB, s.Actor)
	return err
}

// UpgradeDeployment implements Actions.
func (s ServiceActions) UpgradeDeployment(ctx context.Context, id, version string) error {
	if err := s.Perm.Check(service.AccessDeployments); err != nil {
		return err
	}
	_, err := s.Svc.Upgrade(ctx, id, version, s.Actor)
	return err
}

// RestartDeployment implements Actions.
func (s ServiceActions) RestartDeployment(ctx context.Context, id string) error {
	if err := s.Perm.Check(service.AccessDeployments); err != nil {
		return err
	}
	_, err := s.Svc.RestartDeployment(ctx, id, s.Actor)
	return err
}

// DeleteDeployment implements Actions.
func (s ServiceActions) DeleteDeployment(ctx context.Context, id string) error {
	if err := s.Perm.Check(service.AccessDeployments); err != nil {
		return err
	}
	_, err := s.Svc.DeleteDeployment(ctx, id, s.Actor)
	return err
}

// CancelPlan implements Actions.
func (s ServiceActions) CancelPlan(ctx context.Context, id string) error {
	if err := s.Perm.Check(service.AccessDeployments); err != nil {
		return err
	}
	_, err := s.Svc.CancelPlan(ctx, id, s.Actor)
	return err
}

// RetryPlan implements Actions.
func (s ServiceActions) RetryPlan(ctx context.Context, id string) error {
	if err := s.Perm.Check(service.AccessDeployments); err != nil {
		return err
	}
	_, err := s.Svc.RetryPlan(ctx, id, s.Actor)
	return err
}

// SetMaintenance implements Actions.
func (s ServiceActions) SetMaintenance(ctx context.Context, allocator string, on bool) error {
	if err := s.Perm.Check(service.AccessPlatform); err != nil {
		return err
	}
	reason := ""
	if on {
		reason = "set from the console"
	}
	_, err := s.Svc.SetMaintenance(ctx, allocator, on, reason, s.Actor)
	return err
}

// VacateAllocator implements Actions.
func (s ServiceActions) VacateAllocator(ctx context.Context, allocator string) error {
	if err := s.Perm.Check(service.AccessPlatform); err != nil {
		return err
	}
	_, err := s.Svc.Vacate(ctx, allocator, nil, s.Actor)
	return err
}
