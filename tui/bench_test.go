package tui

import (
	"strings"
	"testing"

	"paddock/engine/headroom"
	"paddock/tui/data"
)

func largeApp(b *testing.B, screen int) *App {
	s := data.Build(data.LargeFixture(1000, 5000), nil)
	s.ZooKeeper = "127.0.0.1:2181"
	s.LastSync = data.FixtureTime
	app := newTestApp(&testing.T{}, data.NewStatic(s), nil, screen)
	app.Update(sizeMsg(160, 48))
	return app
}

// BenchmarkOverviewRender is one frame of the Overview with 1,000
// allocators and 5,000 deployments (budget: 16 ms a frame).
func BenchmarkOverviewRender(b *testing.B) {
	for _, sz := range [][2]int{{80, 24}, {160, 48}} {
		b.Run(itoa(sz[0])+"x"+itoa(sz[1]), func(b *testing.B) {
			app := largeApp(b, 0)
			app.Update(sizeMsg(sz[0], sz[1]))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = app.View()
			}
		})
	}
}

// BenchmarkDeploymentsRender is one frame of the 5,000-row deployment
// table (only visible rows are rendered).
func BenchmarkDeploymentsRender(b *testing.B) {
	app := largeApp(b, 2)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = app.View()
	}
}

// BenchmarkSnapshotApply is the work after each ZooKeeper change with
// 1,000 allocators and 5,000 deployments: rebuild the snapshot from the
// tree, hand it to every screen, render the Overview. "memo" decodes
// only changed znodes (production: one deployment changes per step);
// "cold" decodes every znode (the first load, or a resync).
func BenchmarkSnapshotApply(b *testing.B) {
	for _, memo := range []bool{true, false} {
		name := "cold"
		if memo {
			name = "memo"
		}
		b.Run(name, func(b *testing.B) {
			tree := data.LargeFixture(1000, 5000)
			app := largeApp(b, 0)
			src := app.src.(*data.Static)
			var dec *data.Decoder
			if memo {
				dec = data.NewDecoder()
				data.Build(tree, dec)
			}
			dep := data.Build(tree, nil).Deployments[42].Deployment
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				dep.Status = []string{"running", "reconfiguring"}[i%2]
				tree.Put("/paddock/deployments/"+dep.ID, dep)
				src.Set(data.Build(tree, dec))
				app.Update(snapshotMsg{})
				_ = app.View()
			}
		})
	}
}

// largeHeadroom is a report over the large fixture: three zones, one
// that cannot be lost (500 deployments short), and 1,000 allocators.
func largeHeadroom(s data.Snapshot) headroom.Report {
	rep := headroom.Report{ComputedAt: data.FixtureTime}
	for i, z := range []string{"zone-1", "zone-2", "zone-3"} {
		hz := headroom.Zone{Zone: z, Survivable: i != 2, Allocators: 333, Instances: 3333, NeededMB: 3333 * 1024, FreeElsewhereMB: 4 << 20}
		if i == 2 {
			hz.ShortfallMB = 512 * 1024
			for _, d := range s.Deployments[:500] {
				hz.Unplaceable = append(hz.Unplaceable, d.ID)
			}
		}
		rep.Zones = append(rep.Zones, hz)
	}
	for _, a := range s.Allocators {
		rep.Allocators = append(rep.Allocators, headroom.Allocator{ID: a.ID, Zone: a.Zone, Vacatable: true, Instances: len(a.Instances)})
	}
	return rep
}

// BenchmarkOverviewHeadroomRender is one frame of the Overview with the
// headroom panel, 1,000 allocators and 5,000 deployments (goal: 16 ms a
// frame). The report is the one the service computed (the dry-run is
// benchmarked in engine/headroom); the frame renders it, naming the
// deployments a zone's loss could not re-place.
func BenchmarkOverviewHeadroomRender(b *testing.B) {
	for _, sz := range [][2]int{{80, 24}, {160, 48}} {
		b.Run(itoa(sz[0])+"x"+itoa(sz[1]), func(b *testing.B) {
			s := data.Build(data.LargeFixture(1000, 5000), nil)
			s.ZooKeeper = "127.0.0.1:2181"
			s.LastSync = data.FixtureTime
			rep := largeHeadroom(s)
			app := headroomApp(&testing.T{}, data.NewStatic(s), &fakeReports{rep: rep}, 0)
			app.Update(sizeMsg(sz[0], sz[1]))
			app.Update(headroomMsg{rep: rep})
			if v := app.View(); !strings.Contains(v, "NOT absorbed") {
				b.Fatalf("no headroom panel:\n%s", v)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = app.View()
			}
		})
	}
}
