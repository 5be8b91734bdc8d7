package allocator

import (
	"context"
	"errors"
	"time"

	"paddock/agents/node"
	"paddock/engine"
)

// Runtime is where node workloads run: the Docker engine, or the
// in-memory sim runtime for scale tests. It is consumed by the
// reconciler; every method blocks at most for the Docker call it makes.
type Runtime interface {
	// Name is "docker" or "sim".
	Name() string
	// Host describes the machine (CPUs and memory) for capacity and CPU
	// quotas.
	Host(ctx context.Context) (HostInfo, error)
	// Ping tells whether the runtime answers.
	Ping(ctx context.Context) error
	// EnsureImage makes the node image of version available (building it
	// when allowed) or says why it cannot.
	EnsureImage(ctx context.Context, version string) error
	// List returns the workloads this allocator owns, running or not.
	List(ctx context.Context) ([]Workload, error)
	// Create creates and starts a workload for spec.
	Create(ctx context.Context, spec Spec) (Workload, error)
	// Start (re)starts an existing, stopped workload in place (same id).
	Start(ctx context.Context, id string) error
	// Restart stops (gracefully, then kills) and starts a workload in
	// place.
	Restart(ctx context.Context, id string, timeout time.Duration) error
	// Remove stops a workload gracefully (SIGTERM, timeout, kill) and
	// removes it; its data volume is kept.
	Remove(ctx context.Context, w Workload, timeout time.Duration) error
	// Update changes a running workload's CPU shares and quota in place
	// (the allocator's capacity changed).
	Update(ctx context.Context, id string, r Resources) error
	// Probe asks a running workload's health endpoint.
	Probe(ctx context.Context, w Workload) error
	// Events signals (coalesced) when a workload changed state (died,
	// OOM, health changed...). The channel is closed when ctx ends.
	Events(ctx context.Context) <-chan struct{}
	// Volumes lists the data volumes of this allocator by instance id.
	Volumes(ctx context.Context) (map[string]string, error)
	// RemoveVolume deletes a data volume.
	RemoveVolume(ctx context.Context, name string) error
	// Close releases the runtime's client.
	Close() error
}

// HostInfo is what the allocator needs to know of its machine.
type HostInfo struct {
	CPUs     int
	MemoryMB int
}

// Spec is what the reconciler asks the runtime to run.
type Spec struct {
	Instance  engine.Instance
	Resources Resources
	// Security is the node's credentials file, written into its data
	// volume before it starts (nil: a deployment without credentials).
	Security *node.SecurityFile
}

// Workload is one node container as the runtime sees it.
type Workload struct {
	ID         string
	Name       string
	Instance   string
	Deployment string
	Kind       string
	Version    string
	SizeMB     int
	Generation int
	// State is the runtime's state: created, running, restarting,
	// paused, exited, dead, removing.
	State      string
	Running    bool
	ExitCode   int
	OOMKilled  bool
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	HostPort   int
	Address    string
	// Health is the runtime's own healthcheck state (starting, healthy,
	// unhealthy; "" when none).
	Health string
	// CPUShares and NanoCPUs in force.
	CPUShares int64
	NanoCPUs  int64
}

// ErrImageMissing says a node image is absent and cannot be built here.
var ErrImageMissing = errors.New("node image missing")
