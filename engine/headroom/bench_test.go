package headroom

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/placement"
)

// The headroom benchmark: 1,000 allocators of 64 GB in 3 zones and 5,000
// deployments (1-3 zones, 1-8 GB, a Kibana for a quarter), placed by the
// placement core. Run with
//
//	go test ./engine/headroom -run '^$' -bench BenchmarkHeadroom -benchtime 20x
//
// The goal is ≤ 50 ms per recomputation (every zone and every allocator).
func benchInput(tb testing.TB, nAlloc, nDep int) Input {
	allocs := make([]placement.Allocator, nAlloc)
	for i := range allocs {
		allocs[i] = placement.Allocator{ID: fmt.Sprintf("alloc-%04d", i), Zone: fmt.Sprintf("zone-%d", i%3+1), CapacityMB: 64 * 1024, Alive: true}
	}
	rng := rand.New(rand.NewPCG(7, 1))
	sizes := []int{1024, 1024, 2048, 2048, 4096, 8192}
	st := placement.NewState(allocs, 1)
	deps := make([]engine.Deployment, 0, nDep)
	for d := range nDep {
		id := fmt.Sprintf("%032x", d)
		z, mb := 1+rng.IntN(3), sizes[rng.IntN(len(sizes))]
		dep := engine.Deployment{ID: id, Status: engine.DeploymentRunning, Spec: engine.DeploymentSpec{Version: "8.15.0",
			Elasticsearch: engine.Topology{SizeMB: mb, Zones: z}}}
		reqs := []placement.Request{{DeploymentID: id, Kind: engine.KindElasticsearch, SizeMB: mb, Zones: z}}
		if rng.IntN(4) == 0 {
			dep.Spec.Kibana = engine.Topology{SizeMB: 1024, Zones: 1}
			reqs = append(reqs, placement.Request{DeploymentID: id, Kind: engine.KindKibana, SizeMB: 1024, Zones: 1})
		}
		res, err := st.Place(reqs, placement.Options{Seed: 1, NoExplain: true})
		if err != nil {
			tb.Fatalf("setting up: %v", err)
		}
		for n, p := range res.Placements {
			dep.Instances = append(dep.Instances, engine.PlacedInstance{ID: fmt.Sprintf("%s-%d", id, n), Kind: p.Kind,
				Allocator: p.Allocator, Zone: p.Zone, SizeMB: p.SizeMB, Version: "8.15.0"})
		}
		deps = append(deps, dep)
	}
	return Input{Allocators: st.Allocators(), Deployments: deps}
}

func BenchmarkHeadroom(b *testing.B) {
	benchHeadroom(b, Compute)
}

// BenchmarkHeadroomOneWorker is the same on one goroutine: its CPU per
// recomputation is the work itself, without the second state and the
// cores' contention.
func BenchmarkHeadroomOneWorker(b *testing.B) {
	benchHeadroom(b, func(in Input) Report { return compute(in, 1) })
}

func benchHeadroom(b *testing.B, compute func(Input) Report) {
	in := benchInput(b, 1000, 5000)
	b.ResetTimer()
	var rep Report
	cpu0 := cpuTime()
	for b.Loop() {
		rep = compute(in)
	}
	b.StopTimer()
	// CPU time per recomputation: on a shared machine wall time counts
	// the other processes' turns too.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	for _, z := range rep.Zones {
		b.Logf("%s: survivable %v, %d instances, %d unplaceable, %d lost HA, shortfall %d MB",
			z.Zone, z.Survivable, z.Instances, len(z.Unplaceable), len(z.LostHA), z.ShortfallMB)
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
