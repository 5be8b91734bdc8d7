package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Instance kinds.
const (
	KindElasticsearch = "elasticsearch"
	KindKibana        = "kibana"
)

// Placement strategies, as Elastic's platform names them.
const (
	StrategyFillAntiAffinity       = "fill-anti-affinity"
	StrategyFill                   = "fill"
	StrategyDistribute             = "distribute"
	StrategyDistributeAntiAffinity = "distribute-anti-affinity"
)

// Plan strategies.
const (
	PlanGrowAndShrink = "grow_and_shrink"
	PlanRolling       = "rolling"
)

// PlatformConfig is /paddock/config.
type PlatformConfig struct {
	// ID names this platform (32 hex), generated at creation. Docker
	// objects carry it as the label paddock.platform so that two
	// platforms on one Docker host never touch each other's containers.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Domain is the suffix of deployment host names (<id>.<domain>).
	Domain string `json:"domain"`
	// PlacementStrategy ranks allocators (fill-anti-affinity by default).
	PlacementStrategy string `json:"placement_strategy"`
	// LostAllocatorGraceSeconds: an allocator whose alive node is gone
	// this long has its instances replaced.
	LostAllocatorGraceSeconds int `json:"lost_allocator_grace_seconds"`
	// MaxReplacementsPerMinute brakes rescheduling storms.
	MaxReplacementsPerMinute int `json:"max_replacements_per_minute"`
	// Versions the platform offers (node images paddock/node:<version>).
	Versions []string `json:"versions"`
	// Identities are the digest ids of each role, so every role can
	// create znodes whose ACLs name the others.
	Identities Identities `json:"identities"`
	CreatedAt  time.Time  `json:"created_at"`
}

// DefaultVersions are the stand-in versions the platform offers.
var DefaultVersions = []string{"8.17.0", "8.18.0"}

// Zone is /paddock/zones/<zone>.
type Zone struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// Allocator is the record at /paddock/allocators/<id>.
type Allocator struct {
	ID   string `json:"id"`
	Zone string `json:"zone"`
	// Host is the address proxies use to reach this host's nodes.
	Host string `json:"host"`
	// CapacityMB is the memory the allocator offers (after settings).
	CapacityMB int               `json:"capacity_mb"`
	Tags       map[string]string `json:"tags,omitempty"`
	// Identity is the allocator's own digest id (public, it names the
	// allocator in the ACLs of its instances).
	Identity   string `json:"identity"`
	Runtime    string `json:"runtime"`
	TunnelAddr string `json:"tunnel_addr,omitempty"`
	// PeerEgress: the allocator's nodes reach their peers through it
	// (node → its allocator → mTLS → the peer's allocator tunnel), so
	// the constructor gives them <instance>.peer.paddock URLs.
	PeerEgress   bool      `json:"peer_egress,omitempty"`
	MetricsAddr  string    `json:"metrics_addr,omitempty"`
	Version      string    `json:"version"`
	RegisteredAt time.Time `json:"registered_at"`
}

