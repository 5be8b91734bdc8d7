package engine_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"paddock/engine"
)

// Benchmarks against the real standalone server started by TestMain:
//
//	go test ./engine -run '^$' -bench . -benchtime 2000x
func BenchmarkStoreCreate(b *testing.B) {
	p := env.Fresh(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.Admin.Create(ctx, engine.DeploymentPath(fmt.Sprintf("b%08d", i)), engine.Deployment{ID: "x", Name: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStoreCASWrite(b *testing.B) {
	p := env.Fresh(b)
	ctx := context.Background()
	path := engine.DeploymentPath("cas")
	if err := p.Admin.Create(ctx, path, engine.Deployment{ID: "cas"}); err != nil {
		b.Fatal(err)
	}
	ver := engine.Version(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, err := p.Admin.Set(ctx, path, engine.Deployment{ID: "cas", Name: fmt.Sprint(i)}, ver)
		if err != nil {
			b.Fatal(err)
		}
		ver = v
	}
}

func BenchmarkStoreRead(b *testing.B) {
	p := env.Fresh(b)
	ctx := context.Background()
	path := engine.DeploymentPath("r")
	if err := p.Admin.Create(ctx, path, engine.Deployment{ID: "r", Name: "read"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var d engine.Deployment
		if _, err := p.Admin.GetJSON(ctx, path, &d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStoreReadParallel(b *testing.B) {
	p := env.Fresh(b)
	ctx := context.Background()
	path := engine.DeploymentPath("r")
	if err := p.Admin.Create(ctx, path, engine.Deployment{ID: "r", Name: "read"}); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var d engine.Deployment
			if _, err := p.Admin.GetJSON(ctx, path, &d); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCacheEventLatency measures write-acknowledged → event delivered
// by a TreeCache on another session; reports p50/p99.
func BenchmarkCacheEventLatency(b *testing.B) {
	p := env.Fresh(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := engine.RoutePath("lat")
	cons := p.Connect(b, engine.RoleConstructor)
	if err := cons.Create(ctx, path, engine.Route{DeploymentID: "lat"}); err != nil {
		b.Fatal(err)
	}
	c := engine.NewTreeCache(p.Connect(b, engine.RoleAdmin), engine.PathRoutes)
	ch := c.Listen()
	go c.Run(ctx)
	<-c.Ready()
	for len(ch) > 0 {
		<-ch
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := cons.Set(ctx, path, engine.Route{DeploymentID: "lat", Generation: int64(i)}, engine.AnyVersion); err != nil {
			b.Fatal(err)
		}
		for ev := range ch {
			if ev.Type == engine.NodeUpdated && ev.Path == path {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
