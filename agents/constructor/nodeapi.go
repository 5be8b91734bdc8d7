package constructor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// NodeAPI is what the plan executor asks of a deployment's nodes: data
// snapshots into the shared repository, restores, replication peers.
// addr is the node's host:port as its InstanceStatus reports it.
type NodeAPI interface {
	// Snapshot registers the repository (an fs location shared by the
	// deployment's nodes) and takes snapshot snap, waiting for it.
	Snapshot(ctx context.Context, addr, location, snap string) error
	// Restore registers the repository and restores snap (all indices).
	Restore(ctx context.Context, addr, location, snap string) error
	// SetPeers replaces the node's replication peers (URLs).
	SetPeers(ctx context.Context, addr string, peers []string) error
	// LatestSnapshot registers the repository and names its newest
	// successful snapshot ("" when there is none).
	LatestSnapshot(ctx context.Context, addr, location string) (string, error)
}

// SnapshotRepo is the repository name every deployment uses.
const SnapshotRepo = "found-snapshots"

// SnapshotLocation is a deployment's repository location, as the node
// containers see the shared snapshot directory.
func SnapshotLocation(deploymentID string) string { return "/snapshots/" + deploymentID }

// HTTPNodes is the NodeAPI over the nodes' Elasticsearch-compatible HTTP
// API.
type HTTPNodes struct {
	Client *http.Client
	// Scheme is "http" (default) or "https".
	Scheme string
}

// NewHTTPNodes returns a NodeAPI with sane timeouts.
func NewHTTPNodes() *HTTPNodes {
	return &HTTPNodes{Client: &http.Client{Timeout: 2 * time.Minute}}
}

func (h *HTTPNodes) url(addr, path string) string {
	scheme := h.Scheme
	if scheme == "" {
		scheme = "http"
	}
	return scheme + "://" + addr + path
}

func (h *HTTPNodes) call(ctx context.Context, method, addr, path string, body any) error {
	return h.callInto(ctx, method, addr, path, body, nil)
}

func (h *HTTPNodes) callInto(ctx context.Context, method, addr, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.url(addr, path), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s on node %s: %w (is the node running? check its allocator's status)", method, path, addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s on node %s: %s: %s", method, path, addr, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s on node %s: undecodable answer: %w", method, path, addr, err)
		}
	}
	return nil
}

func (h *HTTPNodes) repo(ctx context.Context, addr, location string) error {
	return h.call(ctx, http.MethodPut, addr, "/_snapshot/"+SnapshotRepo,
		map[string]any{"type": "fs", "settings": map[string]any{"location": location}})
}

// Snapshot implements NodeAPI.
func (h *HTTPNodes) Snapshot(ctx context.Context, addr, location, snap string) error {
	if err := h.repo(ctx, addr, location); err != nil {
		return err
	}
	return h.call(ctx, http.MethodPut, addr, "/_snapshot/"+SnapshotRepo+"/"+snap+"?wait_for_completion=true", map[string]any{})
}

// Restore implements NodeAPI.
func (h *HTTPNodes) Restore(ctx context.Context, addr, location, snap string) error {
	if err := h.repo(ctx, addr, location); err != nil {
		return err
	}
	return h.call(ctx, http.MethodPost, addr, "/_snapshot/"+SnapshotRepo+"/"+snap+"/_restore", map[string]any{})
}

// SetPeers implements NodeAPI.
func (h *HTTPNodes) SetPeers(ctx context.Context, addr string, peers []string) error {
	if peers == nil {
		peers = []string{}
	}
	return h.call(ctx, http.MethodPut, addr, "/_paddock/peers", map[string]any{"peers": peers})
}

// LatestSnapshot implements NodeAPI.
func (h *HTTPNodes) LatestSnapshot(ctx context.Context, addr, location string) (string, error) {
	if err := h.repo(ctx, addr, location); err != nil {
		return "", err
	}
	var out struct {
		Snapshots []struct {
			Snapshot string `json:"snapshot"`
			State    string `json:"state"`
			EndMS    int64  `json:"end_time_in_millis"`
		} `json:"snapshots"`
	}
	if err := h.callInto(ctx, http.MethodGet, addr, "/_snapshot/"+SnapshotRepo+"/_all", nil, &out); err != nil {
		return "", err
	}
	latest, end := "", int64(-1)
	for _, s := range out.Snapshots {
		if strings.EqualFold(s.State, "SUCCESS") && s.EndMS > end {
			latest, end = s.Snapshot, s.EndMS
		}
	}
	return latest, nil
}
