package data

import (
	"encoding/json"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"paddock/engine"
	"paddock/engine/placement"
)

// Health of a deployment as the console shows it.
const (
	HealthHealthy  = "healthy"
	HealthDegraded = "degraded"
	HealthDown     = "unhealthy"
	HealthPending  = "pending"
	HealthDeleting = "deleting"
)

// Alert severities.
const (
	SevCritical = "critical"
	SevWarning  = "warning"
	SevInfo     = "info"
)

// Alert is one line of the Overview's alert box.
type Alert struct {
	Severity string
	Message  string
}

// Allocator is one allocator with everything the console shows of it.
type Allocator struct {
	engine.Allocator
	// Alive is nil while the allocator holds no session (lost).
	Alive       *engine.AllocatorAlive
	Maintenance bool
	Instances   []Instance
}

// Instance joins a desired instance with its observed status.
type Instance struct {
	engine.Instance
	Allocator string
	Status    *engine.InstanceStatus
}

// Lost reports whether the allocator's ephemeral alive node is gone.
func (a Allocator) Lost() bool { return a.Alive == nil }

// CapacityMB prefers the live figure.
func (a Allocator) CapacityMB() int {
	if a.Alive != nil && a.Alive.CapacityMB > 0 {
		return a.Alive.CapacityMB
	}
	return a.Allocator.CapacityMB
}

// UsedMB is the memory taken by instances (live figure, else desired).
func (a Allocator) UsedMB() int {
	if a.Alive != nil {
		return a.Alive.UsedMB
	}
	used := 0
	for _, in := range a.Instances {
		used += in.SizeMB
	}
	return used
}

// Healthy counts the allocator's healthy instances.
func (a Allocator) Healthy() int {
	n := 0
	for _, in := range a.Instances {
		if in.Status != nil && in.Status.Healthy {
			n++
		}
	}
	return n
}

// State is a short word for the allocator's condition.
func (a Allocator) State() string {
	switch {
	case a.Alive == nil:
		return "lost"
	case !a.Alive.DockerOK:
		return "docker-down"
	case a.Maintenance:
		return "maintenance"
	}
	return "ok"
}

// Deployment is one deployment with its plans, route and health.
type Deployment struct {
	engine.Deployment
	Pending  *engine.Plan
	LastPlan *engine.Plan
	Route    *engine.Route
	// Filters names the traffic filter rule sets attached (none: open).
	Filters []string
	// Secured: the deployment has an elastic user (created since
	// deployment security); PasswordResets counts its password resets,
	// the last at PasswordResetAt. Never the password or its hash.
	Secured         bool
	PasswordResets  int
	PasswordResetAt *time.Time
	// SnapshotPolicy is the deployment's snapshot schedule (defaults when
	// it has none); LastSnapshot is its newest snapshot record (any
	// status) and LastGoodSnapshot the newest successful one.
	SnapshotPolicy   engine.SnapshotPolicy
	LastSnapshot     *engine.SnapshotRecord
	LastGoodSnapshot *engine.SnapshotRecord
	// Members are the current topology's instances with their status.
	Members []Member
	// Incoming are the running plan's new instances (not yet members:
	// a node that never becomes healthy is one), with their status.
	Incoming []Member
	Health   string
	Healthy  int
	// Repl is the constructor's replication routing (nil before the
	// first plan made the nodes healthy); Replication its health
	// (green, yellow, red) and ReplicationReason what is missing, by
	// engine.ReplicationHealth as the CLI and API show them.
	Repl              *engine.Replication
	Replication       string
	ReplicationReason string
}

// Member is a placed instance with its observed status.
type Member struct {
	engine.PlacedInstance
	Status *engine.InstanceStatus
}

// Zone aggregates one zone.
type Zone struct {
	Name        string
	Allocators  int
	Alive       int
	Maintenance int
	CapacityMB  int
	UsedMB      int
	Instances   int
	Healthy     int
}

// Snapshot is everything the console shows, at one moment.
type Snapshot struct {
	// Loaded is false until the first full read.
	Loaded     bool
	Connected  bool
	StaleSince time.Time
	LastSync   time.Time
	ZooKeeper  string

	Platform    engine.PlatformConfig
	Zones       []Zone
	Allocators  []Allocator
	Deployments []Deployment
	Proxies     []engine.ProxyRecord
	Leader      string
	Alerts      []Alert

	ByHealth     map[string]int
	PendingPlans int
	// Frozen says why the constructor holds rescheduling back ("" when
	// it may replace lost instances).
	Frozen string
}

