package node

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"paddock/agents/node/shard"
	"paddock/engine/testenv"
)

// TestReplicationPropertyKillRestart: random kill/restart sequences of a
// 3-node group, with the test authority promoting only in-sync copies;
// after every sequence every acknowledged write is on every in-sync
// copy (and an acknowledged delete on none). Seeded: PADDOCK_REPL_SEED
// replays one seed.
func TestReplicationPropertyKillRestart(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if v := os.Getenv("PADDOCK_REPL_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("PADDOCK_REPL_SEED=%q: want a number", v)
		}
		seeds = []uint64{n}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { replicationProperty(t, seed, 30) })
	}
}

func replicationProperty(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 0))
	g := newGroup(t, "a", "b", "c")
	ids := []string{"a", "b", "c"}
	present := map[string]bool{} // acknowledged and not deleted since
	deleted := map[string]bool{} // acknowledged delete
	next := 0
	failedReqs, kills, promotions, restarts, unacked := 0, 0, 0, 0, 0
	client := &http.Client{Timeout: 20 * time.Second}
	aliveNodes := func() []string {
		var out []string
		for _, id := range ids {
			if g.node(id).alive() {
				out = append(out, id)
			}
		}
		return out
	}
	write := func(method, path, body string) bool {
		alive := aliveNodes()
		if len(alive) == 0 {
			return false
		}
		n := g.node(alive[rng.IntN(len(alive))])
		req, _ := http.NewRequest(method, n.addr()+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			failedReqs++
			return false
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			failedReqs++
			return false
		}
		return true
	}
	// killPrimary kills the primary and promotes an alive in-sync copy
	// (never a stale one), at random.
	killPrimary := func(victim string) {
		g.node(victim).kill()
		kills++
		var candidates []string
		for _, id := range g.inSync() {
			if id != victim && g.node(id).alive() {
				candidates = append(candidates, id)
			}
		}
		if len(candidates) == 0 {
			return
		}
		id := candidates[rng.IntN(len(candidates))]
		promotions++
		g.change(func(rt *Routing) {
			rt.Term++
			rt.Primary = id
			rt.InSync = slices.DeleteFunc(rt.InSync, func(x string) bool { return x == victim })
		})
	}
	for step := 0; step < steps; step++ {
		switch r := rng.IntN(12); {
		case r >= 10:
			// The primary dies in the middle of a write: it reached one
			// copy only and was never acknowledged (a new document, and
			// a new state of an acknowledged one).
			g.mu.Lock()
			primary, term := g.rt.Primary, g.rt.Term
			g.mu.Unlock()
			var on []string
			for _, id := range g.inSync() {
				if id != primary && g.node(id).alive() {
					on = append(on, id)
				}
			}
			if !g.node(primary).alive() || len(on) == 0 || len(present) == 0 {
				continue
			}
			var view struct {
				Indices map[string]struct {
					MaxSeqNo int64 `json:"max_seq_no"`
				} `json:"indices"`
			}
			if err := getJSON(g.node(primary).addr()+ReplicationPath, &view); err != nil {
				t.Fatalf("seed %d: view of the primary: %v", seed, err)
			}
			seq := view.Indices["prop"].MaxSeqNo
			keys := sortedIDs(present)
			old := keys[rng.IntN(len(keys))]
			copyID := on[rng.IntN(len(on))]
			body := fmt.Sprintf(`{"term":%d,"index":"prop","global_checkpoint":-1,"ops":[`+
				`{"seq_no":%d,"primary_term":%d,"op":"index","id":"u%d","version":1,"source":{"unacked":true}},`+
				`{"seq_no":%d,"primary_term":%d,"op":"index","id":"%s","version":99,"source":{"unacked":true}}]}`,
				term, seq+1, term, step, seq+2, term, old)
			resp, err := http.Post(g.node(copyID).addr()+ReplicationOpsPath, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatalf("seed %d: unacknowledged ops to %s: %v", seed, copyID, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("seed %d: unacknowledged ops to %s: %s", seed, copyID, resp.Status)
			}
			unacked++
			killPrimary(primary)
		case r < 6:
			for range 1 + rng.IntN(5) {
				id := fmt.Sprint("d", next)
				next++
				if write("PUT", "/prop/_doc/"+id, fmt.Sprintf(`{"n":%d}`, next)) {
					present[id] = true
				}
			}
			if len(present) > 0 && rng.IntN(3) == 0 {
				keys := sortedIDs(present)
				id := keys[rng.IntN(len(keys))]
				delete(present, id) // unknown until acknowledged
				if write("DELETE", "/prop/_doc/"+id, "") {
					deleted[id] = true
				}
			}
		case r < 8:
			alive := aliveNodes()
			if len(alive) <= 1 {
				continue
			}
			victim := alive[rng.IntN(len(alive))]
			g.mu.Lock()
			primary := g.rt.Primary
			g.mu.Unlock()
			if victim == primary {
				killPrimary(victim)
				continue
			}
			g.node(victim).kill()
			kills++
		default:
			for _, id := range ids {
				if !g.node(id).alive() {
					g.node(id).start(t)
					restarts++
					g.change(func(*Routing) {})
					break
				}
			}
		}
	}
	check := func(when string) {
		t.Helper()
		for _, id := range g.inSync() {
			n := g.node(id)
			if !n.alive() {
				continue
			}
			for doc := range present {
				if _, _, ok := localDoc(n, "prop", doc); !ok {
					t.Fatalf("seed %d, %s: acknowledged document %s missing on in-sync copy %s (in_sync %v)", seed, when, doc, id, g.inSync())
				}
			}
			for doc := range deleted {
				if _, _, ok := localDoc(n, "prop", doc); ok {
					t.Fatalf("seed %d, %s: acknowledged delete of %s not on in-sync copy %s", seed, when, doc, id)
				}
			}
		}
		// Every alive in-sync copy converges on the same documents (an
		// unacknowledged write a deposed primary left on one copy is
		// on all of them or on none).
		testenv.EventuallyDetail(t, 20*time.Second, fmt.Sprintf("seed %d, %s: the in-sync copies to hold the same documents", seed, when), func() (bool, string) {
			var first map[string]string
			firstID := ""
			for _, id := range g.inSync() {
				n := g.node(id)
				if !n.alive() {
					continue
				}
				docs := allDocs(n, "prop")
				if first == nil {
					first, firstID = docs, id
					continue
				}
				if d := docsDiff(first, docs); d != "" {
					return false, fmt.Sprintf("in-sync copies %s and %s differ: %s (in_sync %v)", firstID, id, d, g.inSync())
				}
			}
			return true, ""
		})
	}
	check("after the sequence")
	for _, id := range ids {
		if !g.node(id).alive() {
			g.node(id).start(t)
		}
	}
	g.change(func(*Routing) {})
	// A primary that was down when it lost its place comes back stale
	// and the group heals around the current one.
	g.waitInSync(ids...)
	check("after every copy recovered")
	t.Logf("seed %d: %d steps (%d kills, %d promotions, %d restarts, %d primaries lost mid-write), %d acknowledged documents, %d acknowledged deletes, %d failed requests",
		seed, steps, kills, promotions, restarts, unacked, len(present), len(deleted), failedReqs)
}

// allDocs is an index's documents on a node: id → version and source.
func allDocs(n *replNode, index string) map[string]string {
	out := map[string]string{}
	n.mu.Lock()
	srv := n.srv
	n.mu.Unlock()
	if srv == nil {
		return out
	}
	sh := srv.index(index)
	if sh == nil {
		return out
	}
	_ = sh.Scan(func(id string, src []byte, meta shard.Meta) bool {
		out[id] = fmt.Sprintf("v%d %s", meta.Version, src)
		return true
	})
	return out
}

// docsDiff names a difference between two copies' documents ("": none).
func docsDiff(a, b map[string]string) string {
	for _, id := range sortedKeys(a) {
		if bv, ok := b[id]; !ok {
			return fmt.Sprintf("%s only on the first", id)
		} else if bv != a[id] {
			return fmt.Sprintf("%s is %q and %q", id, a[id], bv)
		}
	}
	for _, id := range sortedKeys(b) {
		if _, ok := a[id]; !ok {
			return fmt.Sprintf("%s only on the second", id)
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func getJSON(url string, out any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func sortedIDs(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
