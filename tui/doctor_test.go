package tui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"paddock/engine/service"
	"paddock/engine/testenv"
	"paddock/themes"
	"paddock/tui/data"
)

// fakeDoctor serves fixed findings and counts runs.
type fakeDoctor struct {
	mu    sync.Mutex
	f     []service.Check
	err   error
	calls int
}

func (d *fakeDoctor) Doctor(context.Context) (service.DoctorReport, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	return service.DoctorReport{CheckedAt: data.FixtureTime, Checks: d.f}, d.err
}

func (d *fakeDoctor) Calls() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

// fixtureFindings are out of order: the screen puts the worst first.
func fixtureFindings() []service.Check {
	return []service.Check{
		{ID: "allocators.full", Title: "allocator capacity", Severity: service.SeverityOK, Detail: "no allocator over 90% full"},
		{ID: "zookeeper.quorum", Title: "zookeeper quorum", Severity: service.SeverityCritical, Detail: "follower 127.0.0.1:2182 is not serving (2 of 3 serving: one more loss stops the platform)",
			Action: "restart the ZooKeeper server on 127.0.0.1:2182 (paddock zookeeper status)", Items: []string{"127.0.0.1:2182"}},
		{ID: "certs.expiry", Title: "certificates", Severity: service.SeverityWarning, Detail: "the proxy certificate of proxy-1 expires in 3 days", Action: "renew it: restart the proxy (certificates renew at start)"},
		{ID: "deployments.single_zone", Title: "single-zone deployments", Severity: service.SeverityWarning, Detail: "2 deployments run in one zone", Action: "resize them to 2 zones for high availability", Items: []string{"audit", "new-cluster"}},
	}
}

func doctorApp(t *testing.T, d Doctor, screen int) *App {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return New(ctx, Options{Source: data.NewStatic(fixture()), Styles: themes.MustGet("no-color"), Now: fixedNow, Tick: -1, Screen: screen, Doctor: d})
}

// TestDoctorGolden: findings worst first with the selected one's
// action; a failing run says why; a console without a doctor says so.
func TestDoctorGolden(t *testing.T) {
	cases := []struct {
		name string
		doc  Doctor
		keys []string
		want string
	}{
		{"findings", &fakeDoctor{f: fixtureFindings()}, nil, "what to do"},
		{"second", &fakeDoctor{f: fixtureFindings()}, []string{"j"}, "renew it"},
		{"failed", &fakeDoctor{err: errors.New("ZooKeeper unavailable: retry")}, nil, "the checks failed"},
		{"none", nil, nil, "not available"},
	}
	for _, sz := range sizes {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s_%dx%d", tc.name, sz[0], sz[1]), func(t *testing.T) {
				app := doctorApp(t, tc.doc, tabDoctor)
				first := tc.want
				if len(tc.keys) > 0 {
					first = "what to do"
				}
				tm := session(t, app, sz[0], sz[1], first)
				for _, k := range tc.keys {
					send(tm, keyMsg(k))
				}
				if len(tc.keys) > 0 {
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

// TestDoctorRuns: the checks run when the screen opens (tab, `:doctor`)
// and again on r; not while another screen shows.
func TestDoctorRuns(t *testing.T) {
	doc := &fakeDoctor{f: fixtureFindings()}
	app := doctorApp(t, doc, 0)
	tm := session(t, app, 100, 30, "Zones")
	if doc.Calls() != 0 {
		t.Fatalf("the doctor ran before its screen opened")
	}
	send(tm, keyMsg("6"))
	waitOut(t, tm, "zookeeper quorum")
	send(tm, keyMsg("r"))
	testenv.Eventually(t, 5*time.Second, "r to run the checks again", func() bool { return doc.Calls() == 2 })
	send(tm, keyMsg("1"))
	waitOut(t, tm, "Zones")
	send(tm, keyMsg(":"))
	send(tm, typed("doctor")...)
	send(tm, keyMsg("enter"))
	waitOut(t, tm, "what to do")
	finish(t, tm)
	if n := doc.Calls(); n < 3 {
		t.Fatalf("doctor ran %d times, want 3 (tab, r, :doctor)", n)
	}
}
