package tui

import (
	"time"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/tui/common"
	"paddock/tui/data"
)

// Snapshots in the console: a line in the deployment detail (last
// snapshot's age and status, schedule) and the Overview's alerts for a
// deployment whose last good snapshot is older than twice its interval
// or whose last snapshot failed. Both depend on the time, so they are
// computed when drawn, like blocked plans.

func snapshotWatched(x data.Deployment) bool {
	return x.Status == engine.DeploymentRunning || x.Status == engine.DeploymentReconfiguring
}

// snapshotAlerts are the Overview's snapshot alerts.
func snapshotAlerts(s *data.Snapshot, now time.Time) []data.Alert {
	var out []data.Alert
	for _, x := range s.Deployments {
		if !snapshotWatched(x) {
			continue
		}
		if service.SnapshotOverdue(x.SnapshotPolicy, x.LastGoodSnapshot, x.CreatedAt, now) {
			msg := "deployment " + x.Name + ": no good snapshot yet, interval " + x.SnapshotPolicy.Interval().String()
			if x.LastGoodSnapshot != nil {
				msg = "deployment " + x.Name + ": last good snapshot " + common.Age(now.Sub(snapshotTime(x.LastGoodSnapshot))) +
					" ago (over 2× its " + x.SnapshotPolicy.Interval().String() + " interval)"
			}
			if x.LastSnapshot != nil && x.LastSnapshot.Status == engine.SnapshotFailed {
				msg += "; last failed: " + x.LastSnapshot.Error
			}
			out = append(out, data.Alert{Severity: data.SevCritical, Message: msg})
			continue
		}
		if x.LastSnapshot != nil && x.LastSnapshot.Status == engine.SnapshotFailed {
			out = append(out, data.Alert{Severity: data.SevWarning, Message: "deployment " + x.Name + ": snapshot " + x.LastSnapshot.Name + " failed: " + x.LastSnapshot.Error})
		}
	}
	return out
}

func snapshotTime(r *engine.SnapshotRecord) time.Time {
	if r.EndedAt != nil {
		return *r.EndedAt
	}
	return r.CreatedAt
}

// snapshotLine is the deployment detail's snapshot line.
func snapshotLine(c *common.Common, x data.Deployment, now time.Time) string {
	st := c.Styles
	sched := "every " + x.SnapshotPolicy.Interval().String() + " to " + x.SnapshotPolicy.RepositoryName()
	if x.SnapshotPolicy.Disabled {
		sched = "schedule off"
	}
	var last string
	switch r := x.LastSnapshot; {
	case r == nil:
		last = st.Muted.Render("none yet")
	case r.Status == engine.SnapshotSuccess:
		last = st.Good.Render("success") + " " + common.Age(now.Sub(snapshotTime(r))) + " ago"
	case r.Status == engine.SnapshotFailed:
		last = st.Bad.Render("failed") + " " + common.Age(now.Sub(snapshotTime(r))) + " ago: " + r.Error
		if g := x.LastGoodSnapshot; g != nil {
			last += "; last good " + common.Age(now.Sub(snapshotTime(g))) + " ago"
		}
	default:
		last = st.Info.Render(r.Status) + " since " + common.Age(now.Sub(r.CreatedAt))
	}
	if snapshotWatched(x) && service.SnapshotOverdue(x.SnapshotPolicy, x.LastGoodSnapshot, x.CreatedAt, now) {
		last += " " + st.Bad.Render("OVERDUE")
	}
	return st.Label.Render("snapshot ") + last + st.Muted.Render("  ("+sched+")")
}
