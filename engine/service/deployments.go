package service

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"paddock/engine"
)

// DeploymentView is a deployment as operators see it: the record, its
// resource version (for If-Match), the plan in progress and its endpoint.
type DeploymentView struct {
	engine.Deployment
	// ResourceVersion is the znode version of the deployment record; pass
	// it back (If-Match or "version") to update without overwriting a
	// change made in between.
	ResourceVersion int32 `json:"resource_version"`
	// PendingPlan is the plan asked for or running, if any.
	PendingPlan *engine.Plan `json:"pending_plan,omitempty"`
	// Endpoint is the host name proxies route to this deployment.
	Endpoint string `json:"endpoint"`
	// TrafficFilters are the ids of the rule sets attached to it (none:
	// open to every source).
	TrafficFilters []string `json:"traffic_filters,omitempty"`
	// Security tells whether the password was ever reset (GetDeployment
	// only; never the password).
	Security *SecurityView `json:"security,omitempty"`
	// Health is the replication health (health.go); none before a plan
	// made the deployment's nodes healthy.
	Health *HealthView `json:"health,omitempty"`
}

// DesiredSpec is what the deployment is heading to: the pending plan's
// spec while one runs, else the applied spec.
func (v DeploymentView) DesiredSpec() engine.DeploymentSpec {
	if v.PendingPlan != nil && v.PendingPlan.Action != engine.ActionDelete {
		return v.PendingPlan.Spec
	}
	return v.Spec
}

// CreateRequest asks for a new deployment.
type CreateRequest struct {
	Name string
	// RequestID makes the create idempotent: the same id returns the same
	// deployment, never a second one.
	RequestID string
	Spec      engine.DeploymentSpec
	// ValidateOnly checks and explains placement; nothing is written.
	ValidateOnly bool
	Actor        Actor
	// Snapshot sets the new deployment's snapshot schedule (nil: the
	// defaults); RestoreFrom ("ID" or "ID/SNAPSHOT") restores another
	// deployment's snapshot into it once it runs (snapshots.go).
	Snapshot    *SnapshotPolicyRequest
	RestoreFrom string
}

// CreateResult says what Create did.
type CreateResult struct {
	Deployment DeploymentView `json:"deployment"`
	PlanID     string         `json:"plan_id,omitempty"`
	// Created is false when the request id was seen before (the earlier
	// deployment is returned) or when ValidateOnly was set.
	Created bool `json:"created"`
	// Placement is the placement check (always on ValidateOnly).
	Placement *PlacementReport `json:"placement,omitempty"`
	// Credentials are the elastic user's, shown this once (a created
	// deployment only, not a replayed request id).
	Credentials *Credentials `json:"credentials,omitempty"`
}

// RequestRecord is /paddock/requests/<request-id>.
type RequestRecord struct {
	RequestID    string `json:"request_id"`
	DeploymentID string `json:"deployment_id"`
	PlanID       string `json:"plan_id"`
}

