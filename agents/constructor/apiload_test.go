package constructor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"paddock/agents/api"
	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/testenv"
	"paddock/engine/zktest"
)

// BenchmarkAPIReadsDuringCreateBurst: PADDOCK_BENCH_CREATES (default
// 1,000) deployments created through the real API (8 clients, each
// create checked for placement and written as the service layer does)
// on 30 sim allocators with the constructor placing them, while 4
// readers loop over GET /deployments/{id} and GET
// /deployments/{id}/activity of the deployments created so far, and one
// asks for GET /deployments (the whole list) every 2 s. Reports each
// route's p50 and p99 latency during the burst and how long the burst
// took until every plan succeeded.
func BenchmarkAPIReadsDuringCreateBurst(b *testing.B) {
	creates := envInt("PADDOCK_BENCH_CREATES", 1000)
	zk, err := zktest.StartHeap(1, 1024)
	if err != nil {
		b.Fatalf("start ZooKeeper: %v", err)
	}
	defer zk.Stop()
	for b.Loop() {
		lat, elapsed := runAPIBurst(b, zk, creates)
		for _, name := range []string{"get", "activity", "list", "create"} {
			p := percentiles(lat[name])
			b.ReportMetric(p[0], name+"-p50-ms")
			b.ReportMetric(p[2], name+"-p99-ms")
			b.Logf("%s: %d requests, p50 %.1f ms, p90 %.1f ms, p99 %.1f ms", name, len(lat[name]), p[0], p[1], p[2])
		}
		b.ReportMetric(elapsed.Seconds(), "s-burst")
		b.Logf("%d creates placed and running in %.1f s; load %s", creates, elapsed.Seconds(), loadAvg())
	}
}

