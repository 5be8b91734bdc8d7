package allocator_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"paddock/agents/allocator"
	"paddock/engine"
	"paddock/engine/testenv"
)

// BenchmarkAssignToHealthy measures the time from an instance written to
// the allocator's path to its node container healthy (status znode
// running+healthy) and serving GET / on the reported address, on the
// real Docker engine. Run with:
//
//	go test -run '^$' -bench AssignToHealthy -benchtime 1x ./agents/allocator
//
// "one-at-a-time" assigns 10 instances one after the other; "batch-12"
// writes 12 in one Multi. p50/p95 are reported per sub-benchmark.
func BenchmarkAssignToHealthy(b *testing.B) {
	cli := needDocker(b)
	needImages(b, cli)
	for _, bc := range []struct {
		name  string
		batch int
		total int
	}{{"one-at-a-time", 1, 10}, {"batch-12", 12, 12}} {
		b.Run(bc.name, func(b *testing.B) {
			p := env.Fresh(b, "zone-1")
			label := testLabel(b)
			testenv.CleanupDocker(b, cli, allocator.LabelTest, label)
			cons := p.Connect(b, engine.RoleConstructor)
			id := "b-" + engine.RandomToken(4)
			cfg := dockerAllocator(b, id, label, b.TempDir())
			cfg.CapacityMB = 8192
			cfg.ProbeInterval = 250 * time.Millisecond
			start(b, p, env.Servers(), cfg)
			var all []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				dep := engine.NewID()
				var ids []string
				for done := 0; done < bc.total; done += bc.batch {
					ops := make([]engine.Op, 0, bc.batch)
					var batch []string
					for j := 0; j < bc.batch; j++ {
						iid := fmt.Sprintf("i%d-%02d", i, done+j)
						batch = append(batch, iid)
						ops = append(ops, engine.OpCreate(engine.InstancePath(id, iid), engine.Instance{ID: iid, DeploymentID: dep,
							Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 128, CreatedAt: time.Now().UTC()}))
					}
					t0 := time.Now()
					if err := cons.Multi(context.Background(), ops...); err != nil {
						b.Fatal(err)
					}
					all = append(all, waitServing(b, cons, id, batch, t0)...)
					ids = append(ids, batch...)
				}
				b.StopTimer()
				del := make([]engine.Op, 0, len(ids))
				for _, iid := range ids {
					del = append(del, engine.OpDelete(engine.InstancePath(id, iid), engine.AnyVersion))
				}
				if err := cons.Multi(context.Background(), del...); err != nil {
					b.Fatal(err)
				}
				for _, iid := range ids {
					waitFor(b, 60*time.Second, iid+" removed", func() (bool, string) {
						_, ok := containerOf(b, cli, id, iid)
						return !ok, "still there"
					})
				}
				b.StartTimer()
			}
			b.StopTimer()
			sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
			b.ReportMetric(float64(pct(all, 50).Milliseconds()), "p50_ms")
			b.ReportMetric(float64(pct(all, 95).Milliseconds()), "p95_ms")
			b.ReportMetric(float64(all[len(all)-1].Milliseconds()), "max_ms")
			b.ReportMetric(float64(len(all)), "instances")
		})
	}
}

func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(min(i, len(sorted))-1, 0)]
}

// waitServing polls each instance's status until running+healthy and its
// node answers GET /, returning the time from t0 for each.
func waitServing(b *testing.B, s *engine.Store, alloc string, ids []string, t0 time.Time) []time.Duration {
	out := make([]time.Duration, len(ids))
	var wg sync.WaitGroup
	for i, iid := range ids {
		wg.Add(1)
		go func(i int, iid string) {
			defer wg.Done()
			out[i] = -1
			testenv.WaitEvery(2*time.Minute, 10*time.Millisecond, func() (bool, string) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				st, err := readStatus(ctx, s, alloc, iid)
				cancel()
				if err == nil && runningHealthy(st) {
					if code, _, err := httpDo("GET", "http://"+st.Address+"/", ""); err == nil && code == 200 {
						out[i] = time.Since(t0)
						return true, ""
					}
				}
				return false, ""
			})
		}(i, iid)
	}
	wg.Wait()
	for i, d := range out {
		if d < 0 {
			b.Fatalf("%s not serving within 2 minutes", ids[i])
		}
	}
	return out
}

// BenchmarkSimReconcile measures how long a sim allocator takes to report
// n assigned instances running (the constructor scale-test mode).
func BenchmarkSimReconcile(b *testing.B) {
	const n = 2000
	p := env.Fresh(b, "zone-1")
	cons := p.Connect(b, engine.RoleConstructor)
	id := "sim-" + engine.RandomToken(3)
	cfg := allocator.Config{ID: id, Zone: "zone-1", StateDir: b.TempDir(), Runtime: allocator.RuntimeSim, CapacityMB: 1 << 30}
	start(b, p, env.Servers(), cfg)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		for off := 0; off < n; off += 500 {
			ops := make([]engine.Op, 0, 500)
			for j := off; j < off+500; j++ {
				iid := fmt.Sprintf("s%d-%05d", i, j)
				ops = append(ops, engine.OpCreate(engine.InstancePath(id, iid), engine.Instance{ID: iid, DeploymentID: "d",
					Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: 64}))
			}
			if err := cons.Multi(context.Background(), ops...); err != nil {
				b.Fatal(err)
			}
		}
		waitFor(b, 5*time.Minute, "all sim statuses", func() (bool, string) {
			var alive engine.AllocatorAlive
			_, err := cons.GetJSON(context.Background(), engine.AllocatorAlivePath(id), &alive)
			return err == nil && alive.Healthy == n, fmt.Sprint(alive.Healthy)
		})
		b.ReportMetric(time.Since(t0).Seconds(), "s_for_2000")
		b.StopTimer()
		for off := 0; off < n; off += 500 {
			ops := make([]engine.Op, 0, 500)
			for j := off; j < off+500; j++ {
				ops = append(ops, engine.OpDelete(engine.InstancePath(id, fmt.Sprintf("s%d-%05d", i, j)), engine.AnyVersion))
			}
			if err := cons.Multi(context.Background(), ops...); err != nil {
				b.Fatal(err)
			}
		}
		waitFor(b, 5*time.Minute, "sim statuses removed", func() (bool, string) {
			kids, err := cons.Children(context.Background(), engine.StatusesPath(id))
			return err == nil && len(kids) == 0, fmt.Sprint(len(kids))
		})
		b.StartTimer()
	}
}
