package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"paddock/engine/testenv"
)

// replNode is one in-process node of a test replication group that the
// test can kill (close) and restart on the same data directory.
type replNode struct {
	mu      sync.Mutex // srv and url, read by the authority's goroutine
	id, dir string
	snaps   string // snapshot root, shared by the group
	srv     *Server
	hs      *http.Server
	url     string
	ln      net.Listener
}

func (n *replNode) alive() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv != nil
}

func (n *replNode) addr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.url
}

func (n *replNode) start(t testing.TB) {
	t.Helper()
	s, err := NewServer(Config{Name: n.id, ClusterName: "dep1", DataDir: n.dir, SnapshotRoot: n.snaps, Logger: testLogger(n.id)})
	if err != nil {
		t.Fatal(err)
	}
	s.repl.holdTimeout = 10 * time.Second
	s.repl.sendTimeout = 1 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s}
	n.mu.Lock()
	n.srv, n.ln, n.url, n.hs = s, ln, "http://"+ln.Addr().String(), hs
	n.mu.Unlock()
	go func() { _ = hs.Serve(ln) }()
}

// kill stops the node abruptly (connections cut, data files closed).
func (n *replNode) kill() {
	n.mu.Lock()
	srv, hs := n.srv, n.hs
	n.srv = nil
	n.mu.Unlock()
	if srv == nil {
		return
	}
	_ = hs.Close()
	_ = srv.Close()
}

// testAuthority plays the constructor: it holds the routing, pushes it
// to the nodes and applies the primary's events.
type testAuthority struct {
	t     testing.TB
	mu    sync.Mutex
	nodes map[string]*replNode
	order []string
	rt    Routing
	stop  context.CancelFunc
	wg    sync.WaitGroup
}

func newGroup(t testing.TB, ids ...string) *testAuthority {
	a := &testAuthority{t: t, nodes: map[string]*replNode{}, order: ids}
	snaps := t.TempDir()
	for _, id := range ids {
		n := &replNode{id: id, dir: t.TempDir(), snaps: snaps}
		n.start(t)
		a.nodes[id] = n
	}
	a.rt = Routing{Term: 1, Version: 1, Primary: ids[0], InSync: slices.Clone(ids)}
	a.refreshCopiesLocked()
	a.pushAll()
	ctx, cancel := context.WithCancel(context.Background())
	a.stop = cancel
	a.wg.Add(1)
	go a.pollEvents(ctx)
	t.Cleanup(func() {
		cancel()
		a.wg.Wait()
		for _, n := range a.nodes {
			n.kill()
		}
	})
	return a
}

func (a *testAuthority) refreshCopiesLocked() {
	a.rt.Copies = nil
	for _, id := range a.order {
		a.rt.Copies = append(a.rt.Copies, CopyAddr{ID: id, URL: a.nodes[id].addr()})
	}
}

