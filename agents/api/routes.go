package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"paddock/engine"
	"paddock/engine/service"
)

// Prefix is the API's path prefix.
const Prefix = "/api/v1"

// route is one endpoint: method, path (OpenAPI form, under Prefix), the
// access it needs and its handler.
type route struct {
	method, path string
	access       access
	handle       func(s *server, r *http.Request, p service.Principal) (int, any, error)
}

// routes is the API: the OpenAPI document must list exactly these.
func routes() []route {
	return append([]route{
		{"GET", "/api-docs", accessPublic, (*server).apiDocs},

		{"GET", "/deployments", accessRead, (*server).listDeployments},
		{"POST", "/deployments", accessDeployments, (*server).createDeployment},
		{"GET", "/deployments/{id}", accessRead, (*server).getDeployment},
		{"PUT", "/deployments/{id}", accessDeployments, (*server).updateDeployment},
		{"DELETE", "/deployments/{id}", accessDeployments, (*server).deleteDeployment},
		{"GET", "/deployments/{id}/activity", accessRead, (*server).activity},
		{"GET", "/deployments/{id}/logs", accessRead, (*server).logs},
		{"DELETE", "/deployments/{id}/plan/pending", accessDeployments, (*server).cancelPlan},
		{"POST", "/deployments/{id}/_restart", accessDeployments, (*server).restart},
		{"POST", "/deployments/{id}/plan/_retry", accessDeployments, (*server).retryPlan},
		{"POST", "/deployments/{id}/elasticsearch/{ref}/_reset-password", accessDeployments, (*server).resetPassword},

		{"GET", "/platform", accessRead, (*server).platform},
		{"GET", "/platform/infrastructure/allocators", accessRead, (*server).listAllocators},
		{"GET", "/platform/infrastructure/allocators/{id}", accessRead, (*server).getAllocator},
		{"POST", "/platform/infrastructure/allocators/{id}/maintenance-mode/_start", accessPlatform, (*server).maintenanceStart},
		{"POST", "/platform/infrastructure/allocators/{id}/maintenance-mode/_stop", accessPlatform, (*server).maintenanceStop},
		{"POST", "/platform/infrastructure/allocators/{id}/clusters/_move", accessPlatform, (*server).move},
		{"PUT", "/platform/infrastructure/allocators/{id}/settings", accessPlatform, (*server).allocatorSettings},
		{"GET", "/platform/infrastructure/proxies", accessRead, (*server).proxies},
		{"GET", "/platform/headroom", accessRead, (*server).headroom},
		{"GET", "/platform/doctor", accessRead, (*server).doctor},
		{"GET", "/platform/configuration/store/constructor", accessRead, (*server).getConstructor},
		{"PUT", "/platform/configuration/store/constructor", accessPlatform, (*server).putConstructor},

		{"GET", "/users/auth/keys", accessPlatform, (*server).listKeys},
		{"POST", "/users/auth/keys", accessPlatform, (*server).createKey},
		{"DELETE", "/users/auth/keys/{id}", accessPlatform, (*server).revokeKey},
	}, append(filterRoutes(), snapshotRoutes()...)...)
}

func (s *server) apiDocs(r *http.Request, _ service.Principal) (int, any, error) {
	return http.StatusOK, s.docJSON, nil
}

func boolQuery(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, apiErr(service.KindInvalid, "request.invalid", "invalid query parameter",
			service.FieldError{Field: name, Message: "must be true or false"})
	}
	return b, nil
}

func (s *server) listDeployments(r *http.Request, _ service.Principal) (int, any, error) {
	all, err := boolQuery(r, "show_deleted")
	if err != nil {
		return 0, nil, err
	}
	deps, err := s.svc.ListDeployments(r.Context(), all)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, DeploymentList{Deployments: deps}, nil
}

func (s *server) createDeployment(r *http.Request, p service.Principal) (int, any, error) {
	var b CreateDeploymentBody
	if err := decodeBody(r, &b, false); err != nil {
		return 0, nil, err
	}
	vo, err := boolQuery(r, "validate_only")
	if err != nil {
		return 0, nil, err
	}
	res, err := s.svc.CreateDeployment(r.Context(), service.CreateRequest{Name: b.Name, RequestID: b.RequestID,
		Spec: b.Spec, ValidateOnly: b.ValidateOnly || vo, Actor: p.Actor(), Snapshot: b.Snapshot, RestoreFrom: b.RestoreFrom})
	if err != nil {
		return 0, nil, err
	}
	if res.Created {
		return http.StatusCreated, res, nil
	}
	return http.StatusOK, res, nil
}

