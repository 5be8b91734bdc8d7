package node

import (
	"fmt"
	"strings"
	"testing"
)

// TestReplicaReadsWaitForConfirmation: a replica that restarted, or
// whose index the primary reset to copy it again, may lack
// acknowledged writes while its own routing still says it is in sync.
// Its reads go to the primary (role recovering) until the platform
// confirms it: the same routing pushed again after a restart, a newer
// one that lists it in sync after a reset. Seen live: during rolling
// restarts the proxy read counts of 1,000 (a full copy's first chunk)
// and a missing index from a copy being copied again.
func TestReplicaReadsWaitForConfirmation(t *testing.T) {
	g := newGroup(t, "a", "b")
	a, b := g.node("a"), g.node("b")
	do(t, a.url, call{"PUT", "/logs/_doc/1?refresh=true", `{"n":1}`, 201, nil})
	role := func(n *replNode) string {
		t.Helper()
		m := do(t, n.addr(), call{"GET", ReplicationPath, "", 200, nil})
		return fmt.Sprint(m["role"])
	}
	if r := role(b); r != RoleReplica {
		t.Fatalf("b is %s, want replica", r)
	}

	// Restarted on its data: unconfirmed until the routing comes again.
	b.kill()
	b.start(t)
	if r := role(b); r != RoleRecovering {
		t.Fatalf("restarted b is %s, want recovering until confirmed", r)
	}
	// Its reads are the primary's (served through it).
	do(t, b.addr(), call{"GET", "/logs/_doc/1", "", 200, []string{`"found":true`}})
	g.mu.Lock()
	g.refreshCopiesLocked()
	g.mu.Unlock()
	g.pushAll() // the same version
	if r := role(b); r != RoleReplica {
		t.Fatalf("b after the routing came again is %s, want replica", r)
	}

	// A reset of one of its indices: unconfirmed until a newer routing
	// lists it in sync; the same one pushed again does not confirm it.
	term := g.rt.Term
	do(t, b.addr(), call{"POST", ReplicationResetPath, fmt.Sprintf(`{"term":%d,"index":"logs"}`, term), 200, nil})
	if r := role(b); r != RoleRecovering {
		t.Fatalf("b after a reset is %s, want recovering", r)
	}
	do(t, b.addr(), call{"GET", "/logs/_doc/1", "", 200, []string{`"found":true`}}) // from the primary: b's copy is empty
	// Counts and statistics too: an operator's _cat/indices must not
	// show a copy half copied.
	if code, body, _ := httpDo("GET", b.addr()+"/_cat/count/logs?h=count", ""); code != 200 || strings.TrimSpace(string(body)) != "1" {
		t.Fatalf("_cat/count on b after a reset: %d %q, want the primary's 1", code, body)
	}
	if code, body, _ := httpDo("GET", b.addr()+"/_cat/indices/logs?h=docs.count", ""); code != 200 || strings.TrimSpace(string(body)) != "1" {
		t.Fatalf("_cat/indices on b after a reset: %d %q, want the primary's 1", code, body)
	}
	g.pushAll()
	if r := role(b); r != RoleRecovering {
		t.Fatalf("b after the same routing again is %s, want recovering", r)
	}
	g.change(func(rt *Routing) {})
	if r := role(b); r != RoleReplica {
		t.Fatalf("b after a newer routing listing it in sync is %s, want replica", r)
	}
}

// TestReplicaLeaveOnShutdown: a replica that shuts down tells its
// primary, which takes it for failed at once (event failed, the routing
// drops it) instead of after its sends to the stopped node time out; a
// stale term changes nothing.
func TestReplicaLeaveOnShutdown(t *testing.T) {
	g := newGroup(t, "a", "b")
	a, b := g.node("a"), g.node("b")
	do(t, a.url, call{"PUT", "/logs/_doc/1", `{"n":1}`, 201, []string{`"successful":2`}})
	// A leave of an older term is ignored.
	do(t, a.url, call{"POST", ReplicationLeavePath, fmt.Sprintf(`{"term":%d,"copy":"b"}`, g.rt.Term-1), 200, []string{`"acknowledged":false`}})
	b.srv.Leave(t.Context())
	b.kill()
	do(t, a.url, call{"GET", ReplicationEventsPath + "?after=0", "", 200, []string{`"kind":"failed"`, `"copy":"b"`, `shutting down`}})
	g.waitInSync("a")
	// Writes go on without b.
	do(t, a.url, call{"PUT", "/logs/_doc/2", `{"n":2}`, 201, []string{`"successful":1`}})
	// It comes back, recovers and is in sync again.
	b.start(t)
	g.mu.Lock()
	g.refreshCopiesLocked()
	g.mu.Unlock()
	g.pushAll()
	g.waitInSync("a", "b")
	if _, _, ok := localDoc(b, "logs", "2"); !ok {
		t.Fatal("b lacks the write made while it was away")
	}
}
