package tui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/testenv"
	"paddock/themes"
	"paddock/tui/data"
)

// session runs app in teatest until want shows.
func session(t *testing.T, app *App, w, h int, want string) *teatest.TestModel {
	t.Helper()
	tm := teatest.NewTestModel(t, app, teatest.WithInitialTermSize(w, h))
	waitOut(t, tm, want)
	return tm
}

// waitOut waits until every one of want shows (the output is consumed:
// wait for what one frame shows in one call).
func waitOut(t *testing.T, tm *teatest.TestModel, want ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				return false
			}
		}
		return true
	},
		teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
}

func send(tm *teatest.TestModel, msgs ...tea.Msg) {
	for _, m := range msgs {
		tm.Send(m)
	}
}

func finish(t *testing.T, tm *teatest.TestModel) *App {
	t.Helper()
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	return tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*App)
}

// TestCommandCompletion: tab completes the word under the cursor from
// the commands, then from what the snapshot holds.
func TestCommandCompletion(t *testing.T) {
	cases := []struct {
		typed string
		tabs  int
		want  string
	}{
		{"de", 1, "dep"}, // dep and delete: tab cycles through them
		{"de", 2, "delete"},
		{"de", 3, "dep"},
		{"dep", 1, "dep "},
		{"dep logs-", 1, "dep logs-prod "},
		{"dep logs-prod ", 1, "dep logs-prod logs "},
		{"dep logs-prod logs ", 1, "dep logs-prod logs 0a1b2c3d-es-"},
		{"dep logs-prod logs 0a1b2c3d-es-", 1, "dep logs-prod logs 0a1b2c3d-es-0"},
		{"dep logs-prod logs 0a1b2c3d-es-", 2, "dep logs-prod logs 0a1b2c3d-es-1"},
		{"alloc zone-", 1, "alloc zone-1"},
		{"alloc zone-", 3, "alloc zone-3"},
		{"alloc alloc-c", 1, "alloc alloc-c1 "},
		{"hea", 0, "hea"},
		{"zz", 1, "zz"},
		{"cancel new", 1, "cancel new-cluster "},
	}
	for _, tc := range cases {
		t.Run(tc.typed+fmt.Sprint(tc.tabs), func(t *testing.T) {
			app := newTestApp(t, data.NewStatic(fixture()), nil, 0)
			app.Update(sizeMsg(80, 24))
			app.Update(keyMsg(":"))
			for _, m := range typed(tc.typed) {
				app.Update(m)
			}
			for range tc.tabs {
				app.Update(keyMsg("tab"))
			}
			if got := app.cmd.input.Value(); got != tc.want {
				t.Fatalf("after %q and %d tabs: %q, want %q (candidates %v)", tc.typed, tc.tabs, got, tc.want, app.cmd.cands)
			}
		})
	}
}

// TestCommands: each command shows what it names.
func TestCommands(t *testing.T) {
	cases := []struct {
		line   string
		active string
		shows  string
	}{
		{"alloc zone-2", "Allocators", "filter: zone-2"},
		{"a alloc-b1", "Allocators", "Allocator alloc-b1"},
		{"dep logs-prod", "Deployments", "0a1b2c3d4e5f60718293a4b5c6d7e8f9"},
		{"d 2c3d4e5f", "Deployments", "Plan activity"},
		{"plan p2-2c3d4e", "Deployments", "search-staging"},
		{"plan", "Plans", "Steps of"},
		{"zk", "Overview", "last sync"},
		{"px", "Proxies", "proxy-1"},
		{"nope", "Overview", "no command \"nope\""},
		{"dep nosuch", "Overview", "no deployment nosuch"},
		{"alloc zone-9", "Allocators", "no zone or allocator zone-9"},
		{"cancel logs-prod", "Overview", "logs-prod has no running plan to cancel"},
		{"retry audit", "Overview", "Confirm: retry the update plan of audit"},
	}
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			app := newTestApp(t, data.NewStatic(fixture()), &recorder{}, 0)
			tm := session(t, app, 100, 30, "Zones")
			send(tm, keyMsg(":"))
			send(tm, typed(tc.line)...)
			send(tm, keyMsg("enter"))
			waitOut(t, tm, tc.shows)
			if got := finish(t, tm).Active(); got != tc.active {
				t.Fatalf("active = %s, want %s", got, tc.active)
			}
		})
	}
}

