package service

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"paddock/engine"
)

// Check severities, from best to worst.
const (
	SeverityOK       = "ok"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Check is one of the doctor's findings: what was checked, what was
// found, and what to do about it.
type Check struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Title    string `json:"title"`
	Detail   string `json:"detail"`
	// Action is the operator's next step (empty when all is well).
	Action string `json:"action,omitempty"`
	// Items name what the finding is about (deployments, allocators,
	// servers, files).
	Items []string `json:"items,omitempty"`
}

// DoctorReport is every check, worst first; Status is the worst
// severity.
type DoctorReport struct {
	CheckedAt time.Time `json:"checked_at"`
	Status    string    `json:"status"`
	Checks    []Check   `json:"checks"`
}

// Doctor thresholds.
const (
	DoctorAllocatorFull = 0.90
	DoctorCertDays      = 7
	DoctorCADays        = 30
	// DoctorPendingPlanAge: a plan no constructor picked up for this long.
	DoctorPendingPlanAge = 2 * time.Minute
	// DoctorProxyStale: a proxy record not refreshed for this long.
	DoctorProxyStale = 2 * time.Minute
	// DoctorZKLag: a follower this many transactions behind the leader.
	DoctorZKLag = 1000
)

// WithCertDir makes the doctor check the certificates (*.crt, PEM)
// under dir: this host's role certificates (<state-dir>/tls).
func WithCertDir(dir string) Option { return func(s *Service) { s.certDir = dir } }

// Doctor runs the checks an experienced operator runs by hand:
// ZooKeeper quorum and follower lag, the constructor leader, single-zone
// deployments, allocators over 90% full, certificates expiring within 7
// days (the CA within 30), plans past their deadline, proxies whose
// route cache is stale, version skew between agents, snapshots, and
// zone-loss headroom. A check that cannot run says so as a warning; only
// an unreachable ZooKeeper fails the whole call.
func (s *Service) Doctor(ctx context.Context) (DoctorReport, error) {
	now := s.now()
	rep := DoctorReport{CheckedAt: now}
	deps, err := s.ListDeployments(ctx, false)
	if err != nil {
		return rep, err
	}
	inv, err := s.store.Inventory(ctx)
	if err != nil {
		return rep, storeErr(err, "allocator", "inventory")
	}
	sum, err := s.store.Summary(ctx)
	if err != nil {
		return rep, storeErr(err, "platform", "summary")
	}
	rep.Checks = append(rep.Checks,
		s.checkZooKeeper(ctx),
		checkLeader(sum),
		checkSingleZone(deps),
		checkFull(inv),
		s.checkCA(ctx, now),
		s.checkCerts(now),
		checkPlans(deps, now),
		s.checkProxies(ctx, now),
		checkVersions(inv),
		checkSnapshots(),
		s.checkHeadroom(ctx),
	)
	rank := map[string]int{SeverityCritical: 0, SeverityWarning: 1, SeverityOK: 2}
	sort.SliceStable(rep.Checks, func(i, j int) bool { return rank[rep.Checks[i].Severity] < rank[rep.Checks[j].Severity] })
	rep.Status = SeverityOK
	if len(rep.Checks) > 0 {
		rep.Status = rep.Checks[0].Severity
	}
	return rep, nil
}

// zkServer is one server's srvr answer.
type zkServer struct {
	addr, mode string
	zxid       int64
	err        error
}

func parseSrvr(out string) (mode string, zxid int64) {
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "Mode":
			mode = v
		case "Zxid":
			zxid, _ = strconv.ParseInt(strings.TrimPrefix(v, "0x"), 16, 64)
		}
	}
	return mode, zxid
}

