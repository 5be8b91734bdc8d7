package tui

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/muesli/termenv"

	"paddock/engine/testenv"
	"paddock/themes"
	"paddock/tui/data"
)

func init() {
	// Golden files hold plain text: no escape sequences.
	lipgloss.SetColorProfile(termenv.Ascii)
}

func fixture() data.Snapshot {
	s := data.Build(data.SmallFixture(), nil)
	s.ZooKeeper = "127.0.0.1:2181"
	s.LastSync = data.FixtureTime
	return s
}

func fixedNow() time.Time { return data.FixtureTime }

func newTestApp(t *testing.T, src data.Source, act Actions, screen int) *App {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return New(ctx, Options{Source: src, Actions: act, Styles: themes.MustGet("no-color"), Now: fixedNow, Tick: -1, Screen: screen})
}

// run starts the app in teatest at w×h, waits until want is on screen,
// sends keys, and returns the final model after quitting.
func runApp(t *testing.T, app *App, w, h int, want string, keys ...tea.Msg) *App {
	t.Helper()
	tm := teatest.NewTestModel(t, app, teatest.WithInitialTermSize(w, h))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(want)) },
		teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
	for _, k := range keys {
		tm.Send(k)
	}
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	return tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*App)
}

func keyMsg(s string) tea.Msg {
	switch s {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "shift+tab":
		return tea.KeyMsg{Type: tea.KeyShiftTab}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "right":
		return tea.KeyMsg{Type: tea.KeyRight}
	case "left":
		return tea.KeyMsg{Type: tea.KeyLeft}
	case "backspace":
		return tea.KeyMsg{Type: tea.KeyBackspace}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

func keys(ks ...string) []tea.Msg {
	var out []tea.Msg
	for _, k := range ks {
		out = append(out, keyMsg(k))
	}
	return out
}

func typed(s string) []tea.Msg {
	var out []tea.Msg
	for _, r := range s {
		out = append(out, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
	return out
}

// checkFrame asserts the frame's invariants: exactly h lines, none wider
// than w (no wrapping that would break tables).
func checkFrame(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) != h {
		t.Errorf("view has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if lw := lipgloss.Width(l); lw > w {
			t.Errorf("line %d is %d cells wide (> %d): %q", i+1, lw, w, l)
		}
	}
}

var sizes = [][2]int{{80, 24}, {160, 48}}

func TestScreensGolden(t *testing.T) {
	cases := []struct {
		name   string
		screen int
		want   string
		keys   []tea.Msg
	}{
		{name: "overview", screen: 0, want: "Zones"},
		{name: "allocators", screen: 1, want: "alloc-a1"},
		{name: "allocators_sorted_by_zone_desc", screen: 1, want: "alloc-a1", keys: keys("s", "S")},
		{name: "allocators_filtered", screen: 1, want: "alloc-a1", keys: append(append(keys("/"), typed("zone-2")...), keyMsg("enter"))},
		{name: "allocator_detail", screen: 1, want: "alloc-a1", keys: keys("enter")},
		{name: "deployments", screen: 2, want: "logs-prod"},
		{name: "deployment_detail", screen: 2, want: "logs-prod", keys: keys("j", "enter")},
		{name: "deployment_detail_plan", screen: 2, want: "logs-prod", keys: keys("j", "j", "j", "enter")},
		{name: "plans", screen: 3, want: "search-staging"},
		{name: "proxies", screen: 4, want: "proxy-1"},
		{name: "help", screen: 0, want: "Zones", keys: keys("?")},
	}
	for _, sz := range sizes {
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s_%dx%d", tc.name, sz[0], sz[1]), func(t *testing.T) {
				app := newTestApp(t, data.NewStatic(fixture()), nil, tc.screen)
				final := runApp(t, app, sz[0], sz[1], tc.want, tc.keys...)
				view := final.View()
				checkFrame(t, view, sz[0], sz[1])
				golden.RequireEqual(t, []byte(view))
			})
		}
	}
}

// recorder is a hand-written Actions that records calls.
type recorder struct {
	mu    sync.Mutex
	calls []string
	req   CreateRequest
	err   error
}

func (r *recorder) add(s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
	return r.err
}

