package tui

import (
	"context"
	"errors"
)

// CreateRequest is what the create-deployment form asks for.
type CreateRequest struct {
	Name     string
	Version  string
	SizeMB   int
	Zones    int
	KibanaMB int
}

// Actions are the operator actions the console triggers. Production
// implements them with the engine's service functions (the API's own);
// each returns once the plan is accepted, and the screens then follow
// the plan live through the snapshot.
type Actions interface {
	CreateDeployment(ctx context.Context, req CreateRequest) (id string, err error)
	ResizeDeployment(ctx context.Context, id string, sizeMB int) error
	UpgradeDeployment(ctx context.Context, id, version string) error
	RestartDeployment(ctx context.Context, id string) error
	DeleteDeployment(ctx context.Context, id string) error
	CancelPlan(ctx context.Context, id string) error
	SetMaintenance(ctx context.Context, allocator string, on bool) error
	VacateAllocator(ctx context.Context, allocator string) error
}

// ErrReadOnly is returned by NoActions.
var ErrReadOnly = errors.New("actions are not available in this console (read-only): use the API or the CLI")

// NoActions is a read-only console's Actions: every action says so.
type NoActions struct{ Reason error }

func (n NoActions) err() error {
	if n.Reason != nil {
		return n.Reason
	}
	return ErrReadOnly
}

// CreateDeployment implements Actions.
func (n NoActions) CreateDeployment(context.Context, CreateRequest) (string, error) {
	return "", n.err()
}

// ResizeDeployment implements Actions.
func (n NoActions) ResizeDeployment(context.Context, string, int) error { return n.err() }

// UpgradeDeployment implements Actions.
func (n NoActions) UpgradeDeployment(context.Context, string, string) error { return n.err() }

// RestartDeployment implements Actions.
func (n NoActions) RestartDeployment(context.Context, string) error { return n.err() }

// DeleteDeployment implements Actions.
func (n NoActions) DeleteDeployment(context.Context, string) error { return n.err() }

// CancelPlan implements Actions.
func (n NoActions) CancelPlan(context.Context, string) error { return n.err() }

// SetMaintenance implements Actions.
func (n NoActions) SetMaintenance(context.Context, string, bool) error { return n.err() }

// VacateAllocator implements Actions.
func (n NoActions) VacateAllocator(context.Context, string) error { return n.err() }