func runAPIBurst(b *testing.B, zk *zktest.Env, creates int) (map[string][]float64, time.Duration) {
	p := zk.Fresh(b, "zone-1", "zone-2", "zone-3")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	startSimAllocators(b, ctx, &wg, p, 30, 1<<20, 0)
	cs := p.Connect(b, engine.RoleConstructor)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = Run(ctx, Config{Store: cs, ID: "bench", Nodes: simNodes{}, Logger: quiet(), HealthyTimeout: 5 * time.Minute})
	}()
	apiStore := p.Connect(b, engine.RoleAdmin)
	cache := service.NewCache(apiStore)
	wg.Add(1)
	go func() { defer wg.Done(); _ = cache.Run(ctx) }()
	svc := service.New(apiStore, service.WithLogger(quiet()), service.WithCache(cache))
	_, key, err := svc.CreateAPIKey(ctx, "bench", service.RolePlatformAdmin)
	if err != nil {
		b.Fatal(err)
	}
	h, err := api.NewHandler(svc, quiet(), nil)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: time.Minute}
	call := func(method, path, body string) (int, []byte, time.Duration, error) {
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+api.Prefix+path, strings.NewReader(body))
		req.Header.Set("Authorization", "ApiKey "+key)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, 0, err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		return resp.StatusCode, out, time.Since(start), err
	}

	var lmu sync.Mutex
	lat := map[string][]float64{}
	record := func(name string, d time.Duration) {
		lmu.Lock()
		lat[name] = append(lat[name], float64(d)/1e6)
		lmu.Unlock()
	}
	var idsMu sync.Mutex
	var ids []string
	var burst atomic.Bool
	burst.Store(true)
	var rwg sync.WaitGroup
	var failures atomic.Int64
	reader := func(seed uint64, name string, pause time.Duration, path func(id string) string) {
		defer rwg.Done()
		rng := rand.New(rand.NewPCG(seed, 3))
		for burst.Load() && testenv.Pause(ctx, pause) {
			idsMu.Lock()
			n := len(ids)
			id := ""
			if n > 0 {
				id = ids[rng.IntN(n)]
			}
			idsMu.Unlock()
			if n == 0 {
				testenv.Pause(ctx, 10*time.Millisecond)
				continue
			}
			code, body, d, err := call("GET", path(id), "")
			if err != nil || code != 200 {
				failures.Add(1)
				b.Logf("GET %s: %d %v %.200s", path(id), code, err, body)
				continue
			}
			record(name, d)
		}
	}
	for i := range 2 {
		rwg.Add(2)
		go reader(uint64(i), "get", 0, func(id string) string { return "/deployments/" + id })
		go reader(uint64(10+i), "activity", 0, func(id string) string { return "/deployments/" + id + "/activity" })
	}
	rwg.Add(1)
	go reader(99, "list", 2*time.Second, func(string) string { return "/deployments" })

	start := time.Now()
	statsAt := apiStore.Stats()
	var cwg sync.WaitGroup
	for w := range 8 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for i := w; i < creates; i += 8 {
				body := fmt.Sprintf(`{"name":"burst-%d","spec":{"elasticsearch":{"size_mb":1024,"zones":3}}}`, i)
				code, out, d, err := call("POST", "/deployments", body)
				if err != nil || code/100 != 2 {
					failures.Add(1)
					b.Logf("create %d: %d %v %.300s", i, code, err, out)
					continue
				}
				record("create", d)
				var cr struct {
					ID string `json:"id"`
				}
				if json.Unmarshal(out, &cr) != nil || cr.ID == "" {
					var alt struct {
						Deployment struct {
							ID string `json:"id"`
						} `json:"deployment"`
					}
					_ = json.Unmarshal(out, &alt)
					cr.ID = alt.Deployment.ID
				}
				idsMu.Lock()
				ids = append(ids, cr.ID)
				idsMu.Unlock()
			}
		}()
	}
	cwg.Wait()
	// The burst ends when every plan succeeded.
	idsMu.Lock()
	made := len(ids)
	idsMu.Unlock()
	testenv.EventuallyDetail(b, 20*time.Minute, "every deployment running", func() (bool, string) {
		d, err := svc.ListDeployments(ctx, false)
		if err != nil {
			b.Fatal(err)
		}
		running := 0
		for _, v := range d {
			if v.Status == engine.DeploymentRunning && v.LastPlanStatus == engine.PlanSuccess {
				running++
			}
		}
		return running == made, fmt.Sprintf("%d of %d running", running, made)
	})
	if n := failures.Load(); n > 0 {
		b.Errorf("%d API calls failed during the burst (%d of %d creates made)", n, made, creates)
	}
	elapsed := time.Since(start)
	burst.Store(false)
	rwg.Wait()
	// The API session's ZooKeeper requests during the burst (its watch
	// cache's reads included) per API call, and how many reads of one
	// deployment the cache answered.
	st := apiStore.Stats().Sub(statsAt)
	calls := 0
	for _, v := range lat {
		calls += len(v)
	}
	served, missed := cache.ReadStats()
	b.Logf("API session during the burst: %d reads, %d writes, %d multis, %d watch events for %d API calls (%.2f reads per call); GET and activity from the cache: %d, from ZooKeeper: %d",
		st.Reads, st.Writes, st.Multis, st.WatchEvents, calls, float64(st.Reads)/float64(max(calls, 1)), served, missed)
	b.ReportMetric(float64(st.Reads)/float64(max(calls, 1)), "zk-reads/call")
	// A list after the burst, the machine as loaded as it is: the cost
	// of answering it apart from waiting for the burst.
	for range 3 {
		t0 := time.Now()
		d, err := svc.ListDeployments(ctx, false)
		t1 := time.Now()
		code, _, hd, herr := call("GET", "/deployments", "")
		b.Logf("list of %d after the burst: service %.1f ms (%v), HTTP %.1f ms (%d %v)", len(d), float64(t1.Sub(t0))/1e6, err, float64(hd)/1e6, code, herr)
	}
	for _, v := range lat {
		sort.Float64s(v)
	}
	return lat, elapsed
}
