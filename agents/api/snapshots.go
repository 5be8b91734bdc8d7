package api

import (
	"net/http"

	"paddock/engine/service"
)

// Snapshot endpoints: repositories in ECE's shape under
// /platform/configuration/snapshots/repositories (keys write-only: reads
// mask them), and each deployment's snapshots, schedule and restores.
const repoPrefix = "/platform/configuration/snapshots/repositories"

func snapshotRoutes() []route {
	return []route{
		{"GET", repoPrefix, accessRead, (*server).listRepositories},
		{"GET", repoPrefix + "/{repository_name}", accessRead, (*server).getRepository},
		{"PUT", repoPrefix + "/{repository_name}", accessPlatform, (*server).putRepository},
		{"DELETE", repoPrefix + "/{repository_name}", accessPlatform, (*server).deleteRepository},

		{"GET", "/deployments/{id}/snapshots", accessRead, (*server).listSnapshots},
		{"POST", "/deployments/{id}/snapshots", accessDeployments, (*server).takeSnapshot},
		{"GET", "/deployments/{id}/snapshots/{snapshot}", accessRead, (*server).getSnapshot},
		{"POST", "/deployments/{id}/snapshots/{snapshot}/_restore", accessDeployments, (*server).restoreSnapshot},
		{"PUT", "/deployments/{id}/snapshot-policy", accessDeployments, (*server).putSnapshotPolicy},
		{"GET", "/deployments/{id}/restore", accessRead, (*server).getRestore},
	}
}

// RepositoryBody is PUT …/snapshots/repositories/{repository_name}.
type RepositoryBody = service.RepositoryConfig

// RepositoryList is GET …/snapshots/repositories.
type RepositoryList struct {
	Configs []service.RepositoryView `json:"configs"`
}

// SnapshotPolicyBody is PUT /deployments/{id}/snapshot-policy.
type SnapshotPolicyBody = service.SnapshotPolicyRequest

// RestoreBody is POST /deployments/{id}/snapshots/{snapshot}/_restore
// ({snapshot} "_latest" takes the source's newest good one).
type RestoreBody struct {
	SourceDeployment  string `json:"source_deployment_id,omitempty"`
	Indices           string `json:"indices,omitempty"`
	RenamePattern     string `json:"rename_pattern,omitempty"`
	RenameReplacement string `json:"rename_replacement,omitempty"`
}

func (s *server) listRepositories(r *http.Request, _ service.Principal) (int, any, error) {
	rs, err := s.svc.ListRepositories(r.Context())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, RepositoryList{Configs: rs}, nil
}

func (s *server) getRepository(r *http.Request, _ service.Principal) (int, any, error) {
	return ok(s.svc.GetRepository(r.Context(), r.PathValue("repository_name")))
}

func (s *server) putRepository(r *http.Request, p service.Principal) (int, any, error) {
	var b RepositoryBody
	if err := decodeBody(r, &b, false); err != nil {
		return 0, nil, err
	}
	return ok(s.svc.PutRepository(r.Context(), r.PathValue("repository_name"), b, p.Actor()))
}

func (s *server) deleteRepository(r *http.Request, p service.Principal) (int, any, error) {
	if err := s.svc.DeleteRepository(r.Context(), r.PathValue("repository_name"), p.Actor()); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{}, nil
}

func (s *server) listSnapshots(r *http.Request, _ service.Principal) (int, any, error) {
	return ok(s.svc.ListSnapshots(r.Context(), r.PathValue("id")))
}

func (s *server) takeSnapshot(r *http.Request, p service.Principal) (int, any, error) {
	rec, err := s.svc.TakeSnapshot(r.Context(), r.PathValue("id"), p.Actor())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, rec, nil
}

func (s *server) getSnapshot(r *http.Request, _ service.Principal) (int, any, error) {
	return ok(s.svc.GetSnapshot(r.Context(), r.PathValue("id"), r.PathValue("snapshot")))
}

func (s *server) restoreSnapshot(r *http.Request, p service.Principal) (int, any, error) {
	var b RestoreBody
	if err := decodeBody(r, &b, true); err != nil {
		return 0, nil, err
	}
	rec, err := s.svc.RestoreSnapshot(r.Context(), r.PathValue("id"), service.RestoreRequest{SourceDeployment: b.SourceDeployment,
		Snapshot: r.PathValue("snapshot"), Indices: b.Indices, RenamePattern: b.RenamePattern, RenameReplacement: b.RenameReplacement}, p.Actor())
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, rec, nil
}

func (s *server) putSnapshotPolicy(r *http.Request, p service.Principal) (int, any, error) {
	var b SnapshotPolicyBody
	if err := decodeBody(r, &b, false); err != nil {
		return 0, nil, err
	}
	return ok(s.svc.SetSnapshotPolicy(r.Context(), r.PathValue("id"), b, p.Actor()))
}

func (s *server) getRestore(r *http.Request, _ service.Principal) (int, any, error) {
	return ok(s.svc.GetRestore(r.Context(), r.PathValue("id")))
}
