package constructor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock/engine"
	"paddock/engine/testenv"
)

// BenchmarkResizePausedWindow resizes a 2-zone deployment of in-process
// nodes (real ZooKeeper, real allocators and constructor, as
// TestResizeByRecoveryUnderWrites) holding PADDOCK_BENCH_DOCS documents
// (default 5,000) PADDOCK_BENCH_RESIZES times (default 3, 1 GB ↔ 2 GB)
// while a writer goes on, by recovery (the default) and by snapshot
// (Config.MigrateBySnapshot), and reports per path, the worst and the
// median over the resizes:
//
//   - paused-s: route paused → route resumed, as a client polling the
//     route znode every 5 ms sees it (what a proxy holds requests for);
//   - gap-s: the longest time between two acknowledged writes while the
//     plan ran (route paused, or writes failing while the primary
//     changes hands);
//   - plan-s: plan submitted → in the history.
//
// Run with
//
//	go test ./agents/constructor -run '^$' -bench ResizePausedWindow -benchtime 1x
func BenchmarkResizePausedWindow(b *testing.B) {
	docs := envInt("PADDOCK_BENCH_DOCS", 5000)
	resizes := envInt("PADDOCK_BENCH_RESIZES", 3)
	for _, path := range []struct {
		name       string
		bySnapshot bool
	}{{"recovery", false}, {"snapshot", true}} {
		b.Run(path.name, func(b *testing.B) {
			for b.Loop() {
				load := loadAvg()
				ws := resizeWindows(b, path.bySnapshot, docs, resizes)
				paused, gap, plan := ws.paused, ws.gap, ws.plan
				slices.Sort(paused)
				slices.Sort(gap)
				slices.Sort(plan)
				mid := len(paused) / 2
				b.ReportMetric(paused[len(paused)-1].Seconds(), "paused-s-max")
				b.ReportMetric(paused[mid].Seconds(), "paused-s-p50")
				b.ReportMetric(gap[len(gap)-1].Seconds(), "gap-s-max")
				b.ReportMetric(gap[mid].Seconds(), "gap-s-p50")
				b.ReportMetric(plan[mid].Seconds(), "plan-s-p50")
				b.Logf("%s, %d documents, %d resizes: paused %v, longest write gap %v, plan %v; %d failed write attempts; load %s → %s",
					path.name, docs, resizes, paused, gap, plan, ws.fails, load, loadAvg())
			}
		})
	}
}

// windows are one path's figures, one per resize.
type windows struct {
	paused, gap, plan []time.Duration
	fails             int64
}

func resizeWindows(b *testing.B, bySnapshot bool, docs, resizes int) windows {
	h := newHarness(b, "zone-1", "zone-2")
	h.startAllocator("alloc-1", "zone-1", 4096, nil)
	h.startAllocator("alloc-2", "zone-2", 4096, nil)
	h.startConstructor("c1", NewHTTPNodes(), func(c *Config) { c.MigrateBySnapshot = bySnapshot })
	id, planID := h.createDeployment(spec("8.17.0", 1024, 2))
	if p := h.waitPlan(id, planID, 60*time.Second); p.Status != engine.PlanSuccess {
		b.Fatalf("create: %s", stepNames(p))
	}
	h.waitFor("the route live", 20*time.Second, func() bool { r, ok := h.route(id); return ok && r.State == engine.RouteLive })
	rt, _ := h.route(id)
	for from := 0; from < docs; from += 500 {
		var body strings.Builder
		for n := from; n < min(from+500, docs); n++ {
			fmt.Fprintf(&body, "{\"index\":{\"_index\":\"bulk\",\"_id\":\"d%d\"}}\n{\"n\":%d,\"text\":\"document %d of the resize benchmark\"}\n", n, n, n)
		}
		if err := nodeHTTP(b, "POST", rt.Backends[0].Address, "/_bulk", body.String(), nil); err != nil {
			b.Fatalf("load documents: %v", err)
		}
	}

	w := &writer{h: h, id: id}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.run(ctx) }()
	defer func() { cancel(); <-done }()

	var (
		mu     sync.Mutex
		paused time.Duration
		since  time.Time
	)
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			r, ok := h.route(id)
			now := time.Now()
			mu.Lock()
			switch {
			case ok && r.State != engine.RouteLive && since.IsZero():
				since = now
			case ok && r.State == engine.RouteLive && !since.IsZero():
				paused += now.Sub(since)
				since = time.Time{}
			}
			mu.Unlock()
			testenv.Pause(watchCtx, 5*time.Millisecond)
		}
	}()
	defer func() { stopWatch(); <-watched }()

	var out windows
	sizes := []int{2048, 1024}
	for i := range resizes {
		h.waitFor("writes before the resize", 20*time.Second, func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.acked) > 20 })
		mu.Lock()
		paused, since = 0, time.Time{}
		mu.Unlock()
		w.mu.Lock()
		first := len(w.at)
		w.mu.Unlock()
		start := time.Now()
		plan := h.submit(id, engine.Plan{Action: engine.ActionUpdate, Spec: spec("8.17.0", sizes[i%2], 2)})
		p := h.waitPlan(id, plan, 3*time.Minute)
		end := time.Now()
		if p.Status != engine.PlanSuccess {
			b.Fatalf("resize %d: %s", i, stepNames(p))
		}
		if byRecovery := strings.Contains(stepNames(p), StepRecover+"="); byRecovery == bySnapshot {
			b.Fatalf("resize %d took the other path: %s", i, stepNames(p))
		}
		h.waitFor("the route live after the resize", 20*time.Second, func() bool { r, ok := h.route(id); return ok && r.State == engine.RouteLive })
		mu.Lock()
		out.paused = append(out.paused, paused)
		mu.Unlock()
		// The longest gap between acknowledged writes from the submit to
		// the first write after the plan ended.
		h.waitFor("a write after the resize", 20*time.Second, func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return len(w.at) > 0 && w.at[len(w.at)-1].After(end)
		})
		w.mu.Lock()
		gap, gapEnd, prev := time.Duration(0), start, start
		for _, at := range w.at[first:] {
			if at.Sub(prev) > gap {
				gap, gapEnd = at.Sub(prev), at
			}
			prev = at
			if at.After(end) {
				break
			}
		}
		w.mu.Unlock()
		out.gap = append(out.gap, gap)
		// Where the gap fell among the plan's steps (seconds from the
		// submit), for the log.
		var steps []string
		for _, st := range p.Steps {
			if st.Ended != nil {
				steps = append(steps, fmt.Sprintf("%s %.2f-%.2f", st.Name, st.Started.Sub(start).Seconds(), st.Ended.Sub(start).Seconds()))
			}
		}
		b.Logf("resize %d: longest write gap %v ending at +%.2f s; steps: %s", i, gap.Round(time.Millisecond), gapEnd.Sub(start).Seconds(), strings.Join(steps, ", "))
		out.plan = append(out.plan, end.Sub(start))
	}
	out.fails = w.fails.Load()
	return out
}