func (s *server) getDeployment(r *http.Request, _ service.Principal) (int, any, error) {
	v, err := s.svc.GetDeployment(r.Context(), r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, withETag{v, `"` + strconv.Itoa(int(v.ResourceVersion)) + `"`}, nil
}

// ifMatch reads the If-Match header ("3" or "\"3\""); nil when absent.
func ifMatch(r *http.Request) (*int32, error) {
	h := strings.Trim(strings.TrimSpace(r.Header.Get("If-Match")), `"`)
	if h == "" || h == "*" {
		return nil, nil
	}
	n, err := strconv.ParseInt(h, 10, 32)
	if err != nil {
		return nil, apiErr(service.KindInvalid, "request.invalid", "invalid If-Match header",
			service.FieldError{Field: "If-Match", Message: "must be the resource_version read (an integer)"})
	}
	v := int32(n)
	return &v, nil
}

func (s *server) updateDeployment(r *http.Request, p service.Principal) (int, any, error) {
	var b UpdateDeploymentBody
	if err := decodeBody(r, &b, false); err != nil {
		return 0, nil, err
	}
	hv, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	ver := b.Version
	if hv != nil {
		if ver != nil && *ver != *hv {
			return 0, nil, apiErr(service.KindInvalid, "request.invalid", "If-Match and version disagree",
				service.FieldError{Field: "version", Message: "differs from the If-Match header: send one of them"})
		}
		ver = hv
	}
	vo, err := boolQuery(r, "validate_only")
	if err != nil {
		return 0, nil, err
	}
	res, err := s.svc.UpdateDeployment(r.Context(), r.PathValue("id"), service.UpdateRequest{Name: b.Name, Spec: b.Spec, Version: ver,
		Actor: p.Actor(), ValidateOnly: vo})
	if err != nil {
		return 0, nil, err
	}
	if res.PlanID != "" {
		return http.StatusAccepted, res, nil
	}
	return http.StatusOK, res, nil
}

func (s *server) deleteDeployment(r *http.Request, p service.Principal) (int, any, error) {
	return accepted(s.svc.DeleteDeployment(r.Context(), r.PathValue("id"), p.Actor()))
}

func (s *server) activity(r *http.Request, _ service.Principal) (int, any, error) {
	return ok(s.svc.Activity(r.Context(), r.PathValue("id")))
}

func (s *server) cancelPlan(r *http.Request, p service.Principal) (int, any, error) {
	plan, err := s.svc.CancelPlan(r.Context(), r.PathValue("id"), p.Actor())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, CancelResponse{DeploymentID: plan.DeploymentID, PlanID: plan.ID, CancelRequested: plan.CancelRequested}, nil
}

func (s *server) retryPlan(r *http.Request, p service.Principal) (int, any, error) {
	if err := decodeBody(r, &struct{}{}, true); err != nil {
		return 0, nil, err
	}
	return accepted(s.svc.RetryPlan(r.Context(), r.PathValue("id"), p.Actor()))
}

func (s *server) restart(r *http.Request, p service.Principal) (int, any, error) {
	if err := decodeBody(r, &struct{}{}, true); err != nil {
		return 0, nil, err
	}
	return accepted(s.svc.RestartDeployment(r.Context(), r.PathValue("id"), p.Actor()))
}

// resetPassword issues a new elastic password (ECE's shape: the ref is
// the Elasticsearch resource, main-elasticsearch).
func (s *server) resetPassword(r *http.Request, p service.Principal) (int, any, error) {
	if ref := r.PathValue("ref"); ref != "main-elasticsearch" && ref != "elasticsearch" {
		return 0, nil, apiErr(service.KindNotFound, "deployment.resource_not_found",
			"deployment "+r.PathValue("id")+" has no Elasticsearch resource "+strconv.Quote(ref)+": use main-elasticsearch")
	}
	if err := decodeBody(r, &struct{}{}, true); err != nil {
		return 0, nil, err
	}
	return ok(s.svc.ResetPassword(r.Context(), r.PathValue("id"), p.Actor()))
}

func (s *server) platform(r *http.Request, _ service.Principal) (int, any, error) {
	return ok(s.svc.Platform(r.Context()))
}

// logs streams an instance's container log (text/plain).
func (s *server) logs(r *http.Request, _ service.Principal) (int, any, error) {
	q := r.URL.Query()
	var o engine.LogOptions
	var fe []service.FieldError
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			fe = append(fe, service.FieldError{Field: "tail", Message: "must be a number of lines"})
		}
		o.Tail = n
	}
	if v := q.Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fe = append(fe, service.FieldError{Field: "since", Message: "must be a duration such as 10m or 1h"})
		}
		o.Since = d
	}
	follow, err := boolQuery(r, "follow")
	if err != nil {
		return 0, nil, err
	}
	o.Follow = follow
	if len(fe) > 0 {
		return 0, nil, apiErr(service.KindInvalid, "request.invalid", "invalid query parameter", fe...)
	}
	rc, err := s.svc.Logs(r.Context(), r.PathValue("id"), q.Get("instance"), o)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, logStream{rc}, nil
}