func (r *recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *recorder) CreateDeployment(_ context.Context, req CreateRequest) (Created, error) {
	r.mu.Lock()
	r.req = req
	r.mu.Unlock()
	return Created{ID: "2c3d4e5f60718293a4b5c6d7e8f90a1b", Username: "elastic", Password: "s3cret-shown-once-Xy7Qp2"}, r.add("create " + req.Name)
}
func (r *recorder) ResizeDeployment(_ context.Context, id string, mb int) error {
	return r.add(fmt.Sprintf("resize %s %d", id, mb))
}
func (r *recorder) UpgradeDeployment(_ context.Context, id, v string) error {
	return r.add("upgrade " + id + " " + v)
}
func (r *recorder) RestartDeployment(_ context.Context, id string) error {
	return r.add("restart " + id)
}
func (r *recorder) DeleteDeployment(_ context.Context, id string) error { return r.add("delete " + id) }
func (r *recorder) CancelPlan(_ context.Context, id string) error       { return r.add("cancel " + id) }
func (r *recorder) RetryPlan(_ context.Context, id string) error        { return r.add("retry " + id) }
func (r *recorder) SetMaintenance(_ context.Context, id string, on bool) error {
	return r.add(fmt.Sprintf("maintenance %s %v", id, on))
}
func (r *recorder) VacateAllocator(_ context.Context, id string) error { return r.add("vacate " + id) }

func TestCreateFormGolden(t *testing.T) {
	steps := []struct {
		name string
		keys []tea.Msg
	}{
		{name: "empty", keys: keys("c")},
		{name: "filled", keys: append(append(keys("c"), typed("orders")...), keyMsg("tab"), keyMsg("right"), keyMsg("tab"), keyMsg("backspace"), keyMsg("backspace"), keyMsg("2"), keyMsg("g"), keyMsg("tab"), keyMsg("right"), keyMsg("right"), keyMsg("tab"))},
		{name: "invalid_name", keys: append(append(keys("c"), typed("Bad Name!")...), keyMsg("shift+tab"), keyMsg("enter"))},
	}
	for _, sz := range sizes {
		for _, st := range steps {
			t.Run(fmt.Sprintf("%s_%dx%d", st.name, sz[0], sz[1]), func(t *testing.T) {
				rec := &recorder{}
				app := newTestApp(t, data.NewStatic(fixture()), rec, 2)
				final := runApp(t, app, sz[0], sz[1], "logs-prod", st.keys...)
				view := final.View()
				checkFrame(t, view, sz[0], sz[1])
				golden.RequireEqual(t, []byte(view))
				if len(rec.Calls()) != 0 {
					t.Fatalf("form called actions before submit: %v", rec.Calls())
				}
			})
		}
	}
}

// TestCreateFormSubmits drives the whole flow: the request reaches
// Actions with the fields as typed, and the console opens the new
// deployment's detail to follow its plan.
func TestCreateFormSubmits(t *testing.T) {
	rec := &recorder{}
	app := newTestApp(t, data.NewStatic(fixture()), rec, 0)
	tm := teatest.NewTestModel(t, app, teatest.WithInitialTermSize(80, 24))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("Zones")) })
	for _, k := range append(append(keys("3", "c"), typed("orders")...), keys("tab", "right", "tab", "backspace", "backspace", "2", "g", "tab", "right", "tab", "backspace", "5", "1", "2", "m", "tab", "enter")...) {
		tm.Send(k)
	}
	// The elastic user's password is shown once, over the new
	// deployment's detail, until the operator closes it.
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		return bytes.Contains(b, []byte("s3cret-shown-once-Xy7Qp2")) && bytes.Contains(b, []byte("reset-password"))
	}, teatest.WithDuration(5*time.Second))
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	// The fixture's deployment id for the recorder's answer is
	// search-staging: its detail opens with its running plan.
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("Plan activity")) },
		teatest.WithDuration(5*time.Second))
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	final := tm.FinalModel(t).(*App)
	want := CreateRequest{Name: "orders", Version: "8.17.0", SizeMB: 2048, Zones: 2, KibanaMB: 512}
	rec.mu.Lock()
	got := rec.req
	rec.mu.Unlock()
	if got != want {
		t.Fatalf("request = %+v, want %+v", got, want)
	}
	if final.Active() != "Deployments" || !strings.Contains(final.View(), "search-staging") || strings.Contains(final.View(), "s3cret-shown-once") {
		t.Fatalf("after create the console shows %s:\n%s", final.Active(), final.View())
	}
}

