package constructor

import "time"

// sweep walks a list (every deployment with a routing) at most limit
// ids per call instead of all of it at once: a round takes the list
// when the last round is done and at least period has passed since it
// started. A platform of up to limit deployments is swept whole every
// period as before; a larger one in rounds of several calls, so the
// sweep's cost per call stops growing with the platform. What changed
// is looked at apart, at once, from the world's events: the sweep is
// the safety net.
type sweep struct {
	period time.Duration
	limit  int

	todo  []string
	start time.Time
	began bool
}

// next returns the next slice of the round (nil between rounds) and
// whether a round started with it.
func (s *sweep) next(now time.Time, list func() []string) (ids []string, started bool) {
	if len(s.todo) == 0 {
		if s.began && now.Sub(s.start) < s.period {
			return nil, false
		}
		s.began, s.start, started = true, now, true
		s.todo = list()
	}
	n := min(len(s.todo), max(1, s.limit))
	ids, s.todo = s.todo[:n], s.todo[n:]
	return ids, started
}