func (s *Service) checkZooKeeper(ctx context.Context) Check {
	c := Check{ID: "zookeeper", Title: "ZooKeeper quorum and follower lag (srvr on every server of the connection string)"}
	var servers []zkServer
	for _, addr := range s.store.ServerList() {
		zs := zkServer{addr: addr}
		out, err := s.store.FourLetter(ctx, addr, "srvr")
		if err == nil {
			zs.mode, zs.zxid = parseSrvr(out)
			if zs.mode == "" {
				err = fmt.Errorf("no Mode in its answer (%q): it is not serving", strings.TrimSpace(out))
			}
		}
		zs.err = err
		servers = append(servers, zs)
	}
	var down, lagging []string
	var leader *zkServer
	for i := range servers {
		if servers[i].err != nil {
			down = append(down, servers[i].addr+": "+servers[i].err.Error())
		} else if servers[i].mode == "leader" || servers[i].mode == "standalone" {
			leader = &servers[i]
		}
	}
	if leader != nil {
		for _, zs := range servers {
			// The counter is the low 32 bits of a zxid; the epoch the high.
			if zs.err == nil && zs.mode == "follower" && zs.zxid>>32 == leader.zxid>>32 && (leader.zxid&0xffffffff)-(zs.zxid&0xffffffff) > DoctorZKLag {
				lagging = append(lagging, fmt.Sprintf("%s: %d transactions behind the leader", zs.addr, (leader.zxid&0xffffffff)-(zs.zxid&0xffffffff)))
			}
		}
	}
	n := len(servers)
	up := n - len(down)
	switch {
	case up == 0:
		c.Severity, c.Detail = SeverityCritical, "no ZooKeeper server of the connection string answers"
		c.Action = "start ZooKeeper (`scripts/zk.sh start`, `paddock up`) or fix --zk; if its data is lost, restore the platform's backup (`paddock platform restore`)"
	case n > 1 && up <= n/2:
		c.Severity, c.Detail = SeverityCritical, fmt.Sprintf("%d of %d ZooKeeper servers answer: the ensemble has lost its quorum", up, n)
		c.Action = "start the stopped servers; if they cannot come back, follow the README's lost-quorum procedure"
	case len(down) > 0:
		c.Severity, c.Detail = SeverityWarning, fmt.Sprintf("%d of %d ZooKeeper servers answer: the ensemble survives no further loss", up, n)
		c.Action = "start the stopped server(s) (`paddock zookeeper status`) or replace them (`paddock director` grows the ensemble)"
	case len(lagging) > 0:
		c.Severity, c.Detail = SeverityWarning, fmt.Sprintf("%d follower(s) more than %d transactions behind the leader", len(lagging), DoctorZKLag)
		c.Action = "check those servers' disks and network; a follower that stays behind slows every write"
	case leader == nil && n > 1:
		c.Severity, c.Detail = SeverityWarning, "every server answers but none says it leads"
		c.Action = "check the servers' logs: the ensemble may be electing"
	default:
		c.Severity = SeverityOK
		modes := make([]string, len(servers))
		for i, zs := range servers {
			modes[i] = zs.addr + " " + zs.mode
		}
		c.Detail = strings.Join(modes, ", ")
	}
	c.Items = append(down, lagging...)
	return c
}

func checkLeader(sum engine.PlatformSummary) Check {
	c := Check{ID: "constructor", Title: "A constructor leads (plans run, lost allocators are replaced)", Severity: SeverityOK}
	if sum.ConstructorLeader == "" {
		c.Severity, c.Detail = SeverityCritical, "no constructor holds the leadership: no plan runs"
		c.Action = "start a constructor (`paddock constructor`, or `paddock up` again)"
		return c
	}
	c.Detail = "leader: " + sum.ConstructorLeader
	return c
}

func checkSingleZone(deps []DeploymentView) Check {
	c := Check{ID: "single-zone", Title: "Deployments in more than one zone (a zone's loss keeps them serving)", Severity: SeverityOK}
	for _, d := range deps {
		if d.Status == engine.DeploymentRunning && d.Spec.Elasticsearch.Zones == 1 {
			c.Items = append(c.Items, d.ID+" ("+d.Name+")")
		}
	}
	if len(c.Items) == 0 {
		c.Detail = "every running deployment spans two zones or more"
		return c
	}
	c.Severity = SeverityWarning
	c.Detail = fmt.Sprintf("%d running deployment(s) in one zone: losing it stops them", len(c.Items))
	c.Action = "scale them to two or three zones where they matter (`paddock deployment update ID` with elasticsearch.zones)"
	return c
}

func checkFull(inv []engine.InventoryAllocator) Check {
	c := Check{ID: "allocators-full", Title: fmt.Sprintf("Allocators below %.0f%% of their memory", DoctorAllocatorFull*100), Severity: SeverityOK}
	for _, a := range inv {
		capMB := a.CapacityMB()
		if capMB > 0 && float64(a.AssignedMB()) > DoctorAllocatorFull*float64(capMB) {
			c.Items = append(c.Items, fmt.Sprintf("%s (%s): %d of %d MB", a.ID(), a.Allocator.Zone, a.AssignedMB(), capMB))
		}
	}
	if len(c.Items) == 0 {
		c.Detail = fmt.Sprintf("%d allocator(s), none over %.0f%%", len(inv), DoctorAllocatorFull*100)
		return c
	}
	c.Severity = SeverityWarning
	c.Detail = fmt.Sprintf("%d allocator(s) over %.0f%% full: new plans and replacements may find no room", len(c.Items), DoctorAllocatorFull*100)
	c.Action = "add allocators or capacity (`paddock allocator` on a new host), or vacate some deployments elsewhere (`paddock allocator vacate ID`)"
	return c
}