func TestActionsConfirm(t *testing.T) {
	cases := []struct {
		name   string
		screen int
		keys   []string
		want   []string
	}{
		{"maintenance on", 1, []string{"m", "y"}, []string{"maintenance alloc-a1 true"}},
		{"maintenance off", 1, []string{"j", "j", "m", "y"}, []string{"maintenance alloc-b2 false"}},
		{"maintenance declined", 1, []string{"m", "n"}, nil},
		{"vacate from detail", 1, []string{"enter", "v", "y"}, []string{"vacate alloc-a1"}},
		{"delete typed", 2, append([]string{"D"}, append(strings.Split("audit", ""), "enter")...), []string{"delete 3d4e5f60718293a4b5c6d7e8f90a1b2c"}},
		{"delete y is not enough", 2, []string{"D", "y", "enter"}, nil},
		{"delete declined", 2, []string{"D", "esc"}, nil},
		{"restart", 2, []string{"j", "R", "y"}, []string{"restart 0a1b2c3d4e5f60718293a4b5c6d7e8f9"}},
		{"cancel plan typed", 2, append([]string{"j", "j", "j", "j", "x"}, append(strings.Split("search-staging", ""), "enter")...), []string{"cancel 2c3d4e5f60718293a4b5c6d7e8f90a1b"}},
		{"cancel plan wrong name", 2, append([]string{"j", "j", "j", "j", "x"}, append(strings.Split("search", ""), "enter")...), nil},
		{"cancel without plan", 2, []string{"x", "y"}, nil},
		{"resize", 2, []string{"j", "r", "backspace", "backspace", "4", "g", "enter"}, []string{"resize 0a1b2c3d4e5f60718293a4b5c6d7e8f9 4096"}},
		{"resize invalid", 2, []string{"j", "r", "backspace", "backspace", "x", "enter"}, nil},
		{"upgrade", 2, []string{"j", "u", "enter"}, []string{"upgrade 0a1b2c3d4e5f60718293a4b5c6d7e8f9 8.18.0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			app := newTestApp(t, data.NewStatic(fixture()), rec, tc.screen)
			tm := teatest.NewTestModel(t, app, teatest.WithInitialTermSize(80, 24))
			teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
				return bytes.Contains(b, []byte("alloc-a1")) || bytes.Contains(b, []byte("logs-prod"))
			})
			for _, k := range tc.keys {
				tm.Send(keyMsg(k))
			}
			if len(tc.want) > 0 {
				testenv.Eventually(t, 5*time.Second, "the actions to be called", func() bool { return len(rec.Calls()) >= len(tc.want) })
			}
			if err := tm.Quit(); err != nil {
				t.Fatal(err)
			}
			tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
			got := rec.Calls()
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("calls = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLiveUpdateAndStale feeds a new snapshot while the console runs:
// the screen follows, and a lost connection shows STALE with its age.
func TestLiveUpdateAndStale(t *testing.T) {
	src := data.NewStatic(fixture())
	app := newTestApp(t, src, nil, 2)
	tm := teatest.NewTestModel(t, app, teatest.WithInitialTermSize(80, 24))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("logs-prod")) })

	tree := data.SmallFixture()
	tree.Delete("/paddock/deployments/0a1b2c3d4e5f60718293a4b5c6d7e8f9")
	s := data.Build(tree, nil)
	s.ZooKeeper = "127.0.0.1:2181"
	s.Connected = false
	s.LastSync = data.FixtureTime.Add(-time.Hour)
	s.StaleSince = data.FixtureTime.Add(-75 * time.Second)
	src.Set(s)
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("STALE 1m15s")) },
		teatest.WithDuration(5*time.Second))
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	final := tm.FinalModel(t).(*App)
	v := final.View()
	if strings.Contains(v, "logs-prod") {
		t.Fatalf("removed deployment still shown:\n%s", v)
	}
	if !strings.Contains(v, "metrics") {
		t.Fatalf("remaining deployments lost:\n%s", v)
	}
}

