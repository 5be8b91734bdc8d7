package constructor

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"paddock/agents/node"
	"paddock/stunnel"
)

// NodeAPI is what the plan executor asks of a deployment's nodes: data
// snapshots into the shared repository, restores, replication peers.
// addr is the node's host:port as its InstanceStatus reports it, or,
// for a node behind its allocator's mTLS tunnel, TunnelTarget(tunnel
// address, instance id).
type NodeAPI interface {
	// Snapshot registers the repository (an fs location shared by the
	// deployment's nodes) and takes snapshot snap, waiting for it.
	Snapshot(ctx context.Context, addr, location, snap string) error
	// Restore registers the repository and restores snap (all indices).
	Restore(ctx context.Context, addr, location, snap string) error
	// SetPeers replaces the node's replication peers (URLs): the
	// best-effort copying of nodes without the replication endpoints.
	SetPeers(ctx context.Context, addr string, peers []string) error
	// PushReplication sends a deployment's routing to one of its copies
	// (PUT /_paddock/replication); applied is false when the node holds a
	// newer one.
	PushReplication(ctx context.Context, addr string, p ReplicationPush) (applied bool, err error)
	// NodeReplication reads a node's view of its routing and
	// checkpoints (GET /_paddock/replication).
	NodeReplication(ctx context.Context, addr string) (NodeReplication, error)
	// ReplicationEvents long-polls the primary for the changes it asks
	// of the authority (GET /_paddock/replication/events).
	ReplicationEvents(ctx context.Context, addr string, after int64, wait time.Duration) (ReplicationEvents, error)
	// LatestSnapshot registers the repository and names its newest
	// successful snapshot ("" when there is none).
	LatestSnapshot(ctx context.Context, addr, location string) (string, error)
}

// SnapshotRepo is the repository name every deployment uses.
const SnapshotRepo = "found-snapshots"

// SnapshotLocation is a deployment's repository location, as the node
// containers see the shared snapshot directory.
func SnapshotLocation(deploymentID string) string { return "/snapshots/" + deploymentID }

// TunnelTarget names a node reached through its allocator's node tunnel
// (tunnelAddr, host:port) by SNI stunnel.BackendSNI(instanceID); it is
// the addr the executor hands the NodeAPI for such a node.
func TunnelTarget(tunnelAddr, instanceID string) string {
	return instanceID + "@" + tunnelAddr
}

// ParseTunnelTarget splits a TunnelTarget; ok is false for a plain
// host:port.
func ParseTunnelTarget(addr string) (tunnelAddr, instanceID string, ok bool) {
	iid, ta, ok := strings.Cut(addr, "@")
	if !ok || iid == "" || ta == "" {
		return "", "", false
	}
	return ta, iid, true
}

// HTTPNodes is the NodeAPI over the nodes' Elasticsearch-compatible HTTP
// API.
type HTTPNodes struct {
	// Client serves plain host:port addresses.
	Client *http.Client
	// Scheme is "http" (default) or "https".
	Scheme string
	// Tunnel is the mutual TLS client config for TunnelTarget addresses
	// (normally stunnel.Client.ReloadingTLSConfig of the constructor
	// certificate); each (tunnel, instance) gets a clone with ServerName
	// stunnel.BackendSNI(instance) and its own keep-alive transport.
	Tunnel *tls.Config
	// Credentials gives the platform credential of a deployment (calls
	// whose context carries WithDeployment authenticate with it).
	Credentials func(ctx context.Context, deploymentID string) (node.PlatformCredential, error)

	mu         sync.Mutex
	transports map[string]*http.Transport
}

// maxTunnelTransports bounds the per-node transports kept; past it the
// idle ones are closed and the table starts over.
const maxTunnelTransports = 512

// tunnelClient is the client for node iid behind tunnelAddr.
func (h *HTTPNodes) tunnelClient(tunnelAddr, iid string) (*http.Client, error) {
	if h.Tunnel == nil {
		return nil, fmt.Errorf("node %s sits behind the allocator tunnel %s but this constructor has no certificate for it: "+
			"give the constructor its constructor-role certificate (paddock up / constructor --state-dir with tls/)", iid, tunnelAddr)
	}
	key := iid + "@" + tunnelAddr
	h.mu.Lock()
	defer h.mu.Unlock()
	tr, ok := h.transports[key]
	if !ok {
		if h.transports == nil || len(h.transports) >= maxTunnelTransports {
			for _, old := range h.transports {
				old.CloseIdleConnections()
			}
			h.transports = map[string]*http.Transport{}
		}
		cfg := h.Tunnel.Clone()
		cfg.ServerName = stunnel.BackendSNI(iid)
		tr = &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: false, MaxIdleConnsPerHost: 2,
			IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second}
		h.transports[key] = tr
	}
	timeout := 2 * time.Minute
	if h.Client != nil && h.Client.Timeout > 0 {
		timeout = h.Client.Timeout
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// NewHTTPNodes returns a NodeAPI with sane timeouts.
func NewHTTPNodes() *HTTPNodes {
	return &HTTPNodes{Client: &http.Client{Timeout: 2 * time.Minute}}
}

func (h *HTTPNodes) url(addr, path string) string {
	if ta, _, ok := ParseTunnelTarget(addr); ok {
		return "https://" + ta + path
	}
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
	if dep := deploymentOf(ctx); dep != "" && h.Credentials != nil {
		cred, err := h.Credentials(ctx, dep)
		if err != nil {
			return err
		}
		cred.SetAuth(req)
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	hint := "is the node running? check its allocator's status"
	if ta, iid, ok := ParseTunnelTarget(addr); ok {
		if c, err = h.tunnelClient(ta, iid); err != nil {
			return err
		}
		addr = iid + " through tunnel " + ta
		hint = "check that the allocator's node tunnel is up and that this constructor's certificate is of the same platform CA, role constructor"
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s on node %s: %w (%s)", method, path, addr, err, hint)
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
	// A migration restores over what the new node got from an earlier
	// snapshot (the final sync): the node refuses an open index of the
	// same name, as Elasticsearch does, unless the platform asks it to
	// replace them.
	return h.call(ctx, http.MethodPost, addr, "/_snapshot/"+SnapshotRepo+"/"+snap+"/_restore?paddock_replace=true", map[string]any{})
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
