package api

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"paddock/engine/service/servicetest"
)

// Benchmarks of the API over real ZooKeeper (loopback, one server).
// Not part of the normal test run: go test -run XXX -bench . ./agents/api/
// Figures go to docs/benchmarks.md, section API.

func benchFixture(b *testing.B, deployments int) (*fixture, string) {
	f := newFixtureTB(b, "zone-1", "zone-2", "zone-3")
	for i, z := range []string{"zone-1", "zone-2", "zone-3"} {
		servicetest.AddAllocator(b, f.p, fmt.Sprintf("a%d", i+1), z, 1<<20)
	}
	var id string
	for i := 0; i < deployments; i++ {
		var cr struct {
			Deployment struct{ ID string } `json:"deployment"`
		}
		a := f.do(admin, "POST", "/deployments", createBody(fmt.Sprintf("d%d", i), 1024, 1))
		if a.status != 201 {
			b.Fatalf("create: %d %s", a.status, a.body)
		}
		a.decodeTB(b, &cr)
		id = cr.Deployment.ID
	}
	return f, id
}

func benchGet(b *testing.B, f *fixture, path string) {
	key := f.keys[admin]
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := &http.Client{}
		for pb.Next() {
			req, _ := http.NewRequest("GET", f.url+Prefix+path, nil)
			req.Header.Set("Authorization", "ApiKey "+key)
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkGetDeployment: authenticated GET /deployments/{id}.
func BenchmarkGetDeployment(b *testing.B) {
	f, id := benchFixture(b, 1)
	benchGet(b, f, "/deployments/"+id)
}

// BenchmarkListDeployments100: GET /deployments with 100 deployments.
func BenchmarkListDeployments100(b *testing.B) {
	f, _ := benchFixture(b, 100)
	benchGet(b, f, "/deployments")
}

// BenchmarkCreateValidateOnly: placement check over 3 allocators,
// nothing written.
func BenchmarkCreateValidateOnly(b *testing.B) {
	f, _ := benchFixture(b, 0)
	key := f.keys[admin]
	body := `{"name":"v","validate_only":true,"spec":{"elasticsearch":{"size_mb":1024,"zones":3}}}`
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, _ := http.NewRequest("POST", f.url+Prefix+"/deployments", strings.NewReader(body))
		req.Header.Set("Authorization", "ApiKey "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkCreate: a real create (deployment + plan Multi).
func BenchmarkCreate(b *testing.B) {
	f, _ := benchFixture(b, 0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := f.do(admin, "POST", "/deployments", createBody("c", 256, 1))
		if a.status != 201 {
			b.Fatalf("status %d %s", a.status, a.body)
		}
	}
}
