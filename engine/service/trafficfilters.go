package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"paddock/engine"
)

// Limits of a rule set (ECE allows a few dozen rules per set).
const (
	maxFilterRules   = 128
	maxFilterDescLen = 256
)

var filterIDRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TrafficFilterRequest creates or replaces a rule set (ECE's
// TrafficFilterRulesetRequest). Type defaults to "ip".
type TrafficFilterRequest struct {
	Name             string                     `json:"name"`
	Description      string                     `json:"description,omitempty"`
	Type             string                     `json:"type,omitempty"`
	Region           string                     `json:"region,omitempty"`
	IncludeByDefault bool                       `json:"include_by_default,omitempty"`
	Rules            []engine.TrafficFilterRule `json:"rules"`
}

// TrafficFilterView is a rule set as listed: the record and how many
// deployments it is attached to.
type TrafficFilterView struct {
	engine.TrafficFilterRuleSet
	TotalAssociations int `json:"total_associations"`
}

func filterView(r engine.TrafficFilterRuleSet) TrafficFilterView {
	if r.Rules == nil {
		r.Rules = []engine.TrafficFilterRule{}
	}
	return TrafficFilterView{TrafficFilterRuleSet: r, TotalAssociations: len(r.Associations)}
}

func (req *TrafficFilterRequest) validate() error {
	var fe []FieldError
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 128 {
		fe = append(fe, field("name", "1..128 characters, e.g. office"))
	}
	if len(req.Description) > maxFilterDescLen {
		fe = append(fe, field("description", "at most %d characters", maxFilterDescLen))
	}
	if req.Type == "" {
		req.Type = engine.TrafficFilterIP
	}
	if req.Type != engine.TrafficFilterIP {
		fe = append(fe, field("type", "unsupported type %q: only %q rule sets (IP addresses and CIDR blocks) exist here", req.Type, engine.TrafficFilterIP))
	}
	if len(req.Rules) == 0 {
		fe = append(fe, field("rules", "at least one rule: a source such as 10.0.0.0/8 (--source in the CLI)"))
	}
	if len(req.Rules) > maxFilterRules {
		fe = append(fe, field("rules", "at most %d rules per rule set: split them into several rule sets", maxFilterRules))
	}
	for i, r := range req.Rules {
		p, err := engine.ParseSource(r.Source)
		if err != nil {
			fe = append(fe, field(fmt.Sprintf("rules[%d].source", i), "%v", err))
			continue
		}
		req.Rules[i].Source = canonicalSource(r.Source, p.String())
		if len(r.Description) > maxFilterDescLen {
			fe = append(fe, field(fmt.Sprintf("rules[%d].description", i), "at most %d characters", maxFilterDescLen))
		}
	}
	if len(fe) > 0 {
		return invalid(fe...)
	}
	return nil
}

// canonicalSource keeps a single address as written (no /32 added) and
// normalises blocks.
func canonicalSource(in, prefix string) string {
	if !strings.Contains(in, "/") {
		return strings.TrimSuffix(strings.TrimSuffix(prefix, "/32"), "/128")
	}
	return prefix
}

func checkFilterID(id string) error {
	if !filterIDRe.MatchString(id) {
		return &Error{Kind: KindNotFound, Code: "traffic-filter.not_found",
			Message: fmt.Sprintf("traffic filter rule set %q not found: ids are 32 lowercase hex characters (see `paddock traffic-filter list`)", id)}
	}
	return nil
}

// CreateTrafficFilter stores a new rule set, attached to nothing.
func (s *Service) CreateTrafficFilter(ctx context.Context, req TrafficFilterRequest, actor Actor) (TrafficFilterView, error) {
	if err := req.validate(); err != nil {
		return TrafficFilterView{}, err
	}
	now := s.now()
	rs := engine.TrafficFilterRuleSet{ID: engine.NewID(), Name: req.Name, Description: req.Description, Type: req.Type,
		Region: req.Region, IncludeByDefault: req.IncludeByDefault, Rules: req.Rules, CreatedAt: now, UpdatedAt: now}
	if err := s.store.EnsurePath(ctx, engine.PathTrafficFilters); err != nil {
		return TrafficFilterView{}, storeErr(err, "traffic-filter", rs.ID)
	}
	if err := s.store.Create(ctx, engine.TrafficFilterPath(rs.ID), rs); err != nil {
		return TrafficFilterView{}, storeErr(err, "traffic-filter", rs.ID)
	}
	s.log.Info("traffic filter created", "ruleset", rs.ID, "name", rs.Name, "rules", len(rs.Rules), "by", string(actor))
	return filterView(rs), nil
}

// ListTrafficFilters returns every rule set, by name.
func (s *Service) ListTrafficFilters(ctx context.Context) ([]TrafficFilterView, error) {
	all, err := s.trafficFilters(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TrafficFilterView, 0, len(all))
	for _, r := range all {
		out = append(out, filterView(r))
	}
	return out, nil
}

func (s *Service) trafficFilters(ctx context.Context) ([]engine.TrafficFilterRuleSet, error) {
	raw, err := s.store.ReadChildren(ctx, engine.PathTrafficFilters)
	if err != nil {
		return nil, storeErr(err, "traffic-filter", "list")
	}
	out := make([]engine.TrafficFilterRuleSet, 0, len(raw))
	for id, b := range raw {
		var r engine.TrafficFilterRuleSet
		if err := json.Unmarshal(b, &r); err != nil {
			s.log.Warn("traffic filter znode is not a rule set; skipped", "id", id, "err", err)
			continue
		}
		r.ID = id
		out = append(out, r)
	}
	sortRuleSets(out)
	return out, nil
}

// listFilters is trafficFilters from the cache when it shows this
// service's writes to them (see Cache), else from ZooKeeper.
func (s *Service) listFilters(ctx context.Context) ([]engine.TrafficFilterRuleSet, error) {
	if c := s.cache; c != nil && c.fresh(ctx, c.filters, engine.PathTrafficFilters) {
		if all, ok := c.trafficFilters(); ok {
			return all, nil
		}
	}
	return s.trafficFilters(ctx)
}

// sortRuleSets sorts rule sets by name, then id.
func sortRuleSets(out []engine.TrafficFilterRuleSet) {
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
}

// GetTrafficFilter reads one rule set.
func (s *Service) GetTrafficFilter(ctx context.Context, id string) (TrafficFilterView, error) {
	if err := checkFilterID(id); err != nil {
		return TrafficFilterView{}, err
	}
	var r engine.TrafficFilterRuleSet
	if _, err := s.store.GetJSON(ctx, engine.TrafficFilterPath(id), &r); err != nil {
		return TrafficFilterView{}, storeErr(err, "traffic-filter", id)
	}
	return filterView(r), nil
}

// UpdateTrafficFilter replaces a rule set's name, description and rules
// (its attachments stay).
func (s *Service) UpdateTrafficFilter(ctx context.Context, id string, req TrafficFilterRequest, actor Actor) (TrafficFilterView, error) {
	if err := checkFilterID(id); err != nil {
		return TrafficFilterView{}, err
	}
	if err := req.validate(); err != nil {
		return TrafficFilterView{}, err
	}
	var r engine.TrafficFilterRuleSet
	_, err := s.store.Update(ctx, engine.TrafficFilterPath(id), &r, func() error {
		r.Name, r.Description, r.Type, r.Region, r.IncludeByDefault, r.Rules = req.Name, req.Description, req.Type, req.Region, req.IncludeByDefault, req.Rules
		r.UpdatedAt = s.now()
		return nil
	})
	if err != nil {
		return TrafficFilterView{}, storeErr(err, "traffic-filter", id)
	}
	s.log.Info("traffic filter updated", "ruleset", id, "rules", len(r.Rules), "by", string(actor))
	return filterView(r), nil
}

// DeleteTrafficFilter removes a rule set. One still attached to a live
// deployment is a conflict unless ignoreAssociations (which detaches it
// everywhere first, as ECE's ignore_associations does).
func (s *Service) DeleteTrafficFilter(ctx context.Context, id string, ignoreAssociations bool, actor Actor) error {
	if err := checkFilterID(id); err != nil {
		return err
	}
	var r engine.TrafficFilterRuleSet
	ver, err := s.store.GetJSON(ctx, engine.TrafficFilterPath(id), &r)
	if err != nil {
		return storeErr(err, "traffic-filter", id)
	}
	if !ignoreAssociations {
		var live []string
		for _, a := range r.Associations {
			if a.EntityType == engine.AssociationDeployment && s.deploymentLive(ctx, a.ID) {
				live = append(live, a.ID)
			}
		}
		if len(live) > 0 {
			return conflict("traffic-filter.attached",
				"traffic filter %s (%s) is attached to deployment(s) %s: detach it first (paddock traffic-filter detach %s DEPLOYMENT) or delete with ignore_associations=true",
				id, r.Name, strings.Join(live, ", "), id)
		}
	}
	if err := s.store.Delete(ctx, engine.TrafficFilterPath(id), ver); err != nil {
		return storeErr(err, "traffic-filter", id)
	}
	s.log.Info("traffic filter deleted", "ruleset", id, "name", r.Name, "by", string(actor))
	return nil
}

// deploymentLive says whether a deployment exists and is not deleted
// (errors count as live: refusing a delete is the safe side).
func (s *Service) deploymentLive(ctx context.Context, id string) bool {
	var d engine.Deployment
	if _, err := s.store.GetJSON(ctx, engine.DeploymentPath(id), &d); err != nil {
		return !errors.Is(err, engine.ErrNotFound)
	}
	return d.Status != engine.DeploymentDeleted
}

// AttachTrafficFilter attaches a rule set to a deployment; attaching
// twice is a no-op. Proxies enforce it within a second.
func (s *Service) AttachTrafficFilter(ctx context.Context, id string, a engine.TrafficFilterAssociation, actor Actor) (TrafficFilterView, error) {
	if err := checkFilterID(id); err != nil {
		return TrafficFilterView{}, err
	}
	if a.EntityType == "" {
		a.EntityType = engine.AssociationDeployment
	}
	if a.EntityType != engine.AssociationDeployment {
		return TrafficFilterView{}, invalid(field("entity_type", "unsupported entity type %q: rule sets attach to %q", a.EntityType, engine.AssociationDeployment))
	}
	if d, err := s.currentDeployment(ctx, a.ID); err != nil {
		return TrafficFilterView{}, err
	} else if d.Status == engine.DeploymentDeleted {
		return TrafficFilterView{}, &Error{Kind: KindNotFound, Code: "deployment.deleted", Message: fmt.Sprintf("deployment %s was deleted", a.ID)}
	}
	var r engine.TrafficFilterRuleSet
	_, err := s.store.Update(ctx, engine.TrafficFilterPath(id), &r, func() error {
		if r.AttachedTo(a.ID) {
			return engine.ErrNoChange
		}
		r.Associations = append(r.Associations, a)
		r.UpdatedAt = s.now()
		return nil
	})
	if err != nil {
		return TrafficFilterView{}, storeErr(err, "traffic-filter", id)
	}
	s.log.Info("traffic filter attached", "ruleset", id, "deployment", a.ID, "by", string(actor))
	return filterView(r), nil
}

// DetachTrafficFilter removes a rule set from a deployment. Detaching
// one that is not attached is a not-found error.
func (s *Service) DetachTrafficFilter(ctx context.Context, id, entityType, entityID string, actor Actor) (TrafficFilterView, error) {
	if err := checkFilterID(id); err != nil {
		return TrafficFilterView{}, err
	}
	var r engine.TrafficFilterRuleSet
	found := false
	_, err := s.store.Update(ctx, engine.TrafficFilterPath(id), &r, func() error {
		n := len(r.Associations)
		r.Associations = slices.DeleteFunc(r.Associations, func(x engine.TrafficFilterAssociation) bool {
			return x.EntityType == entityType && x.ID == entityID
		})
		found = len(r.Associations) != n
		if !found {
			return engine.ErrNoChange
		}
		r.UpdatedAt = s.now()
		return nil
	})
	if err != nil {
		return TrafficFilterView{}, storeErr(err, "traffic-filter", id)
	}
	if !found {
		return TrafficFilterView{}, &Error{Kind: KindNotFound, Code: "traffic-filter.association.not_found",
			Message: fmt.Sprintf("traffic filter %s is not attached to %s %s: see its associations with `paddock traffic-filter list`", id, entityType, entityID)}
	}
	s.log.Info("traffic filter detached", "ruleset", id, "deployment", entityID, "by", string(actor))
	return filterView(r), nil
}

// TrafficFiltersOf lists the ids of the rule sets attached to a deployment.
func (s *Service) TrafficFiltersOf(ctx context.Context, deploymentID string) ([]string, error) {
	all, err := s.trafficFilters(ctx)
	if err != nil {
		return nil, err
	}
	return filtersOf(all, deploymentID), nil
}

func filtersOf(all []engine.TrafficFilterRuleSet, deploymentID string) []string {
	var ids []string
	for _, r := range all {
		if r.AttachedTo(deploymentID) {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// attachDefaultFilters attaches the include_by_default rule sets to a
// new deployment (best effort: a failure is logged, the create stands).
func (s *Service) attachDefaultFilters(ctx context.Context, deploymentID string, actor Actor) {
	all, err := s.trafficFilters(ctx)
	if err != nil {
		s.log.Warn("cannot read traffic filters to attach the default ones", "deployment", deploymentID, "err", err)
		return
	}
	for _, r := range all {
		if !r.IncludeByDefault {
			continue
		}
		if _, err := s.AttachTrafficFilter(ctx, r.ID, engine.TrafficFilterAssociation{EntityType: engine.AssociationDeployment, ID: deploymentID}, actor); err != nil {
			s.log.Warn("cannot attach a default traffic filter", "deployment", deploymentID, "ruleset", r.ID, "err", err)
		}
	}
}
