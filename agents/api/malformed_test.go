package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"paddock/engine"
	"paddock/engine/service/servicetest"
)

// snapshot reads the whole /paddock tree (paths and data).
func snapshot(t *testing.T, f *fixture) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(p string)
	walk = func(p string) {
		if p == engine.PathSecurity {
			return // director-only subtree
		}
		b, _, err := f.p.Admin.Get(context.Background(), p)
		if err != nil {
			t.Fatalf("snapshot %s: %v", p, err)
		}
		out[p] = string(b)
		kids, err := f.p.Admin.Children(context.Background(), p)
		if err != nil {
			t.Fatalf("snapshot %s: %v", p, err)
		}
		for _, k := range kids {
			walk(p + "/" + k)
		}
	}
	walk(engine.Root)
	return out
}

// malformedBodies returns hand-written bad bodies plus deterministic
// mutations of valid ones.
func malformedBodies(valid []string, n int) []string {
	bodies := []string{
		`{`, `}`, `[`, `[]`, `"x"`, `1`, `true`, `{"name":}`, `{"name":"a",}`, `{"name":"a"}{"name":"b"}`,
		`{"name":"a"} trailing`, `{"name":null,"spec":{"elasticsearch":{"size_mb":"1g"}}}`, `{"name":["a"]}`,
		`{"spec":{"elasticsearch":{"zones":1.5}}}`, `{"spec":{"elasticsearch":{"size_mb":-1}}}`, `{"spec":[]}`,
		`{"spec":{"elasticsearch":{"allocator_filter":[1]}}}`, `{"unknown":1}`, `{"name":"a","spec":{"es":{}}}`,
		`{"version":"three"}`, `{"version":1e99}`, `{"targets":"a1"}`, `{"targets":[1,2]}`, `{"reason":5}`,
		`{"capacity_mb":"big"}`, `{"capacity_mb":1,"tags":{"a":1}}`, `{"placement_strategy":7}`,
		"\xff\xfe{}", "{\"name\":\"\x00\"", strings.Repeat("[", 10000), `{"name":"` + strings.Repeat("a", 70<<10) + `"}`,
		`{"spec":{"elasticsearch":{"size_mb":1024,"zones":1}},"spec":{"kibana":{"zones":"x"}}}`,
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for len(bodies) < n {
		v := []byte(valid[rng.IntN(len(valid))])
		switch rng.IntN(5) {
		case 0: // truncate
			v = v[:rng.IntN(len(v))]
		case 1: // flip a byte
			v[rng.IntN(len(v))] = byte(rng.IntN(256))
		case 2: // delete a byte
			i := rng.IntN(len(v))
			v = append(v[:i:i], v[i+1:]...)
		case 3: // insert a structural byte
			i := rng.IntN(len(v))
			v = append(v[:i:i], append([]byte{"{}[],:\"x"[rng.IntN(8)]}, v[i:]...)...)
		case 4: // add an unknown field
			v = append([]byte(fmt.Sprintf(`{"extra_%d":1,`, rng.IntN(100))), v[1:]...)
		}
		bodies = append(bodies, string(v))
	}
	return bodies
}

// TestMalformedBodies posts a few hundred malformed bodies to every
// endpoint that takes one: each answer is a 4xx JSON error, and the
// platform's state in ZooKeeper is unchanged.
func TestMalformedBodies(t *testing.T) {
	f := newFixture(t, "zone-1")
	// An allocator too small for anything, so a mutation that happens to
	// be a valid create is refused (422) rather than written.
	servicetest.AddAllocator(t, f.p, "tiny", "zone-1", 128)
	missing := engine.NewID()
	targets := []struct{ method, path string }{
		{"POST", "/deployments"},
		{"PUT", "/deployments/" + missing},
		{"POST", "/deployments/" + missing + "/_restart"},
		{"PUT", "/platform/infrastructure/allocators/ghost/settings"},
		{"POST", "/platform/infrastructure/allocators/ghost/clusters/_move"},
		{"POST", "/platform/infrastructure/allocators/ghost/maintenance-mode/_start"},
	}
	valid := []string{
		`{"name":"a","request_id":"r1","spec":{"version":"8.18.0","elasticsearch":{"size_mb":1024,"zones":1},"kibana":{"size_mb":512,"zones":1}}}`,
		`{"name":"b","version":0,"spec":{"elasticsearch":{"size_mb":2048,"zones":1}}}`,
		`{"capacity_mb":4096,"tags":{"type":"hot"}}`, `{"targets":["a1","a2"]}`, `{"reason":"disk swap"}`,
	}
	before := snapshot(t, f)
	bodies := malformedBodies(valid, 300)
	count := 0
	for i, body := range bodies {
		for _, tg := range targets {
			a := f.do(admin, tg.method, tg.path, body)
			count++
			if a.status < 400 || a.status >= 500 {
				t.Fatalf("body %d %q to %s %s: status %d: %s", i, body, tg.method, tg.path, a.status, a.body)
			}
			var eb ErrorBody
			if err := json.Unmarshal(a.body, &eb); err != nil || len(eb.Errors) == 0 || eb.Errors[0].Message == "" {
				t.Fatalf("body %d to %s: answer is not a JSON error: %s", i, tg.path, a.body)
			}
		}
	}
	after := snapshot(t, f)
	if !reflect.DeepEqual(before, after) {
		for p, v := range after {
			if before[p] != v {
				t.Errorf("changed: %s = %s", p, v)
			}
		}
		for p := range before {
			if _, ok := after[p]; !ok {
				t.Errorf("removed: %s", p)
			}
		}
		t.Fatal("malformed requests changed the platform's state")
	}
	t.Logf("%d malformed requests, all refused with 4xx JSON errors; state unchanged", count)
}
