package constructor

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"paddock/agents/node"
	"paddock/engine"
)

// RepositoryNodes is what the snapshot scheduler asks of a node, in
// Elasticsearch's documented snapshot API: register a repository, take,
// delete and restore snapshots. *HTTPNodes implements it; a NodeAPI
// without it takes no scheduled snapshots.
type RepositoryNodes interface {
	// PutRepository registers (and the node verifies) repository repo.
	PutRepository(ctx context.Context, addr, repo string, body RepositoryBody) error
	// CreateSnapshot takes snapshot snap of indices ("" = all), waiting
	// for it, and reports what it wrote.
	CreateSnapshot(ctx context.Context, addr, repo, snap, indices string) (SnapshotResult, error)
	// DeleteSnapshot removes a snapshot (a missing one is not an error).
	DeleteSnapshot(ctx context.Context, addr, repo, snap string) error
	// RestoreSnapshot restores snap (indices, rename as Elasticsearch).
	RestoreSnapshot(ctx context.Context, addr, repo, snap string, req RestoreBody) error
}

// RepositoryBody is PUT /_snapshot/<repo>'s body. It holds the S3 keys:
// never log it or put it in an error.
type RepositoryBody struct {
	Type     string         `json:"type"`
	Settings map[string]any `json:"settings"`
}

// RestoreBody is POST /_snapshot/<repo>/<snap>/_restore's body.
type RestoreBody struct {
	Indices           string `json:"indices,omitempty"`
	RenamePattern     string `json:"rename_pattern,omitempty"`
	RenameReplacement string `json:"rename_replacement,omitempty"`
	// Replace lets the platform restore over existing indices (a
	// recovery into nodes that may hold an earlier copy).
	Replace bool `json:"-"`
}

// SnapshotResult is what a finished snapshot reports.
type SnapshotResult struct {
	State            string
	Indices          int
	Files            int
	SizeBytes        int64
	IncrementalBytes int64
	Reason           string
}

// repositoryBody is the node registration of platform repository r for
// deployment dep (its snapshots under base_path dep). The fs type lives
// under the nodes' snapshot root (the allocators' --snapshot-dir, which
// must then be the shared path on every host).
func repositoryBody(r engine.SnapshotRepository, sec engine.RepositorySecret, dep string) RepositoryBody {
	if r.Type == engine.RepositoryFS {
		return RepositoryBody{Type: "fs", Settings: map[string]any{"location": node.ContainerSnapshotRoot + "/repositories/" + r.Name + "/" + dep}}
	}
	protocol := "http"
	if u, err := url.Parse(r.Endpoint); err == nil && u.Scheme != "" {
		protocol = u.Scheme
	}
	return RepositoryBody{Type: "s3", Settings: map[string]any{
		"endpoint": r.Endpoint, "bucket": r.Bucket, "base_path": dep, "region": r.Region,
		"access_key": sec.AccessKey, "secret_key": sec.SecretKey, "protocol": protocol, "path_style_access": r.PathStyle,
	}}
}

// PutRepository implements RepositoryNodes.
func (h *HTTPNodes) PutRepository(ctx context.Context, addr, repo string, body RepositoryBody) error {
	return h.call(ctx, http.MethodPut, addr, "/_snapshot/"+url.PathEscape(repo), body)
}

// CreateSnapshot implements RepositoryNodes.
func (h *HTTPNodes) CreateSnapshot(ctx context.Context, addr, repo, snap, indices string) (SnapshotResult, error) {
	body := map[string]any{}
	if indices != "" {
		body["indices"] = indices
	}
	var out struct {
		Snapshot struct {
			State   string   `json:"state"`
			Indices []string `json:"indices"`
			Reason  string   `json:"reason"`
			Shards  struct {
				Failed int `json:"failed"`
			} `json:"shards"`
		} `json:"snapshot"`
	}
	p := "/_snapshot/" + url.PathEscape(repo) + "/" + url.PathEscape(snap)
	if err := h.callInto(ctx, http.MethodPut, addr, p+"?wait_for_completion=true", body, &out); err != nil {
		return SnapshotResult{}, err
	}
	res := SnapshotResult{State: out.Snapshot.State, Indices: len(out.Snapshot.Indices), Reason: out.Snapshot.Reason}
	if !strings.EqualFold(res.State, "SUCCESS") {
		return res, fmt.Errorf("snapshot %s ended %s: %s", snap, orUnknown(res.State), orUnknown(res.Reason))
	}
	var st struct {
		Snapshots []struct {
			Stats struct {
				Incremental struct {
					FileCount   int   `json:"file_count"`
					SizeInBytes int64 `json:"size_in_bytes"`
				} `json:"incremental"`
				Total struct {
					FileCount   int   `json:"file_count"`
					SizeInBytes int64 `json:"size_in_bytes"`
				} `json:"total"`
			} `json:"stats"`
		} `json:"snapshots"`
	}
	// The sizes are a bonus: a node that cannot tell them still took it.
	if err := h.callInto(ctx, http.MethodGet, addr, p+"/_status", nil, &st); err == nil && len(st.Snapshots) > 0 {
		s := st.Snapshots[0].Stats
		res.Files, res.SizeBytes, res.IncrementalBytes = s.Total.FileCount, s.Total.SizeInBytes, s.Incremental.SizeInBytes
	}
	return res, nil
}

// DeleteSnapshot implements RepositoryNodes.
func (h *HTTPNodes) DeleteSnapshot(ctx context.Context, addr, repo, snap string) error {
	err := h.call(ctx, http.MethodDelete, addr, "/_snapshot/"+url.PathEscape(repo)+"/"+url.PathEscape(snap), nil)
	if err != nil && strings.Contains(err.Error(), "404") {
		return nil
	}
	return err
}

// RestoreSnapshot implements RepositoryNodes.
func (h *HTTPNodes) RestoreSnapshot(ctx context.Context, addr, repo, snap string, req RestoreBody) error {
	q := "?wait_for_completion=true"
	if req.Replace {
		q += "&paddock_replace=true"
	}
	return h.call(ctx, http.MethodPost, addr, "/_snapshot/"+url.PathEscape(repo)+"/"+url.PathEscape(snap)+"/_restore"+q, req)
}