// Allocator returns the allocator with id.
func (s *Snapshot) Allocator(id string) (Allocator, bool) {
	i := sort.Search(len(s.Allocators), func(i int) bool { return s.Allocators[i].ID >= id })
	if i < len(s.Allocators) && s.Allocators[i].ID == id {
		return s.Allocators[i], true
	}
	return Allocator{}, false
}

// Deployment returns the deployment with id.
func (s *Snapshot) Deployment(id string) (Deployment, bool) {
	for _, d := range s.Deployments {
		if d.ID == id {
			return d, true
		}
	}
	return Deployment{}, false
}

// RunningPlans lists deployments with a pending plan, oldest first.
func (s *Snapshot) RunningPlans() []Deployment {
	var out []Deployment
	for _, d := range s.Deployments {
		if d.Pending != nil {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pending.CreatedAt.Before(out[j].Pending.CreatedAt) })
	return out
}

// Reader is what Build needs from a tree: engine.TreeCache has it.
type Reader interface {
	Get(p string) (engine.CachedNode, bool)
	Children(p string) []string
}

// Decoder remembers decoded znodes by path and modification zxid, so a
// rebuild after one change decodes one znode, not the whole tree.
type Decoder struct {
	m    map[string]decoded
	seen map[string]struct{}
}

type decoded struct {
	mzxid int64
	ctime time.Time
	v     any
}

// NewDecoder returns an empty decoder cache.
func NewDecoder() *Decoder { return &Decoder{m: map[string]decoded{}} }

func get[T any](d *Decoder, r Reader, p string) (*T, bool) {
	n, ok := r.Get(p)
	if !ok {
		return nil, false
	}
	if d != nil {
		d.seen[p] = struct{}{}
		if c, ok := d.m[p]; ok && c.mzxid == n.Stat.Mzxid && c.ctime.Equal(n.Stat.Ctime) && n.Stat.Mzxid != 0 {
			if v, ok := c.v.(*T); ok {
				return v, v != nil
			}
		}
	}
	v := new(T)
	if err := json.Unmarshal(n.Data, v); err != nil {
		v = nil
	}
	if d != nil {
		d.m[p] = decoded{mzxid: n.Stat.Mzxid, ctime: n.Stat.Ctime, v: v}
	}
	return v, v != nil
}

