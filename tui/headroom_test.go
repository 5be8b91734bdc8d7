package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"paddock/engine/headroom"
	"paddock/engine/testenv"
	"paddock/themes"
	"paddock/tui/data"
)

// fakeReports serves a fixed headroom report and counts requests.
type fakeReports struct {
	mu    sync.Mutex
	rep   headroom.Report
	err   error
	calls int
}

func (f *fakeReports) Headroom(context.Context) (headroom.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.rep, f.err
}

func (f *fakeReports) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fixtureHeadroom: zone-3's loss cannot be absorbed (logs-prod and
// metrics short of memory), zone-2's costs audit its HA.
func fixtureHeadroom() headroom.Report {
	return headroom.Report{
		ComputedAt: data.FixtureTime.Add(-2 * time.Second),
		Zones: []headroom.Zone{
			{Zone: "zone-1", Survivable: true, Allocators: 1, Instances: 2, NeededMB: 3072, FreeElsewhereMB: 9216},
			{Zone: "zone-2", Survivable: true, Allocators: 2, Instances: 2, NeededMB: 3072, FreeElsewhereMB: 5120,
				LostHA: []string{"3d4e5f60718293a4b5c6d7e8f90a1b2c"}},
			{Zone: "zone-3", Survivable: false, Allocators: 1, Instances: 2, NeededMB: 1536, FreeElsewhereMB: 512, ShortfallMB: 1024,
				Unplaceable: []string{"0a1b2c3d4e5f60718293a4b5c6d7e8f9", "1b2c3d4e5f60718293a4b5c6d7e8f90a"}},
		},
		Allocators: []headroom.Allocator{
			{ID: "alloc-a1", Zone: "zone-1", Vacatable: true, Instances: 2, NeededMB: 3072},
			{ID: "alloc-c1", Zone: "zone-3", Vacatable: false, Instances: 2, NeededMB: 1536, ShortfallMB: 1024,
				Unplaceable: []string{"0a1b2c3d4e5f60718293a4b5c6d7e8f9"}},
		},
	}
}

func headroomApp(t *testing.T, src data.Source, r Reports, screen int) *App {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return New(ctx, Options{Source: src, Actions: &recorder{}, Styles: themes.MustGet("no-color"), Now: fixedNow, Tick: -1, Screen: screen, Reports: r})
}

// TestHeadroomGolden: the Overview's panel (red line for zone-3) and
// the `:headroom` view, at both sizes; a failing report says why.
func TestHeadroomGolden(t *testing.T) {
	cases := []struct {
		name  string
		rep   *fakeReports
		first string
		keys  []string
		want  string
	}{
		{"overview", &fakeReports{rep: fixtureHeadroom()}, "NOT absorbed", nil, ""},
		{"view", &fakeReports{rep: fixtureHeadroom()}, "NOT absorbed", []string{":", "h", "e", "a", "d", "r", "o", "o", "m", "enter"}, "Vacating one allocator"},
		{"unavailable", &fakeReports{err: errors.New("ZooKeeper unavailable: retry")}, "headroom unavailable", nil, ""},
		{"allocator_detail", &fakeReports{rep: fixtureHeadroom()}, "NOT absorbed", []string{"2", "j", "j", "j", "enter"}, "if vacated"},
		{"vacate_confirm", &fakeReports{rep: fixtureHeadroom()}, "NOT absorbed", []string{"2", "j", "j", "j", "v"}, "placement dry-run"},
	}
	for _, sz := range sizes {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s_%dx%d", tc.name, sz[0], sz[1]), func(t *testing.T) {
				app := headroomApp(t, data.NewStatic(fixture()), tc.rep, 0)
				tm := session(t, app, sz[0], sz[1], tc.first)
				for _, k := range tc.keys {
					send(tm, keyMsg(k))
				}
				if tc.want != "" {
					waitOut(t, tm, tc.want)
				}
				final := finish(t, tm)
				view := final.View()
				checkFrame(t, view, sz[0], sz[1])
				golden.RequireEqual(t, []byte(view))
			})
		}
	}
}

// TestHeadroomFollowsChanges: every change of the platform asks for
// the report again (one request at a time), and the panel shows the
// new answer.
func TestHeadroomFollowsChanges(t *testing.T) {
	rep := &fakeReports{rep: fixtureHeadroom()}
	src := data.NewStatic(fixture())
	app := headroomApp(t, src, rep, 0)
	tm := session(t, app, 120, 40, "NOT absorbed")
	before := rep.Calls()
	ok := fixtureHeadroom()
	ok.Zones[2].Survivable, ok.Zones[2].ShortfallMB, ok.Zones[2].Unplaceable = true, 0, nil
	rep.mu.Lock()
	rep.rep = ok
	rep.mu.Unlock()
	src.Set(fixture())
	testenv.Eventually(t, 5*time.Second, "a new headroom request after the change", func() bool { return rep.Calls() > before })
	waitOut(t, tm, "zone-3         absorbed")
	v := finish(t, tm).View()
	if strings.Contains(v, "NOT absorbed") {
		t.Fatalf("panel kept the old report:\n%s", v)
	}
}
