package api

import (
	"net/http"

	"paddock/engine"
	"paddock/engine/service"
)

// Traffic filter endpoints, ECE's shape: rule sets under
// /deployments/traffic-filter/rulesets and their associations.
const filterPrefix = "/deployments/traffic-filter/rulesets"

func filterRoutes() []route {
	return []route{
		{"GET", filterPrefix, accessRead, (*server).listFilters},
		{"POST", filterPrefix, accessDeployments, (*server).createFilter},
		{"GET", filterPrefix + "/{ruleset_id}", accessRead, (*server).getFilter},
		{"PUT", filterPrefix + "/{ruleset_id}", accessDeployments, (*server).updateFilter},
		{"DELETE", filterPrefix + "/{ruleset_id}", accessDeployments, (*server).deleteFilter},
		{"GET", filterPrefix + "/{ruleset_id}/associations", accessRead, (*server).filterAssociations},
		{"POST", filterPrefix + "/{ruleset_id}/associations", accessDeployments, (*server).attachFilter},
		{"DELETE", filterPrefix + "/{ruleset_id}/associations/{association_type}/{associated_entity_id}", accessDeployments, (*server).detachFilter},
	}
}

// TrafficFilterBody is POST/PUT of a rule set.
type TrafficFilterBody = service.TrafficFilterRequest

// TrafficFilterList is GET /deployments/traffic-filter/rulesets.
type TrafficFilterList struct {
	Rulesets []service.TrafficFilterView `json:"rulesets"`
}

// AssociationBody is POST .../rulesets/{ruleset_id}/associations.
type AssociationBody = engine.TrafficFilterAssociation

// AssociationList is GET .../rulesets/{ruleset_id}/associations.
type AssociationList struct {
	Associations []engine.TrafficFilterAssociation `json:"associations"`
}

func (s *server) listFilters(r *http.Request, _ service.Principal) (int, any, error) {
	fs, err := s.svc.ListTrafficFilters(r.Context())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, TrafficFilterList{Rulesets: fs}, nil
}

func (s *server) createFilter(r *http.Request, p service.Principal) (int, any, error) {
	var b TrafficFilterBody
	if err := decodeBody(r, &b, false); err != nil {
		return 0, nil, err
	}
	v, err := s.svc.CreateTrafficFilter(r.Context(), b, p.Actor())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, v, nil
}

func (s *server) getFilter(r *http.Request, _ service.Principal) (int, any, error) {
	return ok(s.svc.GetTrafficFilter(r.Context(), r.PathValue("ruleset_id")))
}

func (s *server) updateFilter(r *http.Request, p service.Principal) (int, any, error) {
	var b TrafficFilterBody
	if err := decodeBody(r, &b, false); err != nil {
		return 0, nil, err
	}
	return ok(s.svc.UpdateTrafficFilter(r.Context(), r.PathValue("ruleset_id"), b, p.Actor()))
}

func (s *server) deleteFilter(r *http.Request, p service.Principal) (int, any, error) {
	ignore, err := boolQuery(r, "ignore_associations")
	if err != nil {
		return 0, nil, err
	}
	id := r.PathValue("ruleset_id")
	if err := s.svc.DeleteTrafficFilter(r.Context(), id, ignore, p.Actor()); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"id": id, "status": "deleted"}, nil
}

func (s *server) filterAssociations(r *http.Request, _ service.Principal) (int, any, error) {
	v, err := s.svc.GetTrafficFilter(r.Context(), r.PathValue("ruleset_id"))
	if err != nil {
		return 0, nil, err
	}
	as := v.Associations
	if as == nil {
		as = []engine.TrafficFilterAssociation{}
	}
	return http.StatusOK, AssociationList{Associations: as}, nil
}

func (s *server) attachFilter(r *http.Request, p service.Principal) (int, any, error) {
	var b AssociationBody
	if err := decodeBody(r, &b, false); err != nil {
		return 0, nil, err
	}
	return ok(s.svc.AttachTrafficFilter(r.Context(), r.PathValue("ruleset_id"), b, p.Actor()))
}

func (s *server) detachFilter(r *http.Request, p service.Principal) (int, any, error) {
	return ok(s.svc.DetachTrafficFilter(r.Context(), r.PathValue("ruleset_id"), r.PathValue("association_type"),
		r.PathValue("associated_entity_id"), p.Actor()))
}
