package placement

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"paddock/engine"
)

// TestStateAssignReleaseMatchesRebuild: a State kept up to date with
// Assign and Release (and its own placements) decides exactly as a
// State built afresh from the same allocators, for every strategy,
// over a seeded random sequence of placements and removals.
func TestStateAssignReleaseMatchesRebuild(t *testing.T) {
	for _, strategy := range []string{engine.StrategyFillAntiAffinity, engine.StrategyFill, engine.StrategyDistribute, engine.StrategyDistributeAntiAffinity} {
		t.Run(strategy, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 11))
			var base []Allocator
			for i := range 30 {
				base = append(base, Allocator{ID: fmt.Sprintf("a%02d", i), Zone: fmt.Sprintf("zone-%d", i%3+1), CapacityMB: []int{4096, 8192}[i%2], Alive: true})
			}
			type inst struct {
				alloc, dep, kind string
				mb               int
			}
			var live []inst
			kept := NewState(base, 42)
			opts := Options{Strategy: strategy, Seed: 42, NoExplain: true}
			for step := range 400 {
				// The reference: a fresh state of the same allocators.
				ref := append([]Allocator(nil), base...)
				for i := range ref {
					ref[i].Instances = nil
				}
				byID := map[string]int{}
				for i, a := range ref {
					byID[a.ID] = i
				}
				for _, in := range live {
					a := &ref[byID[in.alloc]]
					a.UsedMB += in.mb
					a.Instances = append(a.Instances, Assigned{DeploymentID: in.dep, Kind: in.kind, SizeMB: in.mb})
				}
				fresh := NewState(ref, 42)
				if rng.IntN(3) == 0 && len(live) > 0 {
					j := rng.IntN(len(live))
					in := live[j]
					if !kept.Release(in.alloc, in.dep, in.kind, in.mb) {
						t.Fatalf("step %d: release of %+v refused", step, in)
					}
					live = append(live[:j], live[j+1:]...)
					continue
				}
				dep := fmt.Sprintf("d%d", rng.IntN(60))
				req := []Request{{DeploymentID: dep, Kind: engine.KindElasticsearch, SizeMB: []int{512, 1024, 2048}[rng.IntN(3)], Zones: 1 + rng.IntN(3), Replaces: true}}
				want, werr := fresh.Place(req, opts)
				got, gerr := kept.Place(req, opts)
				if (werr == nil) != (gerr == nil) {
					t.Fatalf("step %d: kept state says %v, fresh state %v", step, gerr, werr)
				}
				if !reflect.DeepEqual(allocOf(got), allocOf(want)) {
					t.Fatalf("step %d: kept state placed on %v, fresh state on %v", step, allocOf(got), allocOf(want))
				}
				for _, p := range got.Placements {
					live = append(live, inst{p.Allocator, dep, p.Kind, p.SizeMB})
				}
				// Now and then a placement is not written after all.
				if gerr == nil && rng.IntN(5) == 0 {
					for _, p := range got.Placements {
						kept.Release(p.Allocator, dep, p.Kind, p.SizeMB)
						live = live[:len(live)-1]
					}
				}
			}
			for _, a := range base {
				used := 0
				for _, in := range live {
					if in.alloc == a.ID {
						used += in.mb
					}
				}
				if got := a.CapacityMB - kept.FreeMB(a.ID); got != used {
					t.Fatalf("%s: state counts %d MB used, the instances %d MB", a.ID, got, used)
				}
			}
		})
	}
}

func TestStateAssignUnknownAllocator(t *testing.T) {
	s := NewState(threeZones(), 1)
	if s.Assign("nope", "d", engine.KindElasticsearch, 1) || s.Release("nope", "d", engine.KindElasticsearch, 1) {
		t.Fatal("an unknown allocator was accepted")
	}
	if s.Release("a1", "d", engine.KindElasticsearch, 1) {
		t.Fatal("released an instance that was never assigned")
	}
	if !s.Assign("a1", "d", engine.KindElasticsearch, 1024) || s.FreeMB("a1") != 2048 {
		t.Fatalf("after assign free = %d, want 2048", s.FreeMB("a1"))
	}
}

// TestMarkUndoMatchesRebuild: dry-runs on one kept State (Mark, lose
// allocators with SetAlive, place, Undo) decide exactly as a State built
// afresh with those allocators lost, and Undo leaves the state as it was.
func TestMarkUndoMatchesRebuild(t *testing.T) {
	for _, strategy := range []string{engine.StrategyFillAntiAffinity, engine.StrategyFill, engine.StrategyDistribute, engine.StrategyDistributeAntiAffinity} {
		t.Run(strategy, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 5))
			var base []Allocator
			for i := range 24 {
				base = append(base, Allocator{ID: fmt.Sprintf("a%02d", i), Zone: fmt.Sprintf("zone-%d", i%3+1), CapacityMB: []int{4096, 8192}[i%2], Alive: i != 7})
			}
			opts := Options{Strategy: strategy, Seed: 9, NoExplain: true, Brief: true}
			kept := NewState(base, 9)
			// Fill it up a little first, so that the dry-runs meet full
			// allocators and deployments already placed.
			for d := range 20 {
				kept.Place([]Request{{DeploymentID: fmt.Sprintf("d%d", d), Kind: engine.KindElasticsearch, SizeMB: 1024 * (1 + rng.IntN(3)), Zones: 1 + rng.IntN(3)}}, opts)
			}
			before := normalized(kept.Allocators())
			for round := range 60 {
				lost := map[string]bool{}
				for range rng.IntN(10) {
					lost[base[rng.IntN(len(base))].ID] = true
				}
				ref := kept.Allocators()
				for i := range ref {
					if lost[ref[i].ID] {
						ref[i].Alive = false
					}
				}
				fresh := NewState(ref, 9)
				mark := kept.Mark()
				for id := range lost {
					if !kept.SetAlive(id, false) {
						t.Fatalf("round %d: SetAlive(%s) refused", round, id)
					}
				}
				for step := range 8 {
					req := []Request{{DeploymentID: fmt.Sprintf("d%d", rng.IntN(30)), Kind: engine.KindElasticsearch, SizeMB: 1024 * (1 + rng.IntN(4)), Zones: 1 + rng.IntN(3)}}
					if rng.IntN(2) == 0 {
						req = append(req, Request{DeploymentID: req[0].DeploymentID, Kind: engine.KindKibana, SizeMB: 1024, Zones: 1, PreferZones: []string{"zone-2"}})
					}
					want, werr := fresh.Place(req, opts)
					got, gerr := kept.Place(req, opts)
					if (werr == nil) != (gerr == nil) {
						t.Fatalf("round %d step %d: kept state says %v, fresh state %v", round, step, gerr, werr)
					}
					if !reflect.DeepEqual(allocOf(got), allocOf(want)) {
						t.Fatalf("round %d step %d: kept state placed on %v, fresh state on %v", round, step, allocOf(got), allocOf(want))
					}
				}
				kept.Undo(mark)
				if after := normalized(kept.Allocators()); !reflect.DeepEqual(after, before) {
					t.Fatalf("round %d: Undo left the state changed:\n got %+v\nwant %+v", round, after, before)
				}
			}
			if !kept.SetAlive("a07", true) || kept.SetAlive("nope", false) {
				t.Fatal("SetAlive answered wrong for a known or an unknown allocator")
			}
		})
	}
}

// normalized copies allocators with an empty instance list as nil.
func normalized(as []Allocator) []Allocator {
	out := make([]Allocator, len(as))
	for i, a := range as {
		a.Instances = append([]Assigned(nil), a.Instances...)
		out[i] = a
	}
	return out
}