// pushAll pushes the routing to every live node.
func (a *testAuthority) pushAll() {
	a.mu.Lock()
	rt := a.rt
	var targets []*replNode
	for _, id := range a.order {
		if a.nodes[id].alive() {
			targets = append(targets, a.nodes[id])
		}
	}
	a.mu.Unlock()
	for _, n := range targets {
		r := rt
		r.Self = n.id
		b, _ := json.Marshal(r)
		req, _ := http.NewRequest(http.MethodPut, n.addr()+ReplicationPath, bytes.NewReader(b))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// change edits the routing (version+1) and pushes it.
func (a *testAuthority) change(f func(rt *Routing)) {
	a.mu.Lock()
	f(&a.rt)
	a.rt.Version++
	a.refreshCopiesLocked()
	a.mu.Unlock()
	a.pushAll()
}

func (a *testAuthority) primaryURL() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nodes[a.rt.Primary].addr()
}

func (a *testAuthority) node(id string) *replNode {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nodes[id]
}

// pollEvents applies the primary's events as the constructor does.
func (a *testAuthority) pollEvents(ctx context.Context) {
	defer a.wg.Done()
	next := int64(0)
	lastPrimary := ""
	for ctx.Err() == nil {
		a.mu.Lock()
		p := a.nodes[a.rt.Primary]
		term, primary, url := a.rt.Term, a.rt.Primary, p.addr()
		alive := p.alive()
		a.mu.Unlock()
		if primary != lastPrimary {
			next, lastPrimary = 0, primary
		}
		if !alive {
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, fmt.Sprintf("%s%s?after=%d&wait=1s", url, ReplicationEventsPath, next), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		var ans struct {
			Events []Event `json:"events"`
			Next   int64   `json:"next"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&ans)
		resp.Body.Close()
		cancel()
		next = ans.Next
		for _, e := range ans.Events {
			if e.Term != term {
				continue
			}
			a.change(func(rt *Routing) {
				switch e.Kind {
				case "failed":
					if e.Copy != rt.Primary {
						rt.InSync = slices.DeleteFunc(rt.InSync, func(id string) bool { return id == e.Copy })
					}
				case "in_sync":
					if !slices.Contains(rt.InSync, e.Copy) {
						rt.InSync = append(rt.InSync, e.Copy)
					}
				}
			})
		}
	}
}

// promote makes an in-sync copy primary (term+1).
func (a *testAuthority) promote(id string) {
	a.change(func(rt *Routing) {
		if !slices.Contains(rt.InSync, id) {
			a.t.Fatalf("promote %s: not in sync %v", id, rt.InSync)
		}
		rt.Term++
		rt.Primary = id
	})
}

func (a *testAuthority) inSync() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.rt.InSync)
}

// waitInSync waits until the routing's in_sync is exactly want.
func (a *testAuthority) waitInSync(want ...string) {
	a.t.Helper()
	slices.Sort(want)
	testenv.EventuallyDetail(a.t, 20*time.Second, fmt.Sprintf("in_sync %v", want), func() (bool, string) {
		got := a.inSync()
		slices.Sort(got)
		return slices.Equal(got, want), fmt.Sprint(got)
	})
}

func httpDo(method, url, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// localDoc reads a document straight from a node's shard.
func localDoc(n *replNode, index, id string) (string, int64, bool) {
	sh := n.srv.index(index)
	if sh == nil {
		return "", 0, false
	}
	src, meta, ok, _ := sh.Get(id)
	return string(src), meta.SeqNo, ok
}

func TestReplicationWritesReachEveryInSyncCopy(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	a, b, c := g.node("a"), g.node("b"), g.node("c")
	do(t, a.url, call{"PUT", "/logs", `{"mappings":{"properties":{"n":{"type":"long"}}}}`, 200, nil})
	for _, n := range []*replNode{b, c} {
		if n.srv.index("logs") == nil {
			t.Fatalf("%s lacks the index after its creation was acknowledged", n.id)
		}
	}
	do(t, a.url, call{"PUT", "/logs/_doc/1", `{"n":1}`, 201, []string{`"total":3`, `"successful":3`}})
	// Written through a replica: forwarded to the primary.
	do(t, b.url, call{"PUT", "/logs/_doc/2?refresh=true", `{"n":2}`, 201, []string{`"successful":3`}})
	do(t, c.url, call{"POST", "/_bulk", `{"index":{"_index":"logs","_id":"3"}}
{"n":3}
{"delete":{"_index":"logs","_id":"1"}}
{"index":{"_index":"other","_id":"x"}}
{"n":4}
`, 200, []string{`"errors":false`}})
	do(t, a.url, call{"POST", "/logs/_update/2", `{"doc":{"m":"x"}}`, 200, nil})
	for _, n := range []*replNode{a, b, c} {
		if _, _, ok := localDoc(n, "logs", "1"); ok {
			t.Fatalf("%s still holds a deleted document", n.id)
		}
		for _, id := range []string{"2", "3"} {
			src, seq, ok := localDoc(n, "logs", id)
			psrc, pseq, _ := localDoc(a, "logs", id)
			if !ok || src != psrc || seq != pseq {
				t.Fatalf("%s holds %s as %q seq %d, primary %q seq %d", n.id, id, src, seq, psrc, pseq)
			}
		}
		if _, _, ok := localDoc(n, "other", "x"); !ok {
			t.Fatalf("%s lacks the auto-created index's document", n.id)
		}
	}
	// Reads on an in-sync replica are local and see the mapping.
	do(t, b.url, call{"GET", "/logs/_doc/2", "", 200, []string{`"m":"x"`}})
	do(t, c.url, call{"GET", "/logs/_mapping", "", 200, []string{`"n":{"type":"long"}`}})
	do(t, b.url, call{"GET", "/_cluster/health", "", 200, []string{`"status":"green"`, `"number_of_nodes":3`}})
	do(t, a.url, call{"GET", ReplicationPath, "", 200, []string{`"role":"primary"`, `"b":{"checkpoint"`}})
	do(t, b.url, call{"GET", ReplicationPath, "", 200, []string{`"role":"replica"`}})
	do(t, a.url, call{"GET", "/_cat/shards/logs?h=prirep,state,node&s=node", "", 200, []string{"p STARTED a", "r STARTED b", "r STARTED c"}})
	do(t, b.url, call{"GET", "/_cat/nodes?h=name&s=name", "", 200, []string{"a\nb\nc"}})
	// An older routing is ignored.
	do(t, a.url, call{"PUT", ReplicationPath, `{"term":1,"version":0,"self":"a","primary":"b","copies":[{"id":"b","url":"http://x"}],"in_sync":["b"]}`, 200, []string{`"applied":false`, `"role":"primary"`}})
	// Stale primary: a copy with a newer term refuses ops.
	do(t, b.url, call{"POST", ReplicationOpsPath, `{"term":0,"index":"logs","ops":[]}`, 400, nil})
}

func TestReplicationFailedCopyIsDroppedThenRecovered(t *testing.T) {
	g := newGroup(t, "a", "b", "c")
	a, c := g.node("a"), g.node("c")
	do(t, a.url, call{"PUT", "/logs", `{"settings":{"number_of_replicas":2}}`, 200, nil})
	do(t, a.url, call{"PUT", "/logs/_doc/0", `{"n":0}`, 201, nil})
	c.kill()
	// The write is held until the authority drops c from in_sync.
	for i := 1; i <= 20; i++ {
		do(t, a.url, call{"PUT", fmt.Sprintf("/logs/_doc/%d", i), fmt.Sprintf(`{"n":%d}`, i), 201, nil})
	}
	g.waitInSync("a", "b")
	do(t, a.url, call{"DELETE", "/logs/_doc/0", "", 200, nil})
	do(t, a.url, call{"GET", "/_cluster/health", "", 200, []string{`"status":"yellow"`}})
	// c comes back: operation-based recovery, then in sync again.
	c.start(t)
	g.change(func(*Routing) {})
	g.waitInSync("a", "b", "c")
	for i := 1; i <= 20; i++ {
		if _, _, ok := localDoc(c, "logs", fmt.Sprint(i)); !ok {
			t.Fatalf("recovered copy lacks document %d", i)
		}
	}
	if _, _, ok := localDoc(c, "logs", "0"); ok {
		t.Fatal("recovered copy still holds a document deleted while it was down")
	}
	do(t, a.url, call{"GET", "/_cluster/health", "", 200, []string{`"status":"green"`}})
}

func TestReplicationFullCopyWhenTheLogIsTrimmed(t *testing.T) {
	g := newGroup(t, "a", "b")
	a, b := g.node("a"), g.node("b")
	do(t, a.url, call{"PUT", "/logs/_doc/0", `{"n":0}`, 201, nil})
	b.kill()
	for i := 1; i <= 5; i++ {
		do(t, a.url, call{"PUT", fmt.Sprintf("/logs/_doc/%d?refresh=true", i), `{"n":1}`, 201, nil})
	}
	do(t, a.url, call{"DELETE", "/logs/_doc/0?refresh=true", "", 200, nil})
	g.waitInSync("a")
	// Restarting the primary trims its op log up to what the search
	// index holds: b's range is gone.
	a.kill()
	a.start(t)
	g.change(func(*Routing) {})
	if st := a.srv.index("logs").Checkpoint().OpLogStart; st == 0 {
		t.Fatal("op log was not trimmed on reopen")
	}
	b.start(t)
	g.change(func(*Routing) {})
	g.waitInSync("a", "b")
	for i := 1; i <= 5; i++ {
		if _, _, ok := localDoc(b, "logs", fmt.Sprint(i)); !ok {
			t.Fatalf("fully copied replica lacks document %d", i)
		}
	}
	if _, _, ok := localDoc(b, "logs", "0"); ok {
		t.Fatal("fully copied replica holds a deleted document")
	}
}

func TestReplicationDeposedPrimaryCannotAcknowledge(t *testing.T) {
	g := newGroup(t, "a", "b")
	a, b := g.node("a"), g.node("b")
	do(t, a.url, call{"PUT", "/logs/_doc/1", `{"n":1}`, 201, nil})
	// b is promoted in term 2; a is not told (partitioned from the
	// authority, not from b).
	g.mu.Lock()
	g.rt.Term, g.rt.Primary, g.rt.Version = 2, "b", g.rt.Version+1
	rt := g.rt
	g.mu.Unlock()
	rt.Self = "b"
	body, _ := json.Marshal(rt)
	do(t, b.url, call{"PUT", ReplicationPath, string(body), 200, []string{`"role":"primary"`}})
	code, ans, err := httpDo("PUT", a.url+"/logs/_doc/2", `{"n":2}`)
	if err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("write on the deposed primary = %d %s %v, want 503", code, ans, err)
	}
	// b writes with term 2.
	do(t, b.url, call{"PUT", "/logs/_doc/3", `{"n":3}`, 201, []string{`"_primary_term":2`}})
}

// TestReplicationRestoreReachesCopies: a restore on the primary (asked
// through a replica) is fully copied to the other copies before it is
// acknowledged; the repository registration follows the metadata.
func TestReplicationRestoreReachesCopies(t *testing.T) {
	g := newGroup(t, "a", "b")
	a, b := g.node("a"), g.node("b")
	do(t, b.url, call{"PUT", "/_snapshot/r1", `{"type":"fs","settings":{"location":"/snapshots/r1"}}`, 200, nil})
	if _, ok, _ := b.srv.db.repo("r1"); !ok {
		t.Fatal("repository registered through a replica did not reach it back from the primary")
	}
	do(t, a.url, call{"PUT", "/books/_doc/1", `{"t":"one"}`, 201, nil})
	do(t, a.url, call{"PUT", "/books/_doc/2", `{"t":"two"}`, 201, nil})
	do(t, a.url, call{"PUT", "/_snapshot/r1/s1?wait_for_completion=true", "", 200, []string{`"SUCCESS"`}})
	do(t, a.url, call{"DELETE", "/books", "", 200, nil})
	if b.srv.index("books") != nil {
		t.Fatal("deleted index still on the replica")
	}
	do(t, b.url, call{"POST", "/_snapshot/r1/s1/_restore", "", 200, []string{`"books"`}})
	for _, id := range []string{"1", "2"} {
		if _, _, ok := localDoc(b, "books", id); !ok {
			t.Fatalf("restored document %s missing on the replica", id)
		}
	}
	do(t, a.url, call{"PUT", "/books/_doc/3", `{"t":"three"}`, 201, []string{`"successful":2`}})
}

// TestReplicationHealthRedWithoutPrimary: a replica whose primary is
// gone says red, and _cat/shards shows the primary unassigned; a write
// through it is refused, not applied locally.
func TestReplicationHealthRedWithoutPrimary(t *testing.T) {
	g := newGroup(t, "a", "b")
	a, b := g.node("a"), g.node("b")
	do(t, a.url, call{"PUT", "/logs/_doc/1", `{"n":1}`, 201, nil})
	do(t, b.url, call{"GET", "/_cluster/health", "", 200, []string{`"status":"green"`}})
	a.kill()
	// (the replica reuses its probe of the primary for a second)
	testenv.EventuallyDetail(t, 5*time.Second, "health red without a primary", func() (bool, string) {
		_, ans, err := httpDo("GET", b.url+"/_cluster/health", "")
		return err == nil && bytes.Contains(ans, []byte(`"status":"red"`)), fmt.Sprintf("%s %v", ans, err)
	})
	do(t, b.url, call{"GET", "/_cat/shards?h=prirep,state,node", "", 200, []string{"p UNASSIGNED"}})
	code, _, _ := httpDo("PUT", b.url+"/logs/_doc/2", `{"n":2}`)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("write through a replica without its primary = %d, want 503", code)
	}
	if _, _, ok := localDoc(b, "logs", "2"); ok {
		t.Fatal("the replica applied a write itself")
	}
	// Promoted, it is yellow while the lost copy is out of in_sync.
	g.promote("b")
	g.change(func(rt *Routing) { rt.InSync = []string{"b"} })
	do(t, b.url, call{"GET", "/_cluster/health", "", 200, []string{`"status":"yellow"`, `"initializing_shards":1`}})
	do(t, b.url, call{"PUT", "/logs/_doc/2", `{"n":2}`, 201, []string{`"_primary_term":2`}})
}

// testLogger is a test node's logger: discarded unless PADDOCK_TEST_LOG
// is set.
func testLogger(id string) *slog.Logger {
	if os.Getenv("PADDOCK_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", id)
}
