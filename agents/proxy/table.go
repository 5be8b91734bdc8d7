package proxy

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"paddock/engine"
)

const (
	kindES = engine.KindElasticsearch
	kindKB = engine.KindKibana
)

// AllocatorView is what the proxy knows of one allocator: its zone and
// whether its alive node exists.
type AllocatorView struct {
	Zone  string `json:"zone"`
	Alive bool   `json:"alive"`
}

// Snapshot is the input of a routing table: the routes and the
// allocators, as read from ZooKeeper or from the disk cache.
type Snapshot struct {
	Routes     map[string]engine.Route  `json:"routes"`
	Allocators map[string]AllocatorView `json:"allocators"`
	// Filters are the traffic filter rule sets (by id).
	Filters map[string]engine.TrafficFilterRuleSet `json:"filters,omitempty"`
	// Domain is the platform's domain when the proxy follows it.
	Domain string `json:"domain,omitempty"`
	// Source is "zookeeper" or "disk".
	Source  string    `json:"source"`
	SavedAt time.Time `json:"saved_at"`
}

// table is one immutable routing table. Requests load it through an
// atomic pointer, so each sees one whole version; changed is closed when
// the next version replaces it (held requests of paused routes wait on it).
type table struct {
	routes  map[string]*route
	version int64
	source  string
	built   time.Time
	changed chan struct{}
	// zonesDown lists zones with known allocators, none alive.
	zonesDown map[string]bool
}

// route is a deployment's entry in one table version.
type route struct {
	id     string
	paused bool
	gen    int64
	es     []*member
	kb     []*member
	m      *routeMetrics
	// filter, when set, admits only the sources its rule sets allow.
	filter *filter
}

// member is a backend as one route version sees it: with the zone
// availability computed when the table was built.
type member struct {
	b         *backend
	instance  string
	zone      string
	allocator string
	// avoid is true when the backend's allocator or zone is known down:
	// it gets traffic only if no other backend is up.
	avoid bool
}

func (r *route) members(kind string) []*member {
	if kind == kindKB {
		return r.kb
	}
	return r.es
}

// zoneState derives per-allocator and per-zone availability.
func zoneState(allocs map[string]AllocatorView) (zonesDown map[string]bool) {
	total := map[string]int{}
	alive := map[string]int{}
	for _, a := range allocs {
		if a.Zone == "" {
			continue
		}
		total[a.Zone]++
		if a.Alive {
			alive[a.Zone]++
		}
	}
	zonesDown = map[string]bool{}
	for z, n := range total {
		if n > 0 && alive[z] == 0 {
			zonesDown[z] = true
		}
	}
	return zonesDown
}

// avoidBackend says whether a backend is in a zone (or on an allocator)
// known to be down. Unknown allocators are not avoided: the allocator
// view may lag the routes.
func avoidBackend(be engine.Backend, allocs map[string]AllocatorView, zonesDown map[string]bool) bool {
	if a, ok := allocs[be.Allocator]; ok && !a.Alive {
		return true
	}
	return be.Zone != "" && zonesDown[be.Zone]
}

// pick chooses the backend with the fewest outstanding requests among
// those that are up and not avoided, skipping excluded ones; ties rotate
// from start. It falls back to avoided (zone down) backends that are up
// when nothing else is left. It returns nil when every backend is down.
// It is pure apart from reading the backends' atomic counters.
func pick(ms []*member, start uint32, exclude *backend) *member {
	n := len(ms)
	if n == 0 {
		return nil
	}
	var best, fallback *member
	var bestOut, fbOut int64
	for i := 0; i < n; i++ {
		m := ms[(int(start)+i)%n]
		if m.b == exclude || m.b.down.Load() {
			continue
		}
		out := m.b.outstanding.Load()
		if m.avoid {
			if fallback == nil || out < fbOut {
				fallback, fbOut = m, out
			}
			continue
		}
		if best == nil || out < bestOut {
			best, bestOut = m, out
		}
	}
	if best != nil {
		return best
	}
	return fallback
}

// whyNone explains why no backend of a route could be chosen.
func whyNone(id, kind string, ms []*member) string {
	if len(ms) == 0 {
		return fmt.Sprintf("deployment [%s] has no %s node yet: wait for its plan to finish (paddock deployment show %s)", id, kind, id)
	}
	var parts []string
	for _, m := range ms {
		r := m.b.reason()
		if r == "" {
			r = "down"
		}
		parts = append(parts, fmt.Sprintf("%s (%s, zone %s): %s", m.instance, m.b.addr, m.zone, r))
	}
	sort.Strings(parts)
	return fmt.Sprintf("no healthy %s node for deployment [%s]: %s; the proxy probes them and resumes as soon as one answers", kind, id, strings.Join(parts, "; "))
}