func (s *server) doctor(r *http.Request, _ service.Principal) (int, any, error) {
	return ok(s.svc.Doctor(r.Context()))
}

func (s *server) headroom(r *http.Request, _ service.Principal) (int, any, error) {
	return ok(s.svc.Headroom(r.Context()))
}

func (s *server) listAllocators(r *http.Request, _ service.Principal) (int, any, error) {
	as, err := s.svc.ListAllocators(r.Context())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, AllocatorList{Allocators: as}, nil
}

func (s *server) getAllocator(r *http.Request, _ service.Principal) (int, any, error) {
	return ok(s.svc.GetAllocator(r.Context(), r.PathValue("id")))
}

func (s *server) maintenance(r *http.Request, p service.Principal, on bool) (int, any, error) {
	var b MaintenanceBody
	if err := decodeBody(r, &b, true); err != nil {
		return 0, nil, err
	}
	if len(b.Reason) > 512 {
		return 0, nil, apiErr(service.KindInvalid, "request.invalid", "reason too long",
			service.FieldError{Field: "reason", Message: "at most 512 characters"})
	}
	return ok(s.svc.SetMaintenance(r.Context(), r.PathValue("id"), on, b.Reason, p.Actor()))
}

func (s *server) maintenanceStart(r *http.Request, p service.Principal) (int, any, error) {
	return s.maintenance(r, p, true)
}

func (s *server) maintenanceStop(r *http.Request, p service.Principal) (int, any, error) {
	return s.maintenance(r, p, false)
}

func (s *server) move(r *http.Request, p service.Principal) (int, any, error) {
	var b MoveBody
	if err := decodeBody(r, &b, true); err != nil {
		return 0, nil, err
	}
	return accepted(s.svc.Vacate(r.Context(), r.PathValue("id"), b.Targets, p.Actor()))
}

func (s *server) allocatorSettings(r *http.Request, p service.Principal) (int, any, error) {
	var b engine.AllocatorSettings
	if err := decodeBody(r, &b, false); err != nil {
		return 0, nil, err
	}
	return ok(s.svc.SetAllocatorSettings(r.Context(), r.PathValue("id"), b, p.Actor()))
}

func (s *server) proxies(r *http.Request, _ service.Principal) (int, any, error) {
	ps, err := s.svc.ListProxies(r.Context())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ProxyList{Proxies: ps}, nil
}

func (s *server) getConstructor(r *http.Request, _ service.Principal) (int, any, error) {
	return ok(s.svc.GetConstructorSettings(r.Context()))
}

func (s *server) putConstructor(r *http.Request, p service.Principal) (int, any, error) {
	var b ConstructorBody
	if err := decodeBody(r, &b, false); err != nil {
		return 0, nil, err
	}
	hv, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	ver := b.Version
	if hv != nil {
		ver = hv
	}
	c, err := s.svc.SetConstructorSettings(r.Context(), service.ConstructorSettings{PlacementStrategy: b.PlacementStrategy,
		LostAllocatorGraceSeconds: b.LostAllocatorGraceSeconds, MaxReplacementsPerMinute: b.MaxReplacementsPerMinute}, ver, p.Actor())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, c, nil
}

func (s *server) listKeys(r *http.Request, _ service.Principal) (int, any, error) {
	ks, err := s.svc.ListAPIKeys(r.Context())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, KeyList{Keys: ks}, nil
}

func (s *server) createKey(r *http.Request, p service.Principal) (int, any, error) {
	var b CreateKeyBody
	if err := decodeBody(r, &b, false); err != nil {
		return 0, nil, err
	}
	id, key, err := s.svc.CreateAPIKeyBy(r.Context(), b.Name, b.Role, p.Actor())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, CreateKeyResponse{ID: id, Name: b.Name, Role: b.Role, Key: key}, nil
}

func (s *server) revokeKey(r *http.Request, p service.Principal) (int, any, error) {
	if err := s.svc.RevokeAPIKey(r.Context(), r.PathValue("id"), p.Actor()); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"id": r.PathValue("id"), "status": "revoked"}, nil
}

// ok answers v with 200, or the error.
func ok[T any](v T, err error) (int, any, error) {
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, v, nil
}

// accepted answers v with 202, or the error.
func accepted[T any](v T, err error) (int, any, error) {
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, v, nil
}