// TestCommandGolden: the command line with its candidates, a
// confirmation naming what it does with its CLI command, the typed
// confirmation of a cancel, the ZooKeeper view.
func TestCommandGolden(t *testing.T) {
	cases := []struct {
		name   string
		screen int
		want   string
		keys   []tea.Msg
		after  string
	}{
		{name: "command_candidates", want: "Zones", keys: append(keys(":"), typed("dep ")...)},
		{name: "confirm_restart", screen: 2, want: "logs-prod", keys: keys("j", "R")},
		{name: "typed_cancel", screen: 3, want: "search-staging", keys: append(keys("x"), typed("search-st")...)},
		{name: "zk", want: "Zones", keys: append(append(keys(":"), typed("zk")...), keyMsg("enter")), after: "what to do"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			doc := &fakeDoctor{f: []service.Check{{ID: "zookeeper", Severity: service.SeverityWarning, Detail: "2 of 3 servers serving; 127.0.0.1:2183 lags 1500 transactions",
				Items: []string{"127.0.0.1:2181 leader", "127.0.0.1:2182 follower", "127.0.0.1:2183 follower, 1500 behind"}, Action: "check the disk and network of 127.0.0.1:2183"}}}
			app := New(ctx, Options{Source: data.NewStatic(fixture()), Actions: &recorder{}, Styles: themes.MustGet("no-color"), Now: fixedNow, Tick: -1, Screen: tc.screen, Doctor: doc})
			tm := session(t, app, 80, 24, tc.want)
			send(tm, tc.keys...)
			if tc.after != "" {
				waitOut(t, tm, tc.after)
			}
			final := finish(t, tm)
			view := final.View()
			checkFrame(t, view, 80, 24)
			golden.RequireEqual(t, []byte(view))
		})
	}
}

// actionKeys are every action of the console, by screen.
var actionKeys = []struct {
	name   string
	screen int
	keys   []string
	access service.Access
}{
	{"create", 2, []string{"c"}, service.AccessDeployments},
	{"resize", 2, []string{"j", "r"}, service.AccessDeployments},
	{"upgrade", 2, []string{"j", "u"}, service.AccessDeployments},
	{"restart", 2, []string{"j", "R"}, service.AccessDeployments},
	{"delete", 2, []string{"D"}, service.AccessDeployments},
	{"cancel", 3, []string{"x"}, service.AccessDeployments},
	{"retry", 3, []string{"j", "j", "t"}, service.AccessDeployments},
	{"maintenance", 1, []string{"m"}, service.AccessPlatform},
	{"vacate", 1, []string{"v"}, service.AccessPlatform},
}

// TestPermissions: a read-only console and a viewer key refuse every
// action at once, saying why; a deployment-manager key acts on
// deployments only. No action reaches Actions when refused.
func TestPermissions(t *testing.T) {
	perms := []struct {
		name string
		p    Permissions
		why  string
	}{
		{"read-only", Permissions{ReadOnly: true}, "read-only"},
		{"viewer", Permissions{Role: service.RolePlatformViewer, Who: "key oncall"}, "role platform-viewer (key oncall) may not"},
		{"manager", Permissions{Role: service.RoleDeploymentManager, Who: "key ci"}, "role deployment-manager (key ci) may not"},
		{"admin", Permissions{Role: service.RolePlatformAdmin}, ""},
	}
	for _, pc := range perms {
		for _, ac := range actionKeys {
			t.Run(pc.name+"/"+ac.name, func(t *testing.T) {
				rec := &recorder{}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				app := New(ctx, Options{Source: data.NewStatic(fixture()), Actions: rec, Styles: themes.MustGet("no-color"),
					Now: fixedNow, Tick: -1, Screen: ac.screen, Permissions: pc.p})
				tm := session(t, app, 100, 30, "live")
				for _, k := range ac.keys {
					send(tm, keyMsg(k))
				}
				refused := pc.p.Check(ac.access) != nil
				if refused {
					waitOut(t, tm, "cannot ", pc.why)
				} else {
					waitOut(t, tm, "esc")
				}
				final := finish(t, tm)
				if refused && final.dialog != nil {
					t.Fatalf("refused action opened a dialog")
				}
				if !refused && final.dialog == nil {
					t.Fatalf("allowed action opened no dialog:\n%s", final.View())
				}
				if len(rec.Calls()) != 0 {
					t.Fatalf("actions called: %v", rec.Calls())
				}
			})
		}
	}
}

