package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Replication is /paddock/deployments/<id>/replication: the replication
// group of a deployment's Elasticsearch nodes, written only by the
// leading constructor (compare-and-set on the znode version, fenced by
// its election znode). One copy is the primary of every index, the
// others hold replicas; the nodes learn it by a push from the
// constructor and never read ZooKeeper. See docs/architecture.md,
// "Replication authority".
type Replication struct {
	// Term grows by one on every change of primary, and when the
	// copies hold a newer routing than the znode (a ZooKeeper restore
	// brought an older one back): never otherwise.
	Term int64 `json:"term"`
	// Primary is the instance id of the primary copy.
	Primary string `json:"primary"`
	// Copies are the instance ids that hold (or recover) a copy.
	Copies []string `json:"copies"`
	// InSync are the copies that have every acknowledged write: only
	// they may be promoted.
	InSync  []string  `json:"in_sync"`
	Updated time.Time `json:"updated"`
	// Reason says why the last change was made.
	Reason string `json:"reason,omitempty"`
}

// Deployment health, as `_cluster/health` names it.
const (
	HealthGreen  = "green"
	HealthYellow = "yellow"
	HealthRed    = "red"
)

// ReplicationPath returns /paddock/deployments/<id>/replication.
func ReplicationPath(id string) string { return DeploymentPath(id) + "/replication" }

// Validate checks the invariant primary ∈ in_sync ⊆ copies, with no
// copy named twice.
func (r Replication) Validate() error {
	if r.Term < 1 {
		return fmt.Errorf("replication term %d: terms start at 1", r.Term)
	}
	if r.Primary == "" {
		return errors.New("replication has no primary")
	}
	seen := map[string]bool{}
	for _, c := range r.Copies {
		if c == "" || seen[c] {
			return fmt.Errorf("replication copies %v: empty or repeated copy", r.Copies)
		}
		seen[c] = true
	}
	in := map[string]bool{}
	for _, c := range r.InSync {
		if !seen[c] || in[c] {
			return fmt.Errorf("replication in_sync %v is not a set of copies %v", r.InSync, r.Copies)
		}
		in[c] = true
	}
	if !in[r.Primary] {
		return fmt.Errorf("replication primary %s is not in in_sync %v", r.Primary, r.InSync)
	}
	return nil
}

// IsInSync reports whether copy iid is in the in-sync set.
func (r Replication) IsInSync(iid string) bool { return slices.Contains(r.InSync, iid) }

// Equal reports whether two routings name the same group (Updated and
// Reason aside).
func (r Replication) Equal(o Replication) bool {
	return r.Term == o.Term && r.Primary == o.Primary && slices.Equal(r.Copies, o.Copies) && slices.Equal(r.InSync, o.InSync)
}

// ReplicationHealth is a deployment's health from its routing and which
// copies run (live): red when the primary does not run, yellow when a
// copy is out of sync or does not run, else green. The reason names
// what is missing ("" when green).
func ReplicationHealth(r Replication, live func(iid string) bool) (string, string) {
	if !live(r.Primary) {
		return HealthRed, fmt.Sprintf("primary %s is not running", Short(r.Primary))
	}
	var out []string
	for _, c := range r.Copies {
		switch {
		case !live(c):
			out = append(out, Short(c)+" not running")
		case !r.IsInSync(c):
			out = append(out, Short(c)+" recovering")
		}
	}
	if len(out) > 0 {
		return HealthYellow, fmt.Sprintf("%d of %d copies in sync (%s)", len(r.InSync)-countNotLive(r.InSync, live), len(r.Copies), joinComma(out))
	}
	return HealthGreen, ""
}

func countNotLive(ids []string, live func(string) bool) int {
	n := 0
	for _, id := range ids {
		if !live(id) {
			n++
		}
	}
	return n
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// Short is the first 8 characters of an id, as the console shows them.
func Short(id string) string { return id[:min(8, len(id))] }

// Replication reads a deployment's routing; ErrNotFound when it has none
// (no plan made its nodes healthy yet).
func (s *Store) Replication(ctx context.Context, depID string) (Replication, Version, error) {
	var r Replication
	v, err := s.GetJSON(ctx, ReplicationPath(depID), &r)
	return r, v, err
}

// OpReplication is the compare-and-set write of a deployment's routing:
// a create when ver is AnyVersion (no znode yet), else a set at ver. It
// refuses a routing that breaks the invariant.
func OpReplication(depID string, r Replication, ver Version) (Op, error) {
	if err := r.Validate(); err != nil {
		return Op{}, fmt.Errorf("deployment %s: %w", depID, err)
	}
	if ver == AnyVersion {
		return OpCreate(ReplicationPath(depID), r), nil
	}
	return OpSet(ReplicationPath(depID), r, ver), nil
}
