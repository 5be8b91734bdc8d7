package placement

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"paddock/engine"
)

// The scale benchmark: 10,000 allocators in 3 zones, 100,000 instance
// placements of mixed sizes. Run with
//
//	go test ./engine/placement -run '^$' -bench BenchmarkPlace10k -benchtime 1x
//
// It reports placements per second and packing quality: allocators used
// against the lower bound (total memory / allocator capacity) and against
// a first-fit baseline.

const (
	benchAllocators = 10000
	benchCapacityMB = 64 * 1024
	benchInstances  = 100000
)

func benchFleet() []Allocator {
	allocs := make([]Allocator, benchAllocators)
	for i := range allocs {
		allocs[i] = Allocator{ID: fmt.Sprintf("alloc-%05d", i), Zone: fmt.Sprintf("zone-%d", i%3+1), CapacityMB: benchCapacityMB, Alive: true}
	}
	return allocs
}

// benchRequests makes requests totalling n instances: sizes 1-16 GB
// (mostly small, as fleets are), zone counts 1-3, a Kibana for some.
func benchRequests(n int, seed uint64) []Request {
	rng := rand.New(rand.NewPCG(seed, 1))
	sizes := []int{1024, 1024, 1024, 2048, 2048, 4096, 4096, 8192, 16384}
	var reqs []Request
	placed := 0
	for d := 0; placed < n; d++ {
		id := fmt.Sprintf("dep-%06d", d)
		z := 1 + rng.IntN(3)
		if z > n-placed {
			z = n - placed
		}
		reqs = append(reqs, Request{DeploymentID: id, Kind: engine.KindElasticsearch, SizeMB: sizes[rng.IntN(len(sizes))], Zones: z})
		placed += z
		if placed < n && rng.IntN(4) == 0 {
			reqs = append(reqs, Request{DeploymentID: id, Kind: engine.KindKibana, SizeMB: 1024, Zones: 1})
			placed++
		}
	}
	return reqs
}

type packing struct {
	instances, used, lowerBound, firstFit int
	elapsed                               time.Duration
}

func runScale(tb testing.TB, strategy string, nInst int) packing {
	return runScaleOn(tb, benchFleet(), strategy, nInst)
}

func runScaleOn(tb testing.TB, allocs []Allocator, strategy string, nInst int) packing {
	reqs := benchRequests(nInst, 1)
	st := NewState(allocs, 1)
	start := time.Now()
	res, err := st.Place(reqs, Options{Strategy: strategy, Seed: 1, NoExplain: true})
	el := time.Since(start)
	if err != nil {
		tb.Fatalf("place: %v", err)
	}
	total := 0
	for _, r := range reqs {
		total += r.SizeMB * r.Zones
	}
	used := 0
	for _, a := range st.Allocators() {
		if a.UsedMB > 0 {
			used++
		}
	}
	capTotal := 0
	for _, a := range allocs {
		capTotal += a.CapacityMB
	}
	meanCap := capTotal / len(allocs)
	return packing{instances: len(res.Placements), used: used,
		lowerBound: (total + meanCap - 1) / meanCap, firstFit: firstFit(allocs, reqs), elapsed: el}
}

// firstFit is the baseline: each instance goes to the first allocator (in
// id order) of a zone not yet used by the request with room for it.
func firstFit(allocs []Allocator, reqs []Request) int {
	used := make([]int, len(allocs))
	for _, r := range reqs {
		taken := map[string]bool{}
		for range r.Zones {
			for i, a := range allocs {
				if !taken[a.Zone] && a.CapacityMB-used[i] >= r.SizeMB {
					used[i] += r.SizeMB
					taken[a.Zone] = true
					break
				}
			}
		}
	}
	n := 0
	for _, u := range used {
		if u > 0 {
			n++
		}
	}
	return n
}

func BenchmarkPlace10k(b *testing.B) {
	for _, strategy := range []string{engine.StrategyFillAntiAffinity, engine.StrategyFill, engine.StrategyDistribute} {
		b.Run(strategy, func(b *testing.B) {
			var p packing
			for b.Loop() {
				p = runScale(b, strategy, benchInstances)
			}
			b.ReportMetric(float64(p.instances)/p.elapsed.Seconds(), "placements/s")
			b.ReportMetric(float64(p.used), "allocators-used")
			b.ReportMetric(float64(p.lowerBound), "lower-bound")
			b.ReportMetric(float64(p.firstFit), "first-fit")
			b.ReportMetric(100*float64(p.used-p.lowerBound)/float64(p.lowerBound), "%-over-bound")
		})
	}
}