func TestPermissionsBadge(t *testing.T) {
	app := newTestApp(t, data.NewStatic(fixture()), nil, 0)
	app.perm = Permissions{Role: service.RolePlatformViewer}
	app.Update(sizeMsg(80, 24))
	if v := app.View(); !strings.Contains(strings.Split(v, "\n")[0], "view only: platform-viewer") {
		t.Fatalf("tab line without the badge:\n%s", v)
	}
}

// TestCopyAsCLI: c in a confirmation, ctrl+y in prompts and typed
// confirmations copy the same action as a paddock command.
func TestCopyAsCLI(t *testing.T) {
	cases := []struct {
		name   string
		screen int
		keys   []tea.Msg
		want   string
	}{
		{"restart", 2, keys("j", "R", "c"), "paddock deployment restart 0a1b2c3d4e5f60718293a4b5c6d7e8f9"},
		{"resize", 2, append(keys("j", "r", "backspace", "backspace", "4", "g"), tea.KeyMsg{Type: tea.KeyCtrlY}), "paddock deployment resize 0a1b2c3d4e5f60718293a4b5c6d7e8f9 --size 4g"},
		{"cancel", 3, append(keys("x"), tea.KeyMsg{Type: tea.KeyCtrlY}), "paddock deployment cancel 2c3d4e5f60718293a4b5c6d7e8f90a1b"},
		{"maintenance", 1, keys("m", "c"), "paddock allocator maintenance alloc-a1 --on"},
		{"vacate", 1, keys("v", "c"), "paddock allocator vacate alloc-a1"},
		{"create", 2, append(append(keys("c"), typed("orders")...), tea.KeyMsg{Type: tea.KeyCtrlY}), "paddock deployment create --name orders --version 8.18.0 --size 1g --zones 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []string
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			app := New(ctx, Options{Source: data.NewStatic(fixture()), Actions: &recorder{}, Styles: themes.MustGet("no-color"),
				Now: fixedNow, Tick: -1, Screen: tc.screen, Clipboard: func(s string) error {
					mu.Lock()
					defer mu.Unlock()
					got = append(got, s)
					return nil
				}})
			tm := session(t, app, 120, 30, "live")
			send(tm, tc.keys...)
			waitOut(t, tm, "copied (OSC 52)")
			finish(t, tm)
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 || got[0] != tc.want {
				t.Fatalf("copied %q, want %q", got, tc.want)
			}
		})
	}
}

// fakeLogs serves fixed lines, then (following) what is written to Live.
type fakeLogs struct {
	mu    sync.Mutex
	lines []string
	opts  []engine.LogOptions
	live  *io.PipeWriter
	err   error
}

func (f *fakeLogs) Logs(ctx context.Context, dep, inst string, o engine.LogOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opts = append(f.opts, o)
	if f.err != nil {
		return nil, f.err
	}
	head := strings.NewReader(strings.Join(f.lines, "\n") + "\n")
	if !o.Follow {
		return io.NopCloser(head), nil
	}
	pr, pw := io.Pipe()
	f.live = pw
	go func() {
		_, _ = io.Copy(pw, head)
	}()
	return pr, nil
}

func (f *fakeLogs) write(t *testing.T, s string) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, "the follow stream to open", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.live != nil
	})
	f.mu.Lock()
	w := f.live
	f.mu.Unlock()
	if _, err := io.WriteString(w, s+"\n"); err != nil {
		t.Fatal(err)
	}
}

