package constructor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The replication calls of the contract between the platform and a
// node (docs/architecture.md, "Replication authority"): the leader
// pushes a deployment's routing to each copy, reads a copy's view of it,
// and long-polls the primary for the changes it asks for.

// ReplicationPush is the body of PUT /_paddock/replication: the routing
// as the znode holds it, its znode version, and which copy the receiver
// is. A node ignores a push older than the one it holds.
type ReplicationPush struct {
	Term    int64      `json:"term"`
	Version int32      `json:"version"`
	Self    string     `json:"self"`
	Primary string     `json:"primary"`
	Copies  []PushCopy `json:"copies"`
	InSync  []string   `json:"in_sync"`
}

// PushCopy is a copy of the group and the URL its peers reach it at.
type PushCopy struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Via is the allocator tunnel in front of the copy when URL is
	// http://<id>.peer.paddock (reached through the allocators).
	Via string `json:"via,omitempty"`
}

// NodeReplication is a node's view (GET /_paddock/replication). Term
// is the highest term the node has seen; RoutingTerm, Version, Primary
// and InSync are the routing it holds.
type NodeReplication struct {
	Self        string                       `json:"self"`
	Term        int64                        `json:"term"`
	RoutingTerm int64                        `json:"routing_term"`
	Version     int32                        `json:"version"`
	Primary     string                       `json:"primary"`
	InSync      []string                     `json:"in_sync"`
	Role        string                       `json:"role"`
	Indices     map[string]IndexCheckpoints  `json:"indices,omitempty"`
	Copies      map[string]NodeReplicaOfCopy `json:"copies,omitempty"`
}

// IndexCheckpoints are an index's sequence number checkpoints on a node.
type IndexCheckpoints struct {
	LocalCheckpoint  int64 `json:"local_checkpoint"`
	GlobalCheckpoint int64 `json:"global_checkpoint"`
	MaxSeqNo         int64 `json:"max_seq_no"`
}

// NodeReplicaOfCopy is how the primary sees one copy.
type NodeReplicaOfCopy struct {
	State      string `json:"state"`
	Checkpoint int64  `json:"checkpoint"`
	Error      string `json:"error,omitempty"`
	// Refused: Error is an answer of the copy that retrying will not
	// change (another contract version, no access, no endpoint).
	Refused bool `json:"refused,omitempty"`
}

// Node roles a node reports.
const (
	RolePrimary    = "primary"
	RoleReplica    = "replica"
	RoleRecovering = "recovering"
	RoleStale      = "stale"
	RoleStandalone = "standalone"
)

// ReplicationEvent is a change the primary asks of the authority.
type ReplicationEvent struct {
	Seq    int64  `json:"seq"`
	Kind   string `json:"kind"`
	Copy   string `json:"copy"`
	Term   int64  `json:"term"`
	Reason string `json:"reason,omitempty"`
}

// Event kinds.
const (
	// EventFailed: the primary could not replicate to an in-sync copy
	// and holds the writes that need it until it is out of in_sync.
	EventFailed = "failed"
	// EventInSync: a recovering copy caught up and takes live writes.
	EventInSync = "in_sync"
)

// ReplicationEvents is the answer of the events long poll.
type ReplicationEvents struct {
	Events []ReplicationEvent `json:"events"`
	Next   int64              `json:"next"`
}

// errNoReplicationAPI: the node has no handler for the replication paths
// (a node of a version before them: 400 "no handler found", 404, 405).
var errNoReplicationAPI = errors.New("the node has no /_paddock/replication endpoint")

// PushReplication implements NodeAPI.
func (h *HTTPNodes) PushReplication(ctx context.Context, addr string, p ReplicationPush) (bool, error) {
	if p.Copies == nil {
		p.Copies = []PushCopy{}
	}
	if p.InSync == nil {
		p.InSync = []string{}
	}
	var out struct {
		Applied *bool `json:"applied"`
	}
	if err := h.callInto(ctx, http.MethodPut, addr, "/_paddock/replication", p, &out); err != nil {
		return false, notFoundAsNoAPI(err)
	}
	return out.Applied == nil || *out.Applied, nil
}

// NodeReplication implements NodeAPI.
func (h *HTTPNodes) NodeReplication(ctx context.Context, addr string) (NodeReplication, error) {
	var out NodeReplication
	err := h.callInto(ctx, http.MethodGet, addr, "/_paddock/replication", nil, &out)
	return out, notFoundAsNoAPI(err)
}

// ReplicationEvents implements NodeAPI: it waits up to wait on the node
// for events after seq after.
func (h *HTTPNodes) ReplicationEvents(ctx context.Context, addr string, after int64, wait time.Duration) (ReplicationEvents, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "wait": {wait.Round(time.Second).String()}}
	var out ReplicationEvents
	err := h.callInto(ctx, http.MethodGet, addr, "/_paddock/replication/events?"+q.Encode(), nil, &out)
	return out, notFoundAsNoAPI(err)
}

func notFoundAsNoAPI(err error) error {
	if err != nil && (strings.Contains(err.Error(), ": 404 ") || strings.Contains(err.Error(), ": 405 ") ||
		strings.Contains(err.Error(), "no handler found")) {
		return fmt.Errorf("%w: %v", errNoReplicationAPI, err)
	}
	return err
}