// AllocatorAlive is the ephemeral /paddock/allocators/<id>/alive.
type AllocatorAlive struct {
	CapacityMB int       `json:"capacity_mb"`
	UsedMB     int       `json:"used_mb"`
	FreeMB     int       `json:"free_mb"`
	Instances  int       `json:"instances"`
	Healthy    int       `json:"healthy"`
	StartedAt  time.Time `json:"started_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// DockerOK is false while the container runtime is unreachable.
	DockerOK bool   `json:"docker_ok"`
	Error    string `json:"error,omitempty"`
}

// Maintenance is /paddock/allocators/<id>/maintenance (admin-written).
type Maintenance struct {
	On     bool      `json:"on"`
	Since  time.Time `json:"since"`
	By     string    `json:"by,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// AllocatorSettings is /paddock/allocators/<id>/settings (admin-written,
// applied live by the allocator).
type AllocatorSettings struct {
	CapacityMB int               `json:"capacity_mb,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
}

// Instance is a desired instance, written by the constructor at
// /paddock/allocators/<id>/instances/<iid>.
type Instance struct {
	ID           string `json:"id"`
	DeploymentID string `json:"deployment_id"`
	Kind         string `json:"kind"`
	Version      string `json:"version"`
	SizeMB       int    `json:"size_mb"`
	Zone         string `json:"zone"`
	PlanID       string `json:"plan_id"`
	// Generation increases to force a restart of the container.
	Generation int       `json:"generation"`
	CreatedAt  time.Time `json:"created_at"`
}

// Instance states reported by allocators.
const (
	StateCreating   = "creating"
	StateStarting   = "starting"
	StateRunning    = "running"
	StateUnhealthy  = "unhealthy"
	StateRestarting = "restarting"
	StateStopping   = "stopping"
	StateStopped    = "stopped"
	StateFailed     = "failed"
)

// InstanceStatus is the observed state at
// /paddock/allocators/<id>/status/<iid>, written by the allocator.
type InstanceStatus struct {
	ID           string `json:"id"`
	DeploymentID string `json:"deployment_id"`
	Kind         string `json:"kind"`
	Version      string `json:"version"`
	SizeMB       int    `json:"size_mb"`
	State        string `json:"state"`
	Reason       string `json:"reason,omitempty"`
	Healthy      bool   `json:"healthy"`
	ContainerID  string `json:"container_id,omitempty"`
	// Address is host:port where the node serves for proxies (the
	// allocator tunnel when tunnels are on).
	Address  string `json:"address,omitempty"`
	HostPort int    `json:"host_port,omitempty"`
	// TunnelAddr is the allocator's mTLS tunnel (host:9400) in front of
	// its nodes; when set, proxies reach the node there, with the SNI
	// stunnel.BackendSNI(instance id), and never at Address.
	TunnelAddr string    `json:"tunnel_addr,omitempty"`
	Restarts   int       `json:"restarts"`
	Generation int       `json:"generation"`
	StartedAt  time.Time `json:"started_at,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Topology is the desired shape of one instance kind.
type Topology struct {
	SizeMB int `json:"size_mb"`
	Zones  int `json:"zones"`
	// Filter: allocators must carry these tags.
	Filter map[string]string `json:"allocator_filter,omitempty"`
}

// DeploymentSpec is what a plan asks for.
type DeploymentSpec struct {
	Version       string   `json:"version"`
	Elasticsearch Topology `json:"elasticsearch"`
	// Kibana with SizeMB 0 means no Kibana.
	Kibana Topology `json:"kibana"`
}

// PlacedInstance is one instance of a deployment's current topology.
type PlacedInstance struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	Allocator string `json:"allocator"`
	Zone      string `json:"zone"`
	SizeMB    int    `json:"size_mb"`
	Version   string `json:"version"`
}

// Deployment statuses.
const (
	DeploymentInitializing  = "initializing"
	DeploymentRunning       = "running"
	DeploymentReconfiguring = "reconfiguring"
	DeploymentFailed        = "failed"
	DeploymentDeleting      = "deleting"
	DeploymentDeleted       = "deleted"
)

// Deployment is /paddock/deployments/<id>.
type Deployment struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	RequestID string    `json:"request_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Spec is the last successfully applied spec (empty before the first
	// plan succeeds).
	Spec DeploymentSpec `json:"spec"`
	// Instances is the current topology.
	Instances []PlacedInstance `json:"instances"`
	Status    string           `json:"status"`
	// LastPlanID and LastPlanStatus summarise the latest plan.
	LastPlanID     string `json:"last_plan_id,omitempty"`
	LastPlanStatus string `json:"last_plan_status,omitempty"`
}

// Plan actions.
const (
	ActionCreate  = "create"
	ActionUpdate  = "update"
	ActionDelete  = "delete"
	ActionRestart = "restart"
	ActionMove    = "move"
)

// Plan and step statuses.
const (
	PlanPending    = "pending"
	PlanRunning    = "running"
	PlanSuccess    = "success"
	PlanError      = "error"
	PlanCancelled  = "cancelled"
	PlanRolledBack = "rolled_back"
)

// PlanStep is one logged step of a plan's activity.
type PlanStep struct {
	Name      string     `json:"name"`
	Status    string     `json:"status"`
	Started   time.Time  `json:"started"`
	Ended     *time.Time `json:"ended,omitempty"`
	Message   string     `json:"message,omitempty"`
	AppliedBy string     `json:"applied_by,omitempty"`
	// Deadline is when a step that waits should have ended: past it,
	// still running, the step is blocked (Blocked) and the constructor
	// raises the alarm (paddock_plan_step_blocked). Steps that complete
	// at once have none.
	Deadline *time.Time `json:"deadline,omitempty"`
	// Waiting says, while the step runs, what it waits for right now
	// ("2 of 3 instances healthy; waiting for instance … on alloc-…").
	Waiting string `json:"waiting,omitempty"`
}

// Blocked reports whether the step still runs past its deadline at now.
func (s PlanStep) Blocked(now time.Time) bool {
	return s.Status == PlanRunning && s.Ended == nil && s.Deadline != nil && now.After(*s.Deadline)
}

// Plan is /paddock/deployments/<id>/plans/pending while it runs, and a
// history entry once finished.
type Plan struct {
	ID           string         `json:"id"`
	DeploymentID string         `json:"deployment_id"`
	Action       string         `json:"action"`
	Spec         DeploymentSpec `json:"spec"`
	Strategy     string         `json:"strategy"`
	// MoveFrom lists allocators to move instances off (vacate); Targets
	// optionally restricts where they go.
	MoveFrom  []string   `json:"move_from,omitempty"`
	Targets   []string   `json:"targets,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by,omitempty"`
	Status    string     `json:"status"`
	Steps     []PlanStep `json:"steps"`
	// CancelRequested asks the constructor to stop and roll back.
	CancelRequested bool       `json:"cancel_requested,omitempty"`
	Leader          string     `json:"leader,omitempty"`
	EndedAt         *time.Time `json:"ended_at,omitempty"`
	// State the executor keeps across leader changes (steps done,
	// snapshot source, route paused or switched...).
	Progress     PlanProgress     `json:"progress,omitzero"`
	NewInstances []PlacedInstance `json:"new_instances,omitempty"`
}

// LogOptions say which part of an instance's container log to read.
type LogOptions struct {
	// Tail is the number of last lines (0: DefaultLogTail).
	Tail int
	// Follow keeps the stream open for new lines.
	Follow bool
	// Since reads only lines newer than this (0: no limit).
	Since time.Duration
}

// DefaultLogTail is the tail of a log read that names none.
const DefaultLogTail = 200

// Route states.
const (
	RouteLive   = "live"
	RoutePaused = "paused"
)

// Backend is one node a proxy may send a deployment's traffic to.
type Backend struct {
	InstanceID string `json:"instance_id"`
	Kind       string `json:"kind"`
	Allocator  string `json:"allocator"`
	Zone       string `json:"zone"`
	// Address is host:port (plain) of the node as seen from proxies.
	Address string `json:"address"`
	// TLS is true when Address is an allocator tunnel (mTLS).
	TLS bool `json:"tls,omitempty"`
}

// Route is /paddock/routes/<deployment id>.
type Route struct {
	DeploymentID string    `json:"deployment_id"`
	State        string    `json:"state"`
	Backends     []Backend `json:"backends"`
	// Generation increases with every change of backends.
	Generation int64     `json:"generation"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// ProxyRecord is the ephemeral /paddock/proxies/<id>.
type ProxyRecord struct {
	ID        string    `json:"id"`
	HTTPAddr  string    `json:"http_addr"`
	HTTPSAddr string    `json:"https_addr,omitempty"`
	State     string    `json:"state"`
	Routes    int       `json:"routes"`
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ParseSize parses a memory size ("512m", "1g", "1.5g", "2048", "4GiB")
// into MB. A bare number is MB.
func ParseSize(s string) (int, error) {
	orig := s
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return 0, fmt.Errorf("empty size: use a number with a unit, such as 512m or 4g")
	}
	mult := 1.0
	for _, suf := range []struct {
		s string
		m float64
	}{{"gib", 1024}, {"gb", 1024}, {"g", 1024}, {"mib", 1}, {"mb", 1}, {"m", 1}, {"tib", 1024 * 1024}, {"tb", 1024 * 1024}, {"t", 1024 * 1024}} {
		if strings.HasSuffix(s, suf.s) {
			s, mult = strings.TrimSuffix(s, suf.s), suf.m
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 || f != f {
		return 0, fmt.Errorf("invalid size %q: use a number with a unit, such as 512m or 4g", orig)
	}
	if f*mult > 1<<40 {
		return 0, fmt.Errorf("size %q is larger than any host: use a number with a unit, such as 512m or 4g", orig)
	}
	return int(f * mult), nil
}

// FormatSize renders MB as "512m" / "4g" / "1.5g".
func FormatSize(mb int) string {
	if mb >= 1024 {
		if mb%1024 == 0 {
			return fmt.Sprintf("%dg", mb/1024)
		}
		return strconv.FormatFloat(float64(mb)/1024, 'f', 1, 64) + "g"
	}
	return fmt.Sprintf("%dm", mb)
}