// Build reads the snapshot from a tree. d may be nil (no memo).
func Build(r Reader, d *Decoder) Snapshot {
	if d != nil {
		d.seen = map[string]struct{}{}
		defer func() {
			for p := range d.m {
				if _, ok := d.seen[p]; !ok {
					delete(d.m, p)
				}
			}
			d.seen = nil
		}()
	}
	s := Snapshot{Loaded: true, Connected: true, ByHealth: map[string]int{}}
	if cfg, ok := get[engine.PlatformConfig](d, r, engine.PathConfig); ok {
		s.Platform = *cfg
	}
	zones := map[string]*Zone{}
	for _, z := range r.Children(engine.PathZones) {
		zones[z] = &Zone{Name: z}
	}
	statuses := map[string]*engine.InstanceStatus{}
	for _, id := range r.Children(engine.PathAllocators) {
		rec, ok := get[engine.Allocator](d, r, engine.AllocatorPath(id))
		if !ok {
			continue
		}
		a := Allocator{Allocator: *rec}
		if a.ID == "" {
			a.ID = id
		}
		a.Alive, _ = get[engine.AllocatorAlive](d, r, engine.AllocatorAlivePath(id))
		if m, ok := get[engine.Maintenance](d, r, engine.AllocatorMaintenancePath(id)); ok {
			a.Maintenance = m.On
		}
		for _, iid := range r.Children(engine.StatusesPath(id)) {
			if st, ok := get[engine.InstanceStatus](d, r, engine.StatusPath(id, iid)); ok {
				statuses[iid] = st
			}
		}
		for _, iid := range r.Children(engine.InstancesPath(id)) {
			in, ok := get[engine.Instance](d, r, engine.InstancePath(id, iid))
			if !ok {
				continue
			}
			x := Instance{Instance: *in, Allocator: id, Status: statuses[iid]}
			if x.ID == "" {
				x.ID = iid
			}
			a.Instances = append(a.Instances, x)
		}
		s.Allocators = append(s.Allocators, a)
		z := zones[a.Zone]
		if z == nil {
			z = &Zone{Name: a.Zone}
			zones[a.Zone] = z
		}
		z.Allocators++
		z.CapacityMB += a.CapacityMB()
		z.UsedMB += a.UsedMB()
		z.Instances += len(a.Instances)
		z.Healthy += a.Healthy()
		if !a.Lost() {
			z.Alive++
		} else {
			s.Alerts = append(s.Alerts, Alert{SevCritical, "allocator " + a.ID + " (" + a.Zone + ") lost: no session, " + itoa(len(a.Instances)) + " instances affected"})
		}
		if a.Alive != nil && !a.Alive.DockerOK {
			s.Alerts = append(s.Alerts, Alert{SevCritical, "allocator " + a.ID + ": Docker unreachable" + suffix(a.Alive.Error)})
		}
		if a.Maintenance {
			z.Maintenance++
			s.Alerts = append(s.Alerts, Alert{SevInfo, "allocator " + a.ID + " in maintenance"})
		}
	}
	for _, z := range zones {
		s.Zones = append(s.Zones, *z)
	}
	sort.Slice(s.Zones, func(i, j int) bool { return s.Zones[i].Name < s.Zones[j].Name })
	// Rescheduling freeze: the constructor's rule (placement.FreezeReasons)
	// read from the same data.
	fleet := make([]placement.FleetAllocator, 0, len(s.Allocators))
	for _, a := range s.Allocators {
		fleet = append(fleet, placement.FleetAllocator{Zone: a.Zone, Alive: !a.Lost()})
	}
	for _, z := range s.Zones {
		if z.Allocators > 0 && z.Alive == 0 {
			s.Alerts = append(s.Alerts, Alert{SevCritical, "zone " + z.Name + " down: no allocator alive"})
		}
	}
	if freeze := placement.FreezeReasons(fleet); len(freeze) > 0 {
		s.Frozen = strings.Join(freeze, "; ")
		s.Alerts = append(s.Alerts, Alert{SevCritical, "rescheduling frozen (" + s.Frozen + "): looks like a network split; vacate allocators by hand if they are really gone"})
	}

	lost := map[string]bool{}
	for _, a := range s.Allocators {
		lost[a.ID] = a.Lost()
	}
	filters := map[string][]string{}
	for _, id := range r.Children(engine.PathTrafficFilters) {
		if rs, ok := get[engine.TrafficFilterRuleSet](d, r, engine.TrafficFilterPath(id)); ok {
			for _, a := range rs.Associations {
				filters[a.ID] = append(filters[a.ID], rs.Name)
			}
		}
	}
	for _, id := range r.Children(engine.PathDeployments) {
		dep, ok := get[engine.Deployment](d, r, engine.DeploymentPath(id))
		if !ok {
			continue
		}
		x := Deployment{Deployment: *dep}
		if x.ID == "" {
			x.ID = id
		}
		x.Pending, _ = get[engine.Plan](d, r, engine.PendingPlanPath(id))
		if h := r.Children(engine.PlanHistoryPath(id)); len(h) > 0 {
			x.LastPlan, _ = get[engine.Plan](d, r, engine.PlanHistoryEntryPath(id, h[len(h)-1]))
		}
		x.Route, _ = get[engine.Route](d, r, engine.RoutePath(id))
		x.Filters = filters[id]
		if c, ok := get[credentialsSummary](d, r, engine.CredentialsPath(id)); ok {
			x.Secured, x.PasswordResets, x.PasswordResetAt = true, c.Resets, c.ResetAt
		}
		readSnapshots(d, r, &x)
		for _, pi := range x.Instances {
			x.Members = append(x.Members, Member{PlacedInstance: pi, Status: statuses[pi.ID]})
		}
		if x.Pending != nil {
			for _, pi := range x.Pending.NewInstances {
				x.Incoming = append(x.Incoming, Member{PlacedInstance: pi, Status: statuses[pi.ID]})
			}
		}
		x.Health, x.Healthy = health(x)
		if rp, ok := get[engine.Replication](d, r, engine.ReplicationPath(id)); ok {
			x.Repl = rp
			x.Replication, x.ReplicationReason = engine.ReplicationHealth(*rp, func(iid string) bool {
				for _, m := range x.Members {
					if m.ID == iid {
						return m.Status != nil && m.Status.State == engine.StateRunning && m.Status.Healthy && !lost[m.Allocator]
					}
				}
				return false
			})
		}
		if x.Pending != nil {
			s.PendingPlans++
		}
		if x.LastPlan != nil && x.Pending == nil && (x.LastPlan.Status == engine.PlanError || x.LastPlan.Status == engine.PlanRolledBack) && x.Status == engine.DeploymentFailed {
			s.Alerts = append(s.Alerts, Alert{SevWarning, "deployment " + x.Name + ": last plan " + x.LastPlan.Status})
		}
		s.ByHealth[x.Health]++
		s.Deployments = append(s.Deployments, x)
	}
	sort.Slice(s.Deployments, func(i, j int) bool {
		if s.Deployments[i].Name != s.Deployments[j].Name {
			return s.Deployments[i].Name < s.Deployments[j].Name
		}
		return s.Deployments[i].ID < s.Deployments[j].ID
	})
	for _, id := range r.Children(engine.PathProxies) {
		if p, ok := get[engine.ProxyRecord](d, r, engine.ProxyPath(id)); ok {
			rec := *p
			if rec.ID == "" {
				rec.ID = id
			}
			s.Proxies = append(s.Proxies, rec)
		}
	}
	if c := r.Children(engine.PathLeaderCons); len(c) > 0 {
		sort.Slice(c, func(i, j int) bool { return seqOf(c[i]) < seqOf(c[j]) })
		if n, ok := r.Get(path.Join(engine.PathLeaderCons, c[0])); ok {
			s.Leader = string(n.Data)
		}
	}
	if s.Leader == "" && len(s.Deployments) > 0 {
		s.Alerts = append(s.Alerts, Alert{SevWarning, "no constructor leader: plans will not progress"})
	}
	if len(s.Proxies) == 0 && len(s.Deployments) > 0 {
		s.Alerts = append(s.Alerts, Alert{SevWarning, "no proxy registered: deployments are unreachable"})
	}
	sortAlerts(s.Alerts)
	return s
}

