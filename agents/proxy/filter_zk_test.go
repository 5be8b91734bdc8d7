package proxy

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock/engine"
)

// TestFiltersFromZooKeeper: rule sets written to ZooKeeper are enforced
// (127.0.0.1 allowed, 127.0.0.2 refused), a change applies within a
// second, and the filter holds while ZooKeeper is stopped, also in a
// proxy started from the disk cache during the outage.
func TestFiltersFromZooKeeper(t *testing.T) {
	plat := env.Fresh(t, "zone-1")
	cons := plat.Connect(t, engine.RoleConstructor)
	b1 := newTestBackend(t, "b1")
	cache := filepath.Join(t.TempDir(), "routes.json")
	connect := proxyConnect(plat)
	host := testID + ".localhost"
	putRoute(t, cons, liveRoute(testID, 1, esBackend("i1", "zone-1", "a1", b1.addr())))
	p := startProxy(t, func(c *Config) { c.ID = "pf"; c.Connect = connect; c.CacheFile = cache })
	waitFor(t, 15*time.Second, "routing from ZooKeeper", routedTo(t, p, host, "b1"))

	status := func(p *Proxy, from string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+p.HTTPAddr()+"/", nil)
		req.Host = host
		resp, err := fromAddr(from).Do(req)
		if err != nil {
			t.Fatalf("from %s: %v", from, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if c, _ := status(p, "127.0.0.2"); c != 200 {
		t.Fatalf("no rule set attached: %d, want open", c)
	}

	// The admin writes a rule set attached to the deployment.
	admin := plat.Admin
	ctx := ctxT(t)
	if err := admin.EnsurePath(ctx, engine.PathTrafficFilters); err != nil {
		t.Fatal(err)
	}
	const setID = "00000000000000000000000000000f01"
	rs := ruleSet(setID, "local", []string{testID}, "127.0.0.1")
	if err := admin.Create(ctx, engine.TrafficFilterPath(setID), rs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the rule set enforced", func() bool { c, _ := status(p, "127.0.0.2"); return c == 403 })
	if c, body := status(p, "127.0.0.1"); c != 200 {
		t.Fatalf("allowed source: %d %s", c, body)
	}
	if c, body := status(p, "127.0.0.2"); !strings.Contains(body, "security_exception") || !strings.Contains(body, "local ("+setID+")") {
		t.Fatalf("refusal %d %s", c, body)
	}

	// A change applies within a second of the write.
	rs.Rules = []engine.TrafficFilterRule{{Source: "127.0.0.2/32"}}
	ver := p.Version()
	if _, err := admin.Set(ctx, engine.TrafficFilterPath(setID), rs, engine.AnyVersion); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	waitFor(t, time.Second, "the change within a second", func() bool { return p.Version() > ver })
	t.Logf("filter change applied %s after the write", time.Since(written).Round(time.Millisecond))
	if c, _ := status(p, "127.0.0.2"); c != 200 {
		t.Fatalf("after the change 127.0.0.2 got %d", c)
	}
	if c, _ := status(p, "127.0.0.1"); c != 403 {
		t.Fatalf("after the change 127.0.0.1 got %d", c)
	}
	waitFor(t, 10*time.Second, "the disk cache with the filter", func() bool {
		s, err := loadSnapshot(cache)
		return err == nil && len(s.Filters[setID].Rules) == 1 && s.Filters[setID].Rules[0].Source == "127.0.0.2/32"
	})

	// ZooKeeper stops: the filter holds, in this proxy and in one
	// started from the disk cache.
	stopZooKeeper(t)
	waitFor(t, 15*time.Second, "the proxy to notice the outage", func() bool { return p.cacheAge() > 0 })
	p2 := startProxy(t, func(c *Config) { c.ID = "pf2"; c.Connect = connect; c.CacheFile = cache })
	if p2.Source() != "disk" {
		t.Fatalf("proxy started during the outage: source %q", p2.Source())
	}
	for _, px := range []*Proxy{p, p2} {
		if c, _ := status(px, "127.0.0.1"); c != 403 {
			t.Errorf("ZooKeeper down: 127.0.0.1 got %d, want 403", c)
		}
		if c, _ := status(px, "127.0.0.2"); c != 200 {
			t.Errorf("ZooKeeper down: 127.0.0.2 got %d, want 200", c)
		}
	}
}