var (
	requestIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	idRe        = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// Limits of a topology (engine's) and of a name.
const (
	MinSizeMB       = engine.MinSizeMB
	MaxSizeMB       = engine.MaxSizeMB
	MaxKibanaSizeMB = engine.MaxKibanaSizeMB
	MaxZones        = engine.MaxZones
	MaxNameLen      = 64
)

// ValidID reports whether id is a deployment id (32 lowercase hex).
func ValidID(id string) bool { return idRe.MatchString(id) }

func checkID(id string) error {
	if !ValidID(id) {
		return &Error{Kind: KindNotFound, Code: "deployment.not_found",
			Message: fmt.Sprintf("deployment %q not found: ids are 32 lowercase hex characters (see `paddock deployment list`)", id)}
	}
	return nil
}

// NormalizeSpec fills defaults: the newest platform version, one zone,
// Kibana in one zone when it has a size.
func NormalizeSpec(cfg engine.PlatformConfig, spec engine.DeploymentSpec) engine.DeploymentSpec {
	if spec.Version == "" && len(cfg.Versions) > 0 {
		spec.Version = cfg.Versions[len(cfg.Versions)-1]
	}
	if spec.Elasticsearch.Zones == 0 {
		spec.Elasticsearch.Zones = 1
	}
	if spec.Kibana.SizeMB > 0 && spec.Kibana.Zones == 0 {
		spec.Kibana.Zones = 1
	}
	if spec.Kibana.SizeMB == 0 {
		spec.Kibana.Zones = 0
	}
	return spec
}

// ValidateSpec checks a (normalized) spec against the platform
// (engine.ValidateSpec: the constructor checks plans with the same rule).
func ValidateSpec(cfg engine.PlatformConfig, zones int, spec engine.DeploymentSpec) []FieldError {
	return engine.ValidateSpec(cfg, max(zones, 1), spec)
}

func validateName(name string) []FieldError {
	n := strings.TrimSpace(name)
	switch {
	case n == "":
		return []FieldError{field("name", "required: give the deployment a name")}
	case len(n) > MaxNameLen:
		return []FieldError{field("name", "at most %d characters", MaxNameLen)}
	case strings.ContainsFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return []FieldError{field("name", "must not contain control characters")}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// platform reads the platform config and the number of zones.
func (s *Service) platform(ctx context.Context) (engine.PlatformConfig, int, error) {
	cfg, err := s.platformConfig(ctx)
	if err != nil {
		return cfg, 0, storeErr(err, "platform", "config")
	}
	zones, err := s.store.Children(ctx, engine.PathZones)
	if err != nil {
		return cfg, 0, storeErr(err, "platform", "zones")
	}
	return cfg, len(zones), nil
}

// CreateDeployment validates the request, checks placement, and writes
// the deployment with its first plan in one Multi (with the idempotency
// record when a request id is given). The constructor executes the plan.
func (s *Service) CreateDeployment(ctx context.Context, req CreateRequest) (CreateResult, error) {
	var fe []FieldError
	fe = append(fe, validateName(req.Name)...)
	if req.RequestID != "" && !requestIDRe.MatchString(req.RequestID) {
		fe = append(fe, field("request_id", "1..128 characters among letters, digits, '.', '_' and '-'"))
	}
	if req.RequestID != "" && !req.ValidateOnly {
		if res, ok, err := s.replay(ctx, req.RequestID); err != nil || ok {
			return res, err
		}
	}
	cfg, zones, err := s.platform(ctx)
	if err != nil {
		return CreateResult{}, err
	}
	spec := NormalizeSpec(cfg, req.Spec)
	fe = append(fe, ValidateSpec(cfg, zones, spec)...)
	if len(fe) > 0 {
		return CreateResult{}, invalid(fe...)
	}
	id := engine.NewID()
	plan := s.newPlan(id, engine.ActionCreate, spec, req.Actor)
	rep, err := s.CheckPlacement(ctx, PlaceCheck{DeploymentID: id, PlanID: plan.ID, Spec: spec})
	if err != nil {
		return CreateResult{}, err
	}
	now := s.now()
	dep := engine.Deployment{ID: id, Name: strings.TrimSpace(req.Name), RequestID: req.RequestID,
		CreatedAt: now, UpdatedAt: now, Status: engine.DeploymentInitializing, Instances: []engine.PlacedInstance{}}
	dep.LastPlanID, dep.LastPlanStatus = plan.ID, plan.Status
	view := DeploymentView{Deployment: dep, PendingPlan: &plan, Endpoint: id + "." + cfg.Domain}
	snapOps, err := s.createSnapshotOps(ctx, id, req)
	if err != nil {
		return CreateResult{}, err
	}
	if req.ValidateOnly {
		return CreateResult{Deployment: view, Placement: &rep}, nil
	}
	creds, credRec, err := s.newCredentials(ctx, now)
	if err != nil {
		return CreateResult{}, err
	}
	if err := s.ensureCredentialsParent(ctx); err != nil {
		return CreateResult{}, storeErr(err, "deployment", id)
	}
	ops := []engine.Op{
		engine.OpCreate(engine.CredentialsPath(id), credRec),
		engine.OpCreate(engine.DeploymentPath(id), dep),
		engine.OpCreate(engine.PlansPath(id), nil),
		engine.OpCreate(engine.PlanHistoryPath(id), nil),
		engine.OpCreate(engine.PendingPlanPath(id), plan),
	}
	ops = append(ops, snapOps...)
	if req.RequestID != "" {
		ops = append(ops, engine.OpCreate(engine.RequestPath(req.RequestID), RequestRecord{RequestID: req.RequestID, DeploymentID: id, PlanID: plan.ID}))
	}
	if err := s.store.Multi(ctx, ops...); err != nil {
		if req.RequestID != "" && (errors.Is(err, engine.ErrExists) || errors.Is(err, engine.ErrUnavailable)) {
			// Another create with this request id won, or ours may have
			// been applied before the connection dropped: read back.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.readBackTimeout())
			defer cancel()
			if res, ok, rerr := s.replay(rctx, req.RequestID); rerr == nil && ok {
				return res, nil
			}
		}
		return CreateResult{}, storeErr(err, "deployment", id)
	}
	s.log.Info("deployment created", "deployment", id, "name", dep.Name, "plan", plan.ID, "by", string(req.Actor))
	s.attachDefaultFilters(ctx, id, req.Actor)
	view.ResourceVersion = 0
	return CreateResult{Deployment: view, PlanID: plan.ID, Created: true, Placement: &rep, Credentials: &creds}, nil
}

func (s *Service) readBackTimeout() time.Duration { return 5 * time.Second }

// replay returns the deployment created earlier under requestID.
func (s *Service) replay(ctx context.Context, requestID string) (CreateResult, bool, error) {
	var rec RequestRecord
	if _, err := s.store.GetJSON(ctx, engine.RequestPath(requestID), &rec); err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			return CreateResult{}, false, nil
		}
		return CreateResult{}, false, storeErr(err, "request", requestID)
	}
	v, err := s.currentDeployment(ctx, rec.DeploymentID)
	if err != nil {
		return CreateResult{}, false, err
	}
	return CreateResult{Deployment: v, PlanID: rec.PlanID, Created: false}, true, nil
}

func (s *Service) newPlan(depID, action string, spec engine.DeploymentSpec, actor Actor) engine.Plan {
	return engine.Plan{ID: engine.NewID(), DeploymentID: depID, Action: action, Spec: spec,
		Strategy: engine.PlanGrowAndShrink, CreatedAt: s.now(), CreatedBy: string(actor),
		Status: engine.PlanPending, Steps: []engine.PlanStep{}}
}

// GetDeployment reads one deployment with its pending plan: from the
// service's watch cache when it has one (the caller's own writes
// through this service included; see Cache), else from ZooKeeper.
func (s *Service) GetDeployment(ctx context.Context, id string) (DeploymentView, error) {
	return s.readDeployment(ctx, id, true)
}

// currentDeployment is GetDeployment from ZooKeeper, for the actions
// that write what they read (its resource version is the current one,
// other sessions' changes included).
func (s *Service) currentDeployment(ctx context.Context, id string) (DeploymentView, error) {
	return s.readDeployment(ctx, id, false)
}

func (s *Service) readDeployment(ctx context.Context, id string, cached bool) (DeploymentView, error) {
	if err := checkID(id); err != nil {
		return DeploymentView{}, err
	}
	cfg, err := s.platformConfig(ctx)
	if err != nil {
		return DeploymentView{}, storeErr(err, "platform", "config")
	}
	// From the watch cache when it shows every write this service made
	// to the deployment (no ZooKeeper request; see Cache).
	if cached {
		if v, ok := s.cache.getDeployment(ctx, id, cfg.Domain); ok {
			return v, nil
		}
	}
	// The reads that need only the id go out together (they pipeline on
	// the session): during a burst of writes each round trip waits
	// behind the session's writes, so a GET costs two round trips (this
	// one, then the copies' statuses) instead of five in a row.
	var (
		v          DeploymentView
		filters    []string
		sec        *SecurityView
		r          engine.Replication
		fe, se, re error
		wg         sync.WaitGroup
	)
	wg.Add(3)
	go func() { defer wg.Done(); filters, fe = s.TrafficFiltersOf(ctx, id) }()
	go func() { defer wg.Done(); sec, se = s.Security(ctx, id) }()
	go func() { defer wg.Done(); r, _, re = s.store.Replication(ctx, id) }()
	v, err = s.getDeployment(ctx, id, cfg.Domain)
	wg.Wait()
	if err != nil {
		return v, err
	}
	if fe != nil {
		return v, fe
	}
	v.TrafficFilters = filters
	if v.Health, err = s.healthOf(ctx, v.Deployment, r, re); err != nil {
		return v, err
	}
	v.Security = sec
	return v, se
}

// getDeployment reads the deployment and its pending plan from
// ZooKeeper, both reads at once (they pipeline on the session).
func (s *Service) getDeployment(ctx context.Context, id, domain string) (DeploymentView, error) {
	var (
		d       engine.Deployment
		p       engine.Plan
		ver     engine.Version
		err, pe error
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, pe = s.store.GetJSON(ctx, engine.PendingPlanPath(id), &p)
	}()
	ver, err = s.store.GetJSON(ctx, engine.DeploymentPath(id), &d)
	wg.Wait()
	if err != nil {
		return DeploymentView{}, storeErr(err, "deployment", id)
	}
	v := DeploymentView{Deployment: d, ResourceVersion: ver, Endpoint: id + "." + domain}
	if v.Instances == nil {
		v.Instances = []engine.PlacedInstance{}
	}
	if pe == nil {
		v.PendingPlan = &p
	} else if !errors.Is(pe, engine.ErrNotFound) {
		return v, storeErr(pe, "deployment", id)
	}
	return v, nil
}

// ListDeployments returns deployments sorted by creation time; deleted
// ones only when includeDeleted. Records are read concurrently (requests
// pipeline on the one ZooKeeper session).
func (s *Service) ListDeployments(ctx context.Context, includeDeleted bool) ([]DeploymentView, error) {
	ids, err := s.store.Children(ctx, engine.PathDeployments)
	if err != nil {
		return nil, storeErr(err, "deployment", "list")
	}
	cfg, err := s.platformConfig(ctx)
	if err != nil {
		return nil, storeErr(err, "platform", "config")
	}
	// The children read above was a round trip on the cache's session:
	// once the cache has applied what it was told before it, it shows
	// every deployment as of that read (the caller's own writes too).
	fromCache := s.cache != nil && s.cache.synced(ctx, s.cache.deps)
	views := make([]DeploymentView, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, id := range ids {
		if !ValidID(id) {
			errs[i] = ErrNotFound
			continue
		}
		if fromCache {
			v, ok, err := s.cache.deployment(id, cfg.Domain)
			if ok {
				if err == nil {
					if h, ok := s.cache.health(v.Deployment); ok {
						v.Health = h
						views[i], errs[i] = v, nil
						continue
					}
				} else {
					views[i], errs[i] = v, err
					continue
				}
			}
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			views[i], errs[i] = s.getDeployment(ctx, id, cfg.Domain)
			if errs[i] == nil {
				views[i].Health, errs[i] = s.health(ctx, views[i].Deployment)
			}
		}()
	}
	wg.Wait()
	filters, err := s.listFilters(ctx)
	if err != nil {
		return nil, err
	}
	out := []DeploymentView{}
	for i, v := range views {
		v.TrafficFilters = filtersOf(filters, v.ID)
		if err := errs[i]; err != nil {
			if errors.Is(err, ErrNotFound) {
				continue // deleted in between, or a stray znode
			}
			return nil, err
		}
		if v.Status == engine.DeploymentDeleted && !includeDeleted {
			continue
		}
		out = append(out, v)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// UpdateRequest changes a deployment. Spec is the full desired spec (as
// `show --generate-update-payload` prints it); nil keeps it.
type UpdateRequest struct {
	Name *string
	Spec *engine.DeploymentSpec
	// Version is the resource version the caller read; a stale one is
	// refused with a conflict. Nil skips the check.
	Version *int32
	Actor   Actor
	// ValidateOnly checks the request and the placement of what the
	// plan would add; nothing is written.
	ValidateOnly bool
}

// PlanResult is the answer of every long operation: it returns at once;
// the plan's activity follows it.
type PlanResult struct {
	DeploymentID string `json:"id"`
	PlanID       string `json:"plan_id,omitempty"`
	// Changed is false when the request asked for what is already there.
	Changed bool `json:"changed"`
	// Placement is the placement check of a validate-only update.
	Placement *PlacementReport `json:"placement,omitempty"`
}

// UpdateDeployment renames and/or asks for a new topology or version. A
// spec change writes a plan (refused while another plan is pending).
func (s *Service) UpdateDeployment(ctx context.Context, id string, req UpdateRequest) (PlanResult, error) {
	cur, err := s.currentDeployment(ctx, id)
	if err != nil {
		return PlanResult{}, err
	}
	if req.Version != nil && *req.Version != cur.ResourceVersion {
		return PlanResult{}, conflict("version.stale",
			"deployment %s is at version %d, the request was based on version %d: read it again (`paddock deployment show %s`) and retry", id, cur.ResourceVersion, *req.Version, id)
	}
	if err := checkLive(cur); err != nil {
		return PlanResult{}, err
	}
	var fe []FieldError
	dep := cur.Deployment
	renamed := false
	if req.Name != nil && strings.TrimSpace(*req.Name) != dep.Name {
		fe = append(fe, validateName(*req.Name)...)
		dep.Name = strings.TrimSpace(*req.Name)
		renamed = true
	}
	var spec engine.DeploymentSpec
	specChanged := false
	if req.Spec != nil {
		cfg, zones, err := s.platform(ctx)
		if err != nil {
			return PlanResult{}, err
		}
		spec = NormalizeSpec(cfg, *req.Spec)
		fe = append(fe, ValidateSpec(cfg, zones, spec)...)
		specChanged = !specEqual(spec, cur.DesiredSpec())
	}
	if len(fe) > 0 {
		return PlanResult{}, invalid(fe...)
	}
	if !renamed && !specChanged {
		return PlanResult{DeploymentID: id}, nil
	}
	if specChanged && cur.PendingPlan != nil {
		return PlanResult{}, planPending(id, cur.PendingPlan)
	}
	var ops []engine.Op
	dep.UpdatedAt = s.now()
	res := PlanResult{DeploymentID: id, Changed: true}
	if specChanged {
		plan := s.newPlan(id, engine.ActionUpdate, spec, req.Actor)
		rep, err := s.CheckPlacement(ctx, PlaceCheck{DeploymentID: id, PlanID: plan.ID, Spec: spec, Current: cur.Instances})
		if err != nil {
			return PlanResult{}, err
		}
		if req.ValidateOnly {
			return PlanResult{DeploymentID: id, Changed: true, Placement: &rep}, nil
		}
		dep.LastPlanID, dep.LastPlanStatus = plan.ID, plan.Status
		res.PlanID = plan.ID
		ops = append(ops, engine.OpCreate(engine.PendingPlanPath(id), plan))
	}
	if req.ValidateOnly {
		return res, nil
	}
	ops = append([]engine.Op{engine.OpSet(engine.DeploymentPath(id), dep, cur.ResourceVersion)}, ops...)
	if err := s.writePlan(ctx, id, ops); err != nil {
		return PlanResult{}, err
	}
	s.log.Info("deployment updated", "deployment", id, "plan", res.PlanID, "renamed", renamed, "by", string(req.Actor))
	return res, nil
}

// writePlan applies a Multi that creates a pending plan, mapping its
// failures: an existing pending plan or a changed record is a conflict.
func (s *Service) writePlan(ctx context.Context, id string, ops []engine.Op) error {
	err := s.store.Multi(ctx, ops...)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, engine.ErrExists):
		return conflict("plan.pending", "deployment %s already has a plan pending: wait for it (`paddock deployment activity %s`) or cancel it (DELETE /api/v1/deployments/%s/plan/pending)", id, id, id)
	case errors.Is(err, engine.ErrConflict):
		return conflict("version.stale", "deployment %s changed while the request was processed: read it again and retry", id)
	case errors.Is(err, engine.ErrNotFound):
		return notFound("deployment", id)
	}
	return storeErr(err, "deployment", id)
}

func planPending(id string, p *engine.Plan) error {
	return conflict("plan.pending", "deployment %s already has a plan pending (%s, %s, status %s): wait for it (`paddock deployment activity %s`) or cancel it (DELETE /api/v1/deployments/%s/plan/pending)",
		id, p.ID, p.Action, p.Status, id, id)
}

func checkLive(v DeploymentView) error {
	switch v.Status {
	case engine.DeploymentDeleted:
		return &Error{Kind: KindNotFound, Code: "deployment.deleted", Message: fmt.Sprintf("deployment %s was deleted", v.ID)}
	case engine.DeploymentDeleting:
		return conflict("deployment.deleting", "deployment %s is being deleted", v.ID)
	}
	return nil
}

func specEqual(a, b engine.DeploymentSpec) bool {
	return a.Version == b.Version && topoEqual(a.Elasticsearch, b.Elasticsearch) && topoEqual(a.Kibana, b.Kibana)
}

func topoEqual(a, b engine.Topology) bool {
	if a.SizeMB != b.SizeMB || a.Zones != b.Zones || len(a.Filter) != len(b.Filter) {
		return false
	}
	for k, v := range a.Filter {
		if bv, ok := b.Filter[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// Resize changes the Elasticsearch size (and keeps everything else).
func (s *Service) Resize(ctx context.Context, id string, sizeMB int, actor Actor) (PlanResult, error) {
	cur, err := s.currentDeployment(ctx, id)
	if err != nil {
		return PlanResult{}, err
	}
	spec := cur.DesiredSpec()
	spec.Elasticsearch.SizeMB = sizeMB
	v := cur.ResourceVersion
	return s.UpdateDeployment(ctx, id, UpdateRequest{Spec: &spec, Version: &v, Actor: actor})
}

// Upgrade changes the version (and keeps everything else).
func (s *Service) Upgrade(ctx context.Context, id, version string, actor Actor) (PlanResult, error) {
	cur, err := s.currentDeployment(ctx, id)
	if err != nil {
		return PlanResult{}, err
	}
	spec := cur.DesiredSpec()
	spec.Version = version
	v := cur.ResourceVersion
	return s.UpdateDeployment(ctx, id, UpdateRequest{Spec: &spec, Version: &v, Actor: actor})
}

// DeleteDeployment writes a delete plan: the constructor removes the
// instances and the route, and marks the deployment deleted.
func (s *Service) DeleteDeployment(ctx context.Context, id string, actor Actor) (PlanResult, error) {
	return s.simplePlan(ctx, id, engine.ActionDelete, actor)
}

// RestartDeployment writes a restart plan (rolling restart of every
// instance).
func (s *Service) RestartDeployment(ctx context.Context, id string, actor Actor) (PlanResult, error) {
	return s.simplePlan(ctx, id, engine.ActionRestart, actor)
}

// planReady reads a deployment that may take a new plan: live (not
// deleted or being deleted) and with no plan pending.
func (s *Service) planReady(ctx context.Context, id string) (DeploymentView, error) {
	cur, err := s.currentDeployment(ctx, id)
	if err != nil {
		return cur, err
	}
	if err := checkLive(cur); err != nil {
		return cur, err
	}
	if cur.PendingPlan != nil {
		return cur, planPending(id, cur.PendingPlan)
	}
	return cur, nil
}

func (s *Service) simplePlan(ctx context.Context, id, action string, actor Actor) (PlanResult, error) {
	cur, err := s.planReady(ctx, id)
	if err != nil {
		return PlanResult{}, err
	}
	if action == engine.ActionRestart && len(cur.Instances) == 0 {
		return PlanResult{}, conflict("deployment.not_running", "deployment %s has no instances to restart (status %s)", id, cur.Status)
	}
	plan := s.newPlan(id, action, cur.Spec, actor)
	if err := s.writePlan(ctx, id, []engine.Op{
		engine.OpCheck(engine.DeploymentPath(id), cur.ResourceVersion),
		engine.OpCreate(engine.PendingPlanPath(id), plan),
	}); err != nil {
		return PlanResult{}, err
	}
	s.log.Info("plan written", "deployment", id, "action", action, "plan", plan.ID, "by", string(actor))
	return PlanResult{DeploymentID: id, PlanID: plan.ID, Changed: true}, nil
}

// CancelPlan asks the constructor to stop the pending plan and roll back
// (cancel_requested, by compare-and-set).
func (s *Service) CancelPlan(ctx context.Context, id string, actor Actor) (engine.Plan, error) {
	if err := checkID(id); err != nil {
		return engine.Plan{}, err
	}
	var p engine.Plan
	_, err := s.store.Update(ctx, engine.PendingPlanPath(id), &p, func() error {
		if p.CancelRequested {
			return engine.ErrNoChange
		}
		p.CancelRequested = true
		return nil
	})
	if errors.Is(err, engine.ErrNotFound) {
		if ok, _, xerr := s.store.Exists(ctx, engine.DeploymentPath(id)); xerr == nil && !ok {
			return p, notFound("deployment", id)
		}
		return p, &Error{Kind: KindNotFound, Code: "plan.not_found", Message: fmt.Sprintf("deployment %s has no pending plan to cancel", id)}
	}
	if err != nil {
		return p, storeErr(err, "plan", id)
	}
	s.log.Info("plan cancel requested", "deployment", id, "plan", p.ID, "by", string(actor))
	return p, nil
}

// Activity is a deployment's plans: the one in progress and the history,
// oldest first.
type Activity struct {
	DeploymentID string        `json:"id"`
	Pending      *engine.Plan  `json:"pending,omitempty"`
	History      []engine.Plan `json:"history"`
	// Security tells whether the password was ever reset.
	Security *SecurityView `json:"security,omitempty"`
}

// Activity reads the plan steps, live and history (from the cache as
// GetDeployment does).
func (s *Service) Activity(ctx context.Context, id string) (Activity, error) {
	return s.readActivity(ctx, id, true)
}

func (s *Service) readActivity(ctx context.Context, id string, cached bool) (Activity, error) {
	if err := checkID(id); err != nil {
		return Activity{}, err
	}
	if cached {
		if act, ok := s.cache.activity(ctx, id); ok {
			return act, nil
		}
	}
	act := Activity{DeploymentID: id, History: []engine.Plan{}}
	// The reads go out together (they pipeline on the session, where
	// during a burst each round trip waits behind the session's writes):
	// the deployment's existence, its pending plan, the history's names
	// and the credentials record, then every history entry at once.
	var (
		exists         bool
		p              engine.Plan
		names          []string
		sec            *SecurityView
		ee, pe, he, se error
		wg             sync.WaitGroup
	)
	wg.Add(3)
	go func() { defer wg.Done(); _, pe = s.store.GetJSON(ctx, engine.PendingPlanPath(id), &p) }()
	go func() { defer wg.Done(); names, he = s.store.Children(ctx, engine.PlanHistoryPath(id)) }()
	go func() { defer wg.Done(); sec, se = s.Security(ctx, id) }()
	exists, _, ee = s.store.Exists(ctx, engine.DeploymentPath(id))
	wg.Wait()
	switch {
	case ee != nil:
		return act, storeErr(ee, "deployment", id)
	case !exists:
		return act, notFound("deployment", id)
	}
	if pe == nil {
		act.Pending = &p
	} else if !errors.Is(pe, engine.ErrNotFound) {
		return act, storeErr(pe, "deployment", id)
	}
	if he != nil && !errors.Is(he, engine.ErrNotFound) {
		return act, storeErr(he, "deployment", id)
	}
	hist := make([]engine.Plan, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, 16)
	for i, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, errs[i] = s.store.GetJSON(ctx, engine.PlanHistoryEntryPath(id, n), &hist[i])
		}()
	}
	wg.Wait()
	for i := range names {
		if errs[i] != nil {
			if errors.Is(errs[i], engine.ErrNotFound) {
				continue
			}
			return act, storeErr(errs[i], "deployment", id)
		}
		act.History = append(act.History, hist[i])
	}
	act.Security = sec
	return act, se
}

// Plan finds a plan by id among the pending one and the history.
func (a Activity) Plan(planID string) (engine.Plan, bool) {
	if a.Pending != nil && a.Pending.ID == planID {
		return *a.Pending, true
	}
	for i := len(a.History) - 1; i >= 0; i-- {
		if a.History[i].ID == planID {
			return a.History[i], true
		}
	}
	return engine.Plan{}, false
}