func TestNavigationKeys(t *testing.T) {
	cases := []struct {
		keys []string
		want string
	}{
		{[]string{"tab"}, "Allocators"},
		{[]string{"tab", "tab", "shift+tab"}, "Allocators"},
		{[]string{"shift+tab"}, "Doctor"},
		{[]string{"6"}, "Doctor"},
		{[]string{"4"}, "Plans"},
		{[]string{"l", "l"}, "Deployments"},
		{[]string{"3", "/", "q"}, "Deployments"}, // q typed into the filter, no quit
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.keys, ","), func(t *testing.T) {
			app := newTestApp(t, data.NewStatic(fixture()), nil, 0)
			var m tea.Model = app
			for _, k := range tc.keys {
				m, _ = m.Update(keyMsg(k))
			}
			if got := m.(*App).Active(); got != tc.want {
				t.Fatalf("active = %s, want %s", got, tc.want)
			}
		})
	}
}

func sizeMsg(w, h int) tea.Msg { return tea.WindowSizeMsg{Width: w, Height: h} }

// TestAfterActionScreens: after an action the console shows where its
// plan runs.
func TestAfterActionScreens(t *testing.T) {
	for _, tc := range []struct {
		name   string
		screen int
		keys   []string
		want   string
		shows  string
	}{
		{"vacate shows plans", 1, []string{"v", "y"}, "Plans", "Steps of"},
		{"plans enter opens the deployment", 3, []string{"enter"}, "Deployments", "Plan activity"},
		{"maintenance stays", 1, []string{"m", "y"}, "Allocators", "maintenance on alloc-a1: done"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := newTestApp(t, data.NewStatic(fixture()), &recorder{}, tc.screen)
			tm := teatest.NewTestModel(t, app, teatest.WithInitialTermSize(80, 24))
			teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("live")) })
			for _, k := range tc.keys {
				tm.Send(keyMsg(k))
			}
			teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(tc.shows)) },
				teatest.WithDuration(5*time.Second))
			if err := tm.Quit(); err != nil {
				t.Fatal(err)
			}
			if got := tm.FinalModel(t).(*App).Active(); got != tc.want {
				t.Fatalf("active = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestMouse(t *testing.T) {
	// Clicks land where the tab line shows the labels (short ones at 80).
	at := func(label string) int {
		app := newTestApp(t, data.NewStatic(fixture()), nil, 0)
		app.Update(sizeMsg(80, 24))
		x := strings.Index(strings.Split(app.View(), "\n")[0], label)
		if x < 0 {
			t.Fatalf("no %q on the tab line", label)
		}
		return x + 1
	}
	for _, tc := range []struct {
		name string
		msg  tea.MouseMsg
		want string
	}{
		{"click on Deployments tab", tea.MouseMsg{X: at("3 Deps"), Y: 0, Button: tea.MouseButtonLeft, Action: tea.MouseActionPress}, "Deployments"},
		{"click on Proxies tab", tea.MouseMsg{X: at("5 Proxy"), Y: 0, Button: tea.MouseButtonLeft, Action: tea.MouseActionPress}, "Proxies"},
		{"click on Doctor tab", tea.MouseMsg{X: at("6 Doctor"), Y: 0, Button: tea.MouseButtonLeft, Action: tea.MouseActionPress}, "Doctor"},
		{"click below the tabs", tea.MouseMsg{X: 35, Y: 5, Button: tea.MouseButtonLeft, Action: tea.MouseActionPress}, "Overview"},
		{"wheel", tea.MouseMsg{X: 5, Y: 5, Button: tea.MouseButtonWheelDown, Action: tea.MouseActionPress}, "Overview"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := newTestApp(t, data.NewStatic(fixture()), nil, 0)
			app.Update(sizeMsg(80, 24))
			app.Update(tc.msg)
			if got := app.Active(); got != tc.want {
				t.Fatalf("active = %s, want %s", got, tc.want)
			}
		})
	}
}
