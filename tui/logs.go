package tui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"paddock/engine"
	"paddock/tui/common"
	"paddock/tui/data"
)

// LogSource reads an instance's container log. Production reads it
// through the instance's allocator (engine/service), never Docker.
type LogSource interface {
	Logs(ctx context.Context, deployment, instance string, o engine.LogOptions) (io.ReadCloser, error)
}

// logTail is how many lines the view asks for and keeps.
const logTail = 1000

// logMsg carries lines read from a stream (gen tells streams apart:
// a stream closed by a newer one is ignored).
type logMsg struct {
	gen   int
	lines []string
	err   error
	done  bool
}

// logView shows one instance's log, following new lines with f.
type logView struct {
	c        *common.Common
	src      LogSource
	dep      data.Deployment
	instance string
	follow   bool
	lines    []string
	// back is how many lines the view is scrolled up from the end.
	back   int
	gen    int
	cancel context.CancelFunc
	ch     chan logMsg
	state  string
	err    error
	w, h   int
}

func newLogView(c *common.Common, src LogSource, dep data.Deployment, instance string) *logView {
	return &logView{c: c, src: src, dep: dep, instance: instance, follow: true}
}

// openLogs opens the log view of an instance of x ("" for the first).
func (a *App) openLogs(x data.Deployment, instance string) (tea.Cmd, error) {
	if a.logs == nil {
		return nil, errors.New("logs are not available in this console")
	}
	all := orderedMembers(x)
	if instance == "" {
		if len(all) == 0 {
			return nil, fmt.Errorf("%s has no instance placed yet", x.Name)
		}
		instance = all[0].ID
	}
	found := false
	for _, m := range all {
		found = found || m.ID == instance
	}
	if !found {
		return nil, fmt.Errorf("%s has no instance %s: tab completes its instances", x.Name, instance)
	}
	return a.showOverlay(newLogView(a.c, a.logs, x, instance)), nil
}

func (l *logView) Title() string                { return "Logs " + l.dep.Name + "/" + l.instance }
func (l *logView) SetSize(w, h int)             { l.w, l.h = w, h }
func (l *logView) SetSnapshot(s *data.Snapshot) {}
func (l *logView) Capturing() bool              { return false }

// Init starts the stream.
func (l *logView) Init() tea.Cmd { return l.start() }

// Close stops the stream (the view is closed).
func (l *logView) Close() {
	if l.cancel != nil {
		l.cancel()
		l.cancel = nil
	}
}

// start (re)opens the stream: the last lines, then new ones when
// following.
func (l *logView) start() tea.Cmd {
	l.Close()
	l.gen++
	l.lines, l.back, l.err = nil, 0, nil
	l.state = "reading"
	ctx, cancel := context.WithCancel(l.c.Ctx)
	l.cancel = cancel
	ch := make(chan logMsg, 4)
	l.ch = ch
	gen, src, dep, inst, follow := l.gen, l.src, l.dep.ID, l.instance, l.follow
	go func() {
		defer close(ch)
		rc, err := src.Logs(ctx, dep, inst, engine.LogOptions{Tail: logTail, Follow: follow})
		if err != nil {
			ch <- logMsg{gen: gen, err: err, done: true}
			return
		}
		defer rc.Close()
		go func() { <-ctx.Done(); rc.Close() }()
		lines := make(chan string, 256)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(rc)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				select {
				case lines <- sc.Text():
				case <-ctx.Done():
					return
				}
			}
		}()
		// Batch what arrived together: one message per burst, not per line.
		for line := range lines {
			batch := []string{line}
		more:
			for len(batch) < 512 {
				select {
				case l2, ok := <-lines:
					if !ok {
						break more
					}
					batch = append(batch, l2)
				default:
					break more
				}
			}
			select {
			case ch <- logMsg{gen: gen, lines: batch}:
			case <-ctx.Done():
				return
			}
		}
		select {
		case ch <- logMsg{gen: gen, done: true, err: ctx.Err()}:
		case <-ctx.Done():
		}
	}()
	return l.wait()
}

func (l *logView) wait() tea.Cmd {
	ch := l.ch
	return func() tea.Msg {
		m, ok := <-ch
		if !ok {
			return nil
		}
		return m
	}
}

func (l *logView) Update(msg tea.Msg) tea.Cmd {
	m, ok := msg.(logMsg)
	if !ok || m.gen != l.gen {
		return nil
	}
	l.lines = append(l.lines, m.lines...)
	if over := len(l.lines) - logTail; over > 0 {
		l.lines = l.lines[over:]
	}
	if m.done {
		switch {
		case m.err != nil && !errors.Is(m.err, context.Canceled):
			l.err, l.state = m.err, "failed"
		case l.follow:
			l.state = "stream ended (the instance stopped?): f to follow again"
		default:
			l.state = "last " + itoa(len(l.lines)) + " lines"
		}
		return nil
	}
	if l.follow {
		l.state = "following"
	}
	return l.wait()
}

func (l *logView) HandleKey(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := l.c.Keys
	page := max(1, l.h-3)
	switch {
	case key.Matches(msg, k.Follow):
		l.follow = !l.follow
		return l.start(), true
	case key.Matches(msg, k.Up):
		l.back++
	case key.Matches(msg, k.Down):
		l.back--
	case key.Matches(msg, k.PageUp):
		l.back += page
	case key.Matches(msg, k.PageDown):
		l.back -= page
	case key.Matches(msg, k.Top):
		l.back = len(l.lines)
	case key.Matches(msg, k.Bottom):
		l.back = 0
	default:
		return nil, false
	}
	l.back = max(0, min(l.back, len(l.lines)-page))
	return nil, true
}

func (l *logView) ShortHelp() []key.Binding {
	k := l.c.Keys
	return []key.Binding{k.Back, k.Follow, k.Up, k.Down, k.Bottom}
}
func (l *logView) FullHelp() [][]key.Binding { return nil }

func (l *logView) View() string {
	st := l.c.Styles
	mode := "tail"
	if l.follow {
		mode = "follow"
	}
	alloc := ""
	for _, m := range orderedMembers(l.dep) {
		if m.ID == l.instance {
			alloc = " on " + m.Allocator + " (" + m.Zone + ")"
		}
	}
	head := st.Title.Render(l.dep.Name+" / "+l.instance) + st.Muted.Render(alloc+"  ·  "+mode+"  ·  ")
	if l.err != nil {
		head += st.Error.Render(l.err.Error())
	} else {
		head += st.Muted.Render(l.state)
	}
	page := max(1, l.h-2)
	end := len(l.lines) - l.back
	start := max(0, end-page)
	body := l.lines[start:end]
	var b strings.Builder
	b.WriteString(head + "\n" + section(st, "log", l.w))
	for _, s := range body {
		b.WriteString("\n" + strings.ReplaceAll(ansi.Strip(s), "\t", "    "))
	}
	if len(l.lines) == 0 && l.err == nil {
		b.WriteString("\n" + st.Muted.Render(" no lines yet"))
	}
	return b.String()
}