// readSnapshots fills the deployment's snapshot schedule and its newest
// (and newest good) snapshot from /paddock/snapshots/<id>.
func readSnapshots(d *Decoder, r Reader, x *Deployment) {
	if p, ok := get[engine.SnapshotPolicy](d, r, engine.SnapshotPolicyPath(x.ID)); ok {
		x.SnapshotPolicy = *p
	}
	names := r.Children(engine.SnapshotPolicyPath(x.ID))
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	for _, n := range names {
		rec, ok := get[engine.SnapshotRecord](d, r, engine.SnapshotRecordPath(x.ID, n))
		if !ok {
			continue
		}
		if rec.Name == "" {
			rec.Name = n
		}
		if x.LastSnapshot == nil {
			x.LastSnapshot = rec
		}
		if rec.Status == engine.SnapshotSuccess {
			x.LastGoodSnapshot = rec
			return
		}
	}
}

// seqOf orders ephemeral-sequential names by their numeric suffix.
func seqOf(name string) string {
	if len(name) >= 10 {
		return name[len(name)-10:]
	}
	return name
}

func health(d Deployment) (string, int) {
	healthy := 0
	for _, m := range d.Members {
		if m.Status != nil && m.Status.Healthy {
			healthy++
		}
	}
	switch {
	case d.Status == engine.DeploymentDeleting || d.Status == engine.DeploymentDeleted:
		return HealthDeleting, healthy
	case len(d.Members) == 0:
		if d.Status == engine.DeploymentFailed {
			return HealthDown, 0
		}
		return HealthPending, 0
	case healthy == len(d.Members):
		return HealthHealthy, healthy
	case healthy == 0:
		return HealthDown, 0
	}
	return HealthDegraded, healthy
}

// SortAlerts orders alerts by severity, critical first (stable).
func SortAlerts(a []Alert) { sortAlerts(a) }

func sortAlerts(a []Alert) {
	rank := map[string]int{SevCritical: 0, SevWarning: 1, SevInfo: 2}
	sort.SliceStable(a, func(i, j int) bool { return rank[a[i].Severity] < rank[a[j].Severity] })
}

func suffix(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return ""
	}
	return ": " + s
}

func itoa(n int) string { return strconv.Itoa(n) }

// credentialsSummary is what the console decodes of a deployment's
// credentials record: whether and when its password was reset (the
// hashes and the platform secret are left undecoded).
type credentialsSummary struct {
	Resets  int        `json:"resets"`
	ResetAt *time.Time `json:"reset_at"`
}
