package constructor

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"paddock/engine"
	"paddock/stunnel"
)

// Config configures a constructor.
type Config struct {
	// Store is a session authenticated as the constructor role. Run does
	// not close it.
	Store *engine.Store
	// ID names this constructor in the election and in plan activity
	// (default: constructor-<hostname>-<pid>).
	ID string
	// MetricsAddr serves /metrics, /healthz, /readyz ("" = none).
	MetricsAddr string
	// Nodes talks to deployment nodes (default: HTTP).
	Nodes NodeAPI
	// NodeLoader is this host's constructor-role certificate (reloaded on
	// renewal). With it, a node whose status has a TunnelAddr is reached
	// there over mutual TLS (SNI stunnel.BackendSNI(instance id), the
	// server must hold an allocator-role certificate of the platform CA),
	// never at its Address; Nodes must then be an *HTTPNodes (or nil).
	// Without it, nodes are called at their Address (same-host only).
	NodeLoader *stunnel.Loader
	// HealthyTimeout bounds the wait for new instances to run healthy.
	HealthyTimeout time.Duration
	// StepTimeout bounds a node operation (snapshot, restore).
	StepTimeout time.Duration
	// StepDeadline is how long a plan step that waits (for instances,
	// a snapshot, a migration) may run before it counts as blocked: an
	// alarm (log, paddock_plan_step_blocked) while it goes on; the step
	// fails only at its own timeout. Default 2 minutes.
	StepDeadline time.Duration
	// PauseSettle is how long the route stays paused before the final
	// sync, so proxies see the pause and in-flight writes finish.
	PauseSettle time.Duration
	// Tick is the period of the leader's sweep (platform config, routes
	// of deployments without a plan, rescheduling); plans run on watch
	// events.
	Tick time.Duration
	// FailoverGrace is how long a deployment's primary may look lost
	// (container gone or unhealthy, allocator lost) before an in-sync
	// replica is promoted. Default 3 s.
	FailoverGrace time.Duration
	// ReplicationCheck is the period at which every copy's view of its
	// routing is compared with ZooKeeper (re-pushed when behind), at most
	// 250 deployments a second (longer rounds above 1,250); copies whose
	// status changed are checked at once. Default 5 s.
	ReplicationCheck time.Duration
	// MigrateBySnapshot: grow-and-shrink plans (resize, upgrade, vacate)
	// move the data to new Elasticsearch nodes by snapshot, restore,
	// paused route and final sync. By default they move it by
	// replication recovery whenever the deployment's primary runs and
	// stays until the switch (new copies join out of sync, recover from
	// the primary while writes go on, the route switches once they are
	// in sync, never paused), and by snapshot only when it does not (a
	// lost allocator) or when recovery stalls (RecoveryStall).
	MigrateBySnapshot bool
	// RecoveryStall is how long the recovery of new copies may make no
	// progress (no copy joins in_sync, no checkpoint moves on the
	// primary or on a new copy) before the plan takes them out of the
	// group and moves the data by snapshot instead. Default 30 s.
	RecoveryStall time.Duration
	// MaxReplicationPolls bounds the event long-polls open on primaries
	// at once (default 1024).
	MaxReplicationPolls int
	// MaxPlans bounds the plans run at once (default 256); more wait
	// their turn, first come first served.
	MaxPlans int
	// Seed fixes placement tie-breaks (0: placement.PlatformSeed, as the
	// service's preview): the leader keeps one placement state, seeded
	// once.
	Seed   int64
	Logger *slog.Logger
	// Ready, if set, receives the bound metrics address once serving.
	Ready func(metricsAddr string)
}

func (c *Config) defaults() error {
	if c.Store == nil {
		return fmt.Errorf("constructor: no ZooKeeper store: connect as the constructor role first")
	}
	if c.ID == "" {
		h, _ := os.Hostname()
		c.ID = fmt.Sprintf("constructor-%s-%d", h, os.Getpid())
	}
	if c.Nodes == nil {
		c.Nodes = NewHTTPNodes()
	}
	if c.HealthyTimeout == 0 {
		c.HealthyTimeout = 3 * time.Minute
	}
	if c.StepTimeout == 0 {
		c.StepTimeout = 2 * time.Minute
	}
	if c.StepDeadline == 0 {
		c.StepDeadline = 2 * time.Minute
	}
	if c.PauseSettle == 0 {
		c.PauseSettle = time.Second
	}
	if c.Tick == 0 {
		c.Tick = time.Second
	}
	if c.FailoverGrace == 0 {
		c.FailoverGrace = 3 * time.Second
	}
	if c.ReplicationCheck == 0 {
		c.ReplicationCheck = 5 * time.Second
	}
	if c.RecoveryStall <= 0 {
		c.RecoveryStall = 30 * time.Second
	}
	if c.MaxReplicationPolls <= 0 {
		c.MaxReplicationPolls = 1024
	}
	if c.MaxPlans <= 0 {
		c.MaxPlans = 256
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}
