package tui

import (
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"

	"paddock/engine"
	"paddock/themes"
	"paddock/tui/data"
)

func itoa(n int) string { return strconv.Itoa(n) }

func size(mb int) string {
	if mb <= 0 {
		return "-"
	}
	return engine.FormatSize(mb)
}

// healthStyle colours a deployment health word.
func healthStyle(st themes.Styles, h string) lipgloss.Style {
	switch h {
	case data.HealthHealthy:
		return st.Good
	case data.HealthDegraded, data.HealthPending, data.HealthDeleting:
		return st.Warn
	case data.HealthDown:
		return st.Bad
	}
	return st.Row
}

// healthMark is a one-cell mark that reads without colour too.
func healthMark(h string) string {
	switch h {
	case data.HealthHealthy:
		return "●"
	case data.HealthDegraded:
		return "◐"
	case data.HealthDown:
		return "✗"
	}
	return "◌"
}

func allocStyle(st themes.Styles, state string) lipgloss.Style {
	switch state {
	case "ok":
		return st.Good
	case "maintenance":
		return st.Warn
	}
	return st.Bad
}

func instState(s *engine.InstanceStatus) (string, bool) {
	if s == nil {
		return "pending", false
	}
	return s.State, s.Healthy
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func section(st themes.Styles, title string, w int) string {
	t := " " + title + " "
	n := max(0, w-lipgloss.Width(t)-2)
	return st.Muted.Render("─") + st.Title.Render(t) + st.Muted.Render(strings.Repeat("─", n))
}

// endpoint is the URL clients use for a deployment through a proxy.
func endpoint(s *data.Snapshot, id string) string {
	domain := s.Platform.Domain
	if domain == "" {
		domain = "localhost"
	}
	port := "9200"
	if len(s.Proxies) > 0 {
		if i := strings.LastIndex(s.Proxies[0].HTTPAddr, ":"); i >= 0 {
			port = s.Proxies[0].HTTPAddr[i+1:]
		}
	}
	return "http://" + id + "." + domain + ":" + port
}

// kindShort keeps instance kinds narrow in tables.
func kindShort(k string) string {
	if k == engine.KindElasticsearch {
		return "es"
	}
	return k
}