// certExpiry reads the certificates in a PEM bundle.
func certExpiry(pemBytes []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, pemBytes = pem.Decode(pemBytes)
		if b == nil {
			return out
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

func expiryCheck(c Check, now time.Time, days int, found []string, soon map[string]time.Time) Check {
	c.Severity = SeverityOK
	var expired bool
	names := make([]string, 0, len(soon))
	for n := range soon {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		at := soon[n]
		c.Items = append(c.Items, fmt.Sprintf("%s: expires %s", n, at.UTC().Format(time.RFC3339)))
		expired = expired || !at.After(now)
	}
	switch {
	case expired:
		c.Severity, c.Detail = SeverityCritical, "a certificate has expired: what uses it can no longer connect"
	case len(soon) > 0:
		c.Severity, c.Detail = SeverityWarning, fmt.Sprintf("%d certificate(s) expire within %d days", len(soon), days)
	default:
		c.Detail = fmt.Sprintf("%d certificate(s), none expiring within %d days", len(found), days)
	}
	return c
}

func (s *Service) checkCA(ctx context.Context, now time.Time) Check {
	c := Check{ID: "ca", Title: fmt.Sprintf("The platform CA is valid for more than %d days", DoctorCADays)}
	b, _, err := s.store.Get(ctx, engine.PathCA)
	if err != nil {
		c.Severity, c.Detail = SeverityOK, "the platform has no CA in ZooKeeper (no director): nothing to check"
		return c
	}
	soon := map[string]time.Time{}
	var found []string
	for _, cert := range certExpiry(b) {
		name := "CA " + cert.Subject.CommonName
		found = append(found, name)
		if cert.NotAfter.Before(now.AddDate(0, 0, DoctorCADays)) {
			soon[name] = cert.NotAfter
		}
	}
	c = expiryCheck(c, now, DoctorCADays, found, soon)
	if c.Severity != SeverityOK {
		c.Action = "rotate the CA before it expires: every certificate it signed stops being trusted with it (see the README, Security)"
	}
	return c
}

func (s *Service) checkCerts(now time.Time) Check {
	c := Check{ID: "certificates", Title: fmt.Sprintf("This host's role certificates are valid for more than %d days", DoctorCertDays)}
	if s.certDir == "" {
		c.Severity, c.Detail = SeverityOK, "no certificate directory given to this API: nothing to check"
		return c
	}
	files, _ := filepath.Glob(filepath.Join(s.certDir, "*.crt"))
	soon := map[string]time.Time{}
	var found []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, cert := range certExpiry(b) {
			if cert.IsCA {
				continue
			}
			found = append(found, f)
			if cert.NotAfter.Before(now.AddDate(0, 0, DoctorCertDays)) {
				soon[filepath.Base(f)] = cert.NotAfter
			}
		}
	}
	c = expiryCheck(c, now, DoctorCertDays, found, soon)
	if c.Severity != SeverityOK {
		c.Action = "renew them: agents renew at two thirds of their life through the director's enrollment endpoint; check that it runs, or re-issue (`paddock up`, `paddock <agent> --join`)"
	}
	return c
}

func checkPlans(deps []DeploymentView, now time.Time) Check {
	c := Check{ID: "plans", Title: "Plans within their step deadlines, picked up by a constructor", Severity: SeverityOK}
	stuck := false
	for _, d := range deps {
		p := d.PendingPlan
		if p == nil {
			continue
		}
		if p.Status == engine.PlanPending && now.Sub(p.CreatedAt) > DoctorPendingPlanAge {
			stuck = true
			c.Items = append(c.Items, fmt.Sprintf("%s: plan %s (%s) pending for %s, not picked up", d.ID, p.ID, p.Action, now.Sub(p.CreatedAt).Round(time.Second)))
		}
		for _, st := range p.Steps {
			if st.Blocked(now) {
				item := fmt.Sprintf("%s: plan %s (%s) step %q past its deadline by %s", d.ID, p.ID, p.Action, st.Name, now.Sub(*st.Deadline).Round(time.Second))
				if st.Waiting != "" {
					item += ": " + st.Waiting
				}
				c.Items = append(c.Items, item)
			}
		}
	}
	switch {
	case stuck:
		c.Severity, c.Detail = SeverityCritical, "plans wait for a constructor"
		c.Action = "check the constructor (`paddock status`): it may be down or unable to reach ZooKeeper"
	case len(c.Items) > 0:
		c.Severity, c.Detail = SeverityWarning, fmt.Sprintf("%d plan step(s) past their deadline", len(c.Items))
		c.Action = "see what each waits for (`paddock deployment activity ID`, `paddock deployment logs ID`); fix it, or cancel the plan (`paddock deployment cancel ID`)"
	default:
		c.Detail = "no plan step past its deadline"
	}
	return c
}

func (s *Service) checkProxies(ctx context.Context, now time.Time) Check {
	c := Check{ID: "proxies", Title: "Proxies serve a fresh route cache", Severity: SeverityOK}
	proxies, err := s.ListProxies(ctx)
	if err != nil {
		c.Severity, c.Detail = SeverityWarning, "cannot list proxies: "+err.Error()
		return c
	}
	routes, err := s.store.Children(ctx, engine.PathRoutes)
	if err != nil {
		routes = nil
	}
	for _, p := range proxies {
		switch {
		case p.State != "serving":
			c.Items = append(c.Items, fmt.Sprintf("%s: %s (its ZooKeeper session is down: it serves routes from its cache)", p.ID, p.State))
		case now.Sub(p.UpdatedAt) > DoctorProxyStale:
			c.Items = append(c.Items, fmt.Sprintf("%s: record not refreshed for %s", p.ID, now.Sub(p.UpdatedAt).Round(time.Second)))
		case routes != nil && p.Routes != len(routes) && now.Sub(p.UpdatedAt) < DoctorProxyStale/4:
			// Counts differ for a moment after every change; a recent record
			// that still differs is worth a look, not an alarm.
			c.Items = append(c.Items, fmt.Sprintf("%s: %d routes cached, %d in ZooKeeper", p.ID, p.Routes, len(routes)))
		}
	}
	switch {
	case len(proxies) == 0:
		c.Severity, c.Detail = SeverityWarning, "no proxy is registered: deployments are unreachable by name"
		c.Action = "start a proxy (`paddock proxy`)"
	case len(c.Items) > 0:
		c.Severity, c.Detail = SeverityWarning, fmt.Sprintf("%d of %d proxies may route from a stale cache", len(c.Items), len(proxies))
		c.Action = "check those proxies' ZooKeeper connection and logs (`/readyz` on their --metrics-addr); restart one that stays stale"
	default:
		c.Detail = fmt.Sprintf("%d proxies, routes in step with ZooKeeper", len(proxies))
	}
	return c
}

func checkVersions(inv []engine.InventoryAllocator) Check {
	c := Check{ID: "version-skew", Title: "Agents run the same paddock version", Severity: SeverityOK}
	by := map[string][]string{}
	for _, a := range inv {
		if a.Alive == nil || a.Allocator.Version == "" {
			continue
		}
		by[a.Allocator.Version] = append(by[a.Allocator.Version], a.ID())
	}
	if len(by) <= 1 {
		c.Detail = "the allocators run one version"
		for v := range by {
			c.Detail = "every allocator runs " + v
		}
		return c
	}
	vs := make([]string, 0, len(by))
	for v, ids := range by {
		sort.Strings(ids)
		vs = append(vs, v)
		c.Items = append(c.Items, fmt.Sprintf("%s: %s", v, strings.Join(ids, ", ")))
	}
	sort.Strings(vs)
	sort.Strings(c.Items)
	c.Severity = SeverityWarning
	c.Detail = fmt.Sprintf("allocators run %d versions (%s)", len(by), strings.Join(vs, ", "))
	c.Action = "finish the upgrade: restart the older allocators with the new binary, one zone at a time"
	return c
}

func checkSnapshots() Check {
	return Check{ID: "snapshots", Title: "Scheduled snapshots succeed", Severity: SeverityOK,
		Detail: "this platform takes no scheduled snapshots yet: nothing to check"}
}

func (s *Service) checkHeadroom(ctx context.Context) Check {
	c := Check{ID: "headroom", Title: "The platform survives the loss of any one zone (placement dry-run)", Severity: SeverityOK}
	rep, err := s.Headroom(ctx)
	if err != nil {
		c.Severity, c.Detail = SeverityWarning, "cannot compute the headroom: "+err.Error()
		return c
	}
	for _, z := range rep.Zones {
		if !z.Survivable {
			c.Items = append(c.Items, fmt.Sprintf("%s: %d deployment(s) could not be re-placed, %d MB short", z.Zone, len(z.Unplaceable), z.ShortfallMB))
		}
	}
	if len(c.Items) > 0 {
		c.Severity, c.Detail = SeverityWarning, fmt.Sprintf("losing %d zone(s) would leave deployments without room", len(c.Items))
		c.Action = "add capacity in the other zones (`paddock platform headroom` says how much)"
		return c
	}
	c.Detail = fmt.Sprintf("each of %d zone(s) could be lost", len(rep.Zones))
	return c
}
