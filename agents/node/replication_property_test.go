package node

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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
	failedReqs, kills, promotions, restarts := 0, 0, 0, 0
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
	for step := 0; step < steps; step++ {
		switch r := rng.IntN(10); {
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
			g.node(victim).kill()
			kills++
			g.mu.Lock()
			primary := g.rt.Primary
			g.mu.Unlock()
			if victim == primary {
				// Promote an alive in-sync copy, never a stale one.
				for _, id := range g.inSync() {
					if id != victim && g.node(id).alive() {
						promotions++
						g.change(func(rt *Routing) {
							rt.Term++
							rt.Primary = id
							rt.InSync = slices.DeleteFunc(rt.InSync, func(x string) bool { return x == victim })
						})
						break
					}
				}
			}
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
	t.Logf("seed %d: %d steps (%d kills, %d promotions, %d restarts), %d acknowledged documents, %d acknowledged deletes, %d failed requests",
		seed, steps, kills, promotions, restarts, len(present), len(deleted), failedReqs)
}

func sortedIDs(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