// TestLogsView: deployment detail → instance → l shows its log and
// follows new lines; f stops following; a failing source says why.
func TestLogsView(t *testing.T) {
	src := &fakeLogs{lines: []string{"[2026-12-02T08:00:00Z] node started", "[2026-12-02T08:00:01Z] cluster health yellow", "\x1b[31mred\x1b[0m line"}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app := New(ctx, Options{Source: data.NewStatic(fixture()), Styles: themes.MustGet("no-color"), Now: fixedNow, Tick: -1, Screen: 2, Logs: src})
	tm := session(t, app, 100, 30, "logs-prod")
	send(tm, keys("j", "enter", "j", "l")...)
	waitOut(t, tm, "cluster health yellow")
	src.write(t, "[2026-12-02T08:00:02Z] cluster health green")
	waitOut(t, tm, "health green")
	send(tm, keyMsg("f"))
	waitOut(t, tm, "tail")
	final := finish(t, tm)
	v := final.View()
	if !strings.Contains(v, "0a1b2c3d-es-1") || !strings.Contains(v, "red line") || strings.Contains(v, "\x1b[31m") {
		t.Fatalf("log view:\n%s", v)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if len(src.opts) != 2 || !src.opts[0].Follow || src.opts[1].Follow || src.opts[0].Tail != logTail {
		t.Fatalf("log requests: %+v", src.opts)
	}
}

// TestLogsOfANewInstance: the running plan's new instance (not yet a
// member: the node that may never become healthy) is listed in the
// detail, and l reads its log.
func TestLogsOfANewInstance(t *testing.T) {
	src := &fakeLogs{lines: []string{"[2026-12-02T08:00:00Z] node starting", "[2026-12-02T08:00:05Z] failed to bind 9300"}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	app := New(ctx, Options{Source: data.NewStatic(fixture()), Styles: themes.MustGet("no-color"), Now: fixedNow, Tick: -1, Screen: 2, Logs: src})
	tm := session(t, app, 120, 30, "logs-prod")
	send(tm, keys("j", "j", "j", "enter")...)
	waitOut(t, tm, "4e5f6071-es-0", "new, plan update")
	send(tm, keyMsg("l"))
	waitOut(t, tm, "failed to bind 9300")
	finish(t, tm)
}

func TestLogsErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &fakeLogs{err: errors.New("allocator alloc-a1 unreachable")}
	app := New(ctx, Options{Source: data.NewStatic(fixture()), Styles: themes.MustGet("no-color"), Now: fixedNow, Tick: -1, Logs: src})
	tm := session(t, app, 100, 30, "Zones")
	send(tm, keyMsg(":"))
	send(tm, typed("dep logs-prod logs")...)
	send(tm, keyMsg("enter"))
	waitOut(t, tm, "allocator alloc-a1 unreachable")
	send(tm, keyMsg("esc"), keyMsg(":"))
	send(tm, typed("dep audit logs nosuch")...)
	send(tm, keyMsg("enter"))
	waitOut(t, tm, "audit has no instance nosuch")
	finish(t, tm)
}

// TestPlanFollowedLive: the Plans screen follows the selected plan step
// by step as the constructor logs them (what it waits for now, the
// deadline), and says when the plan ends.
func TestPlanFollowedLive(t *testing.T) {
	src := data.NewStatic(fixture())
	app := newTestApp(t, src, &recorder{}, 3)
	tm := session(t, app, 120, 40, "BLOCKED 2m00s past its deadline")

	// The stuck node comes up: the step ends, the next one runs.
	tree := data.SmallFixture()
	id := "2c3d4e5f60718293a4b5c6d7e8f90a1b"
	n, _ := tree.Get("/paddock/deployments/" + id + "/plans/pending")
	var p engine.Plan
	if err := json.Unmarshal(n.Data, &p); err != nil {
		t.Fatal(err)
	}
	now := data.FixtureTime
	p.Steps[2].Status, p.Steps[2].Ended, p.Steps[2].Message = engine.PlanSuccess, &now, "2 of 2 healthy"
	dl := now.Add(5 * time.Minute)
	p.Steps = append(p.Steps, engine.PlanStep{Name: "switch-route", Status: engine.PlanRunning, Started: now, Deadline: &dl, Waiting: "proxies on generation 3 of 4"})
	tree.Put("/paddock/deployments/"+id+"/plans/pending", p)
	s := data.Build(tree, nil)
	s.ZooKeeper, s.LastSync = "127.0.0.1:2181", data.FixtureTime
	src.Set(s)
	waitOut(t, tm, "switch-route", "now: proxies on generation 3 of 4", "deadline in 5m00s")
	v := finish(t, tm).View()
	if strings.Contains(v, "BLOCKED") {
		t.Fatalf("the step that went on is still shown blocked:\n%s", v)
	}
}

// TestTypedAtOnce: runes arriving in one message (a paste, tmux
// send-keys) are typed, even when they spell a key's name.
func TestTypedAtOnce(t *testing.T) {
	app := newTestApp(t, data.NewStatic(fixture()), nil, 0)
	app.Update(sizeMsg(80, 24))
	app.Update(keyMsg(":"))
	app.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("delete web")})
	if got := app.cmd.input.Value(); got != "delete web" {
		t.Fatalf("command line = %q", got)
	}
}