// BenchmarkPlace10kMixedCapacity: the same load on a fleet of 32, 64 and
// 128 GB allocators. Scores then differ from free memory alone, so the
// placement takes the exact scan (every allocator scored per request)
// instead of the sorted index. The lower bound uses the mean capacity.
func BenchmarkPlace10kMixedCapacity(b *testing.B) {
	fleet := func() []Allocator {
		allocs := benchFleet()
		for i := range allocs {
			allocs[i].CapacityMB = []int{32, 64, 128}[(i/3)%3] * 1024
		}
		return allocs
	}
	var p packing
	for b.Loop() {
		p = runScaleOn(b, fleet(), engine.StrategyFillAntiAffinity, benchInstances)
	}
	b.ReportMetric(float64(p.instances)/p.elapsed.Seconds(), "placements/s")
	b.ReportMetric(float64(p.used), "allocators-used")
	b.ReportMetric(float64(p.firstFit), "first-fit")
}

// TestPackingQuality checks, at a tenth of the benchmark's scale, that
// the fill strategies pack within 3% of the lower bound and within 1% of
// first fit (anti-affinity spends a few allocators on spreading a
// deployment's kinds; no timing involved).
func TestPackingQuality(t *testing.T) {
	t.Parallel()
	for _, strategy := range []string{engine.StrategyFillAntiAffinity, engine.StrategyFill} {
		t.Run(strategy, func(t *testing.T) {
			p := runScale(t, strategy, benchInstances/10)
			if p.instances != benchInstances/10 {
				t.Fatalf("placed %d instances, want %d", p.instances, benchInstances/10)
			}
			if over := float64(p.used-p.lowerBound) / float64(p.lowerBound); over > 0.03 {
				t.Fatalf("%d allocators used, lower bound %d: %.1f%% over (want ≤ 3%%)", p.used, p.lowerBound, 100*over)
			}
			if float64(p.used) > 1.01*float64(p.firstFit) {
				t.Fatalf("%d allocators used, first fit uses %d (want within 1%%)", p.used, p.firstFit)
			}
		})
	}
}

// TestIndexMatchesScan: the indexed fast path (bulk, unexplained) and the
// explained scan decide exactly the same, for every strategy, on a fleet
// with dead and maintenance allocators and deployments placed in steps.
func TestIndexMatchesScan(t *testing.T) {
	t.Parallel()
	for _, fleet := range []struct {
		name string
		caps []int
	}{{"uniform", []int{16384}}, {"three capacities", []int{8192, 16384, 32768}}, {"too many capacities", nil}} {
		for _, strategy := range []string{engine.StrategyFillAntiAffinity, engine.StrategyFill, engine.StrategyDistribute, engine.StrategyDistributeAntiAffinity} {
			t.Run(fleet.name+"/"+strategy, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(3, 4))
				allocs := make([]Allocator, 300)
				for i := range allocs {
					c := 4096 + 512*i // every allocator its own capacity
					if fleet.caps != nil {
						c = fleet.caps[rng.IntN(len(fleet.caps))]
					}
					allocs[i] = Allocator{ID: fmt.Sprintf("a%03d", i), Zone: fmt.Sprintf("zone-%d", i%3+1), CapacityMB: c, Alive: rng.IntN(20) > 0, Maintenance: rng.IntN(20) == 0}
				}
				reqs := benchRequests(1500, 2)
				// Second waves of some deployments: anti-affinity with
				// instances already placed.
				for i := 0; i < len(reqs); i += 7 {
					r := reqs[i]
					r.Zones = 1
					reqs = append(reqs, r)
				}
				// Moves: excluded allocators and zones (the index skips
				// them as the scan rejects them).
				for i := 0; i < len(reqs); i += 5 {
					r := reqs[i]
					r.Zones = 1
					r.Exclude = []string{fmt.Sprintf("a%03d", rng.IntN(300)), fmt.Sprintf("a%03d", rng.IntN(300))}
					if i%2 == 0 {
						r.ExcludeZones = []string{fmt.Sprintf("zone-%d", rng.IntN(3)+1)}
					}
					reqs = append(reqs, r)
				}
				fast, slow := NewState(allocs, 11), NewState(allocs, 11)
				for i, r := range reqs {
					a, errA := fast.Place([]Request{r}, Options{Strategy: strategy, NoExplain: true})
					b, errB := slow.Place([]Request{r}, Options{Strategy: strategy})
					if (errA == nil) != (errB == nil) {
						t.Fatalf("request %d: indexed err %v, scan err %v", i, errA, errB)
					}
					if !reflect.DeepEqual(allocOf(a), allocOf(b)) {
						t.Fatalf("request %d %+v: indexed %v, scan %v", i, r, allocOf(a), allocOf(b))
					}
				}
				if indexed := fast.ixAsc != nil || fast.ixDesc != nil; indexed != (fleet.caps != nil) {
					t.Fatalf("index used: %v, want %v", indexed, fleet.caps != nil)
				}
			})
		}
	}
}
