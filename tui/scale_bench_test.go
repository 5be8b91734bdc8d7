package tui

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"paddock/engine"
	"paddock/tui/data"
)

// BenchmarkChangeToScreenAtScale is BenchmarkChangeToScreen with a real
// ZooKeeper holding 1,000 allocators and 5,000 deployments (≈ 30,000
// znodes, written with world ACLs by the super user): each change costs
// a full snapshot rebuild before the frame. Seeding takes a while; it
// runs only with -bench, after BenchmarkChangeToScreen (file order:
// that one wipes /paddock, which the seeded tree would make slow).
func BenchmarkChangeToScreenAtScale(b *testing.B) {
	live, su := scalePlatform(b)
	ctx := context.Background()
	rec := engine.ProxyRecord{ID: "proxy-1", HTTPAddr: "127.0.0.1:9200", State: "s0"}
	app := newTestApp(&testing.T{}, live, nil, 4)
	app.c.Now = time.Now
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		scaleSeq++
		rec.State = fmt.Sprintf("s%d", scaleSeq)
		want := rec.State
		if _, err := su.Set(ctx, engine.ProxyPath("proxy-1"), rec, engine.AnyVersion); err != nil {
			b.Fatal(err)
		}
		for {
			<-live.Changed()
			app.Update(snapshotMsg{})
			if strings.Contains(app.View(), " "+want+" ") {
				break
			}
		}
	}
}

// The seeded platform is shared by the benchmark's runs (b.N grows):
// seeding 30,000 znodes once is enough. Its stores live until the
// package's ZooKeeper stops.
var (
	scaleOnce sync.Once
	scaleLive *data.Live
	scaleSu   *engine.Store
	scaleErr  error
	scaleSeq  int
)

func scalePlatform(b *testing.B) (*data.Live, *engine.Store) {
	env.Need(b)
	scaleOnce.Do(func() {
		p := env.Fresh(b, "zone-1", "zone-2", "zone-3")
		ctx := context.Background()
		connect := func(role engine.Role, c engine.Credential) *engine.Store {
			s, err := engine.Connect(ctx, engine.Options{Servers: env.Servers(), Role: role, Credential: c,
				ConnectTimeout: 20 * time.Second, Logger: slog.New(slog.DiscardHandler)})
			if err != nil && scaleErr == nil {
				scaleErr = err
			}
			return s
		}
		scaleSu = connect(engine.RoleAdmin, engine.Credential{User: "super", Password: env.SuperPassword})
		admin := connect(engine.RoleAdmin, p.Creds[engine.RoleAdmin])
		if scaleErr != nil {
			return
		}
		scaleErr = seed(scaleSu.Conn(), data.LargeFixture(1000, 5000))
		scaleLive = data.NewLive(admin, nil)
		go scaleLive.Run(context.Background())
	})
	if scaleErr != nil {
		b.Fatal(scaleErr)
	}
	waitSnap(b, scaleLive, "5,000 deployments loaded", func(s data.Snapshot) bool {
		return s.Loaded && len(s.Deployments) == 5000 && len(s.Allocators) == 1000
	})
	return scaleLive, scaleSu
}

// seed writes the fixture's znodes (world ACL) in batches of 200.
func seed(conn *zk.Conn, tree *data.Tree) error {
	existing := map[string]bool{engine.Root: true}
	for _, q := range []string{engine.PathConfig, engine.PathZones, engine.PathAllocators, engine.PathDeployments, engine.PathRoutes, engine.PathProxies, engine.PathLeader, engine.PathLeaderCons} {
		existing[q] = true
	}
	for _, z := range []string{"zone-1", "zone-2", "zone-3"} {
		existing[engine.ZonePath(z)] = true
	}
	var ops []any
	var err error
	flush := func() {
		if len(ops) > 0 && err == nil {
			_, err = conn.Multi(ops...)
		}
		ops = ops[:0]
	}
	tree.Walk(func(q string, d []byte) {
		if existing[q] {
			return
		}
		ops = append(ops, &zk.CreateRequest{Path: q, Data: d, Acl: zk.WorldACL(zk.PermAll)})
		if len(ops) == 200 {
			flush()
		}
	})
	flush()
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}
