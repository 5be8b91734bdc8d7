package api

import (
	"paddock/engine"
	"paddock/engine/service"
)

// CreateDeploymentBody is POST /deployments.
type CreateDeploymentBody struct {
	Name string `json:"name"`
	// RequestID makes the create idempotent.
	RequestID string `json:"request_id,omitempty"`
	// ValidateOnly checks and explains placement; nothing is written.
	ValidateOnly bool                  `json:"validate_only,omitempty"`
	Spec         engine.DeploymentSpec `json:"spec"`
	// Snapshot sets the snapshot schedule (default: every 30 minutes to
	// the default repository).
	Snapshot *service.SnapshotPolicyRequest `json:"snapshot,omitempty"`
	// RestoreFrom ("ID" or "ID/SNAPSHOT") restores another deployment's
	// snapshot into the new one once it runs.
	RestoreFrom string `json:"restore_from,omitempty"`
}

// UpdateDeploymentBody is PUT /deployments/{id}; `paddock deployment
// show ID --generate-update-payload` prints one.
type UpdateDeploymentBody struct {
	Name *string `json:"name,omitempty"`
	// Version is the resource version read (or send If-Match).
	Version *int32                 `json:"version,omitempty"`
	Spec    *engine.DeploymentSpec `json:"spec,omitempty"`
}

// MoveBody is POST /platform/infrastructure/allocators/{id}/clusters/_move.
type MoveBody struct {
	// Targets restricts where instances may go (optional).
	Targets []string `json:"targets,omitempty"`
}

// MaintenanceBody is the optional body of maintenance-mode/_start|_stop.
type MaintenanceBody struct {
	Reason string `json:"reason,omitempty"`
}

// ConstructorBody is PUT /platform/configuration/store/constructor.
type ConstructorBody struct {
	PlacementStrategy         string `json:"placement_strategy"`
	LostAllocatorGraceSeconds int    `json:"lost_allocator_grace_seconds"`
	MaxReplacementsPerMinute  int    `json:"max_replacements_per_minute"`
	Version                   *int32 `json:"version,omitempty"`
}

// CreateKeyBody is POST /users/auth/keys.
type CreateKeyBody struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// CreateKeyResponse holds the key, shown once.
type CreateKeyResponse struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
	Key  string `json:"key"`
}

// DeploymentList is GET /deployments.
type DeploymentList struct {
	Deployments []service.DeploymentView `json:"deployments"`
}

// AllocatorList is GET /platform/infrastructure/allocators.
type AllocatorList struct {
	Allocators []service.AllocatorView `json:"allocators"`
}

// ProxyList is GET /platform/infrastructure/proxies.
type ProxyList struct {
	Proxies []engine.ProxyRecord `json:"proxies"`
}

// KeyList is GET /users/auth/keys.
type KeyList struct {
	Keys []service.APIKeyInfo `json:"keys"`
}

// CancelResponse is DELETE /deployments/{id}/plan/pending.
type CancelResponse struct {
	DeploymentID    string `json:"id"`
	PlanID          string `json:"plan_id"`
	CancelRequested bool   `json:"cancel_requested"`
}
