package constructor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"paddock/engine"
)

// The snapshot scheduler of the leading constructor (docs/architecture.md,
// "Snapshots"): it mirrors /paddock/snapshots and /paddock/restores,
// and on each tick takes the snapshots that are due or asked for, applies
// retention and runs asked restores, at most snapshotWorkers at a time
// and one operation per deployment. Every outcome is a record in
// ZooKeeper (status, size, duration, error); failures count in
// paddock_snapshot_failures_total.

// snapshotWorkers bounds the snapshots and restores running at once.
const snapshotWorkers = 4

// restoreRepository is the node repository name a restore registers the
// source's snapshots under (the deployment's own stays as it is).
const restoreRepository = "paddock-restore"

type snapMetrics struct {
	failures    *prometheus.CounterVec
	taken       *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	duration    prometheus.Histogram
	restores    *prometheus.CounterVec
}

func newSnapMetrics(reg prometheus.Registerer) *snapMetrics {
	m := &snapMetrics{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_snapshot_failures_total",
			Help: "Snapshots that failed, by deployment (the record in paddock deployment snapshots says why)."}, []string{"deployment"}),
		taken: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_snapshots_total",
			Help: "Snapshots finished, by trigger (schedule, manual) and result."}, []string{"trigger", "result"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paddock_snapshot_last_success_timestamp_seconds",
			Help: "When the deployment's last successful snapshot ended (Unix seconds)."}, []string{"deployment"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "paddock_snapshot_duration_seconds",
			Help: "Time to take a snapshot.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}),
		restores: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paddock_snapshot_restores_total",
			Help: "Restores finished, by result."}, []string{"result"}),
	}
	reg.MustRegister(m.failures, m.taken, m.lastSuccess, m.duration, m.restores)
	return m
}

// snapshotter is the scheduler's state while leading.
type snapshotter struct {
	l             *leader
	snaps, restos *engine.TreeCache
	sem           chan struct{}

	mu sync.Mutex
	// busy are the deployments with a snapshot or restore in flight.
	busy map[string]bool
	wg   sync.WaitGroup
}

// snapshotPolicyZnode: /paddock/snapshots/<dep> (children are records).
func snapshotRecordZnode(p string) bool {
	return path.Dir(path.Dir(p)) == engine.PathSnapshots
}

// runSnapshots runs the scheduler until ctx ends (leader.run starts it).
func (l *leader) runSnapshots(ctx context.Context) {
	rn, ok := l.cfg.Nodes.(RepositoryNodes)
	if !ok {
		l.log.Info("snapshot scheduler off: the node API has no repository calls")
		return
	}
	s := &snapshotter{l: l, sem: make(chan struct{}, snapshotWorkers), busy: map[string]bool{},
		snaps:  engine.NewTreeCache(l.s, engine.PathSnapshots, engine.CacheLeaves(snapshotRecordZnode)),
		restos: engine.NewTreeCache(l.s, engine.PathRestores)}
	defer s.wg.Wait()
	for _, c := range []*engine.TreeCache{s.snaps, s.restos} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = c.Run(ctx)
		}()
	}
	for _, c := range []*engine.TreeCache{s.snaps, s.restos} {
		select {
		case <-ctx.Done():
			return
		case <-c.Ready():
		}
	}
	s.recoverInterrupted(ctx)
	tick := time.NewTicker(l.cfg.Tick)
	defer tick.Stop()
	for {
		s.sweep(ctx, rn, time.Now().UTC())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.snaps.Changed():
		case <-s.restos.Changed():
		}
	}
}

// records returns the snapshot records of dep from the cache.
func (s *snapshotter) records(dep string) []engine.SnapshotRecord {
	var out []engine.SnapshotRecord
	for _, name := range s.snaps.Children(engine.SnapshotPolicyPath(dep)) {
		n, ok := s.snaps.Get(engine.SnapshotRecordPath(dep, name))
		if !ok {
			continue
		}
		var r engine.SnapshotRecord
		if json.Unmarshal(n.Data, &r) != nil {
			continue
		}
		r.Name = name
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *snapshotter) policy(dep string) (engine.SnapshotPolicy, bool) {
	var p engine.SnapshotPolicy
	n, ok := s.snaps.Get(engine.SnapshotPolicyPath(dep))
	if ok && len(n.Data) > 0 {
		_ = json.Unmarshal(n.Data, &p)
	}
	return p, ok
}

// recoverInterrupted fails the records a former leader left running:
// whatever the node did, nobody is waiting for it any more.
func (s *snapshotter) recoverInterrupted(ctx context.Context) {
	for _, dep := range s.snaps.Children(engine.PathSnapshots) {
		for _, r := range s.records(dep) {
			if r.Status == engine.SnapshotInProgress {
				r.Status, r.Error = engine.SnapshotFailed, "interrupted: the constructor that took it stopped leading; the next one is taken on schedule"
				now := time.Now().UTC()
				r.EndedAt = &now
				s.write(ctx, engine.OpSet(engine.SnapshotRecordPath(dep, r.Name), r, engine.AnyVersion))
			}
		}
	}
	for _, dep := range s.restos.Children(engine.PathRestores) {
		if r, ok := s.restore(dep); ok && r.Status == engine.RestoreInProgress {
			r.Status = engine.RestoreRequested // asked again: restore is retried whole
			s.write(ctx, engine.OpSet(engine.RestorePath(dep), r, engine.AnyVersion))
		}
	}
}

func (s *snapshotter) restore(dep string) (engine.RestoreRecord, bool) {
	var r engine.RestoreRecord
	n, ok := s.restos.Get(engine.RestorePath(dep))
	if !ok || json.Unmarshal(n.Data, &r) != nil {
		return r, false
	}
	return r, true
}

// snapshotDecision is what to do for one deployment now.
type snapshotDecision struct {
	// Take is the snapshot to take (a requested record or a new
	// scheduled one), nil for none.
	Take *engine.SnapshotRecord
	// New is true when Take must be created (scheduled).
	New bool
}

// decideSnapshot is the schedule, pure: a requested snapshot first; else
// a scheduled one when the interval has passed since the last attempt
// (or since the deployment's creation).
func decideSnapshot(p engine.SnapshotPolicy, recs []engine.SnapshotRecord, created, now time.Time) snapshotDecision {
	last := created
	for i := range recs {
		r := recs[i]
		if r.Status == engine.SnapshotRequested {
			return snapshotDecision{Take: &r}
		}
		if r.Status == engine.SnapshotInProgress {
			return snapshotDecision{}
		}
		if r.CreatedAt.After(last) {
			last = r.CreatedAt
		}
	}
	if p.Disabled || now.Sub(last) < p.Interval() {
		return snapshotDecision{}
	}
	return snapshotDecision{New: true, Take: &engine.SnapshotRecord{Name: engine.SnapshotName(now), Repository: p.RepositoryName(),
		Trigger: engine.TriggerSchedule, Status: engine.SnapshotRequested, CreatedAt: now, CreatedBy: "constructor"}}
}

func (s *snapshotter) sweep(ctx context.Context, rn RepositoryNodes, now time.Time) {
	for _, dep := range s.l.w.deploymentIDs() {
		d, _, ok := s.l.w.deployment(dep)
		if !ok || d.Status != engine.DeploymentRunning || s.l.busy(dep) {
			continue
		}
		s.mu.Lock()
		busy := s.busy[dep]
		s.mu.Unlock()
		if busy {
			continue
		}
		if r, ok := s.restore(dep); ok && r.Status == engine.RestoreRequested {
			s.start(ctx, dep, func(ctx context.Context) { s.runRestore(ctx, rn, d, r) })
			continue
		}
		p, _ := s.policy(dep)
		dec := decideSnapshot(p, s.records(dep), d.CreatedAt, now)
		if dec.Take == nil {
			continue
		}
		rec := *dec.Take
		s.start(ctx, dep, func(ctx context.Context) { s.runSnapshot(ctx, rn, d, p, rec, dec.New) })
	}
}

// start runs fn for dep in a worker when one is free (else next tick).
func (s *snapshotter) start(ctx context.Context, dep string, fn func(ctx context.Context)) {
	select {
	case s.sem <- struct{}{}:
	default:
		return
	}
	s.mu.Lock()
	s.busy[dep] = true
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.busy, dep)
			s.mu.Unlock()
			<-s.sem
		}()
		fn(WithDeployment(ctx, dep))
	}()
}

// write is one fenced write; a failure is logged (the next sweep sees
// the record as it is).
func (s *snapshotter) write(ctx context.Context, ops ...engine.Op) bool {
	if err := s.l.s.Multi(ctx, s.l.fenced(ops...)...); err != nil {
		if ctx.Err() == nil {
			s.l.log.Warn("snapshot record not written", "path", ops[0].Path(), "err", err)
		}
		return false
	}
	return true
}

// node picks a healthy Elasticsearch node of d ("" when none): the
// replication primary (it holds every acknowledged write) when it is
// healthy, else any.
func (s *snapshotter) node(d engine.Deployment) (addr, iid string) {
	ins := esOnly(d.Instances)
	if r, _, ok := s.l.w.replication(d.ID); ok && r.Primary != "" {
		sort.SliceStable(ins, func(i, j int) bool { return ins[i].ID == r.Primary && ins[j].ID != r.Primary })
	}
	for _, in := range ins {
		st, ok := s.l.status(in.Allocator, in.ID)
		if !ok || !st.Healthy || st.State != engine.StateRunning || !s.l.alive(in.Allocator) {
			continue
		}
		if s.l.cfg.NodeLoader != nil && st.TunnelAddr != "" {
			return TunnelTarget(st.TunnelAddr, in.ID), in.ID
		}
		return st.Address, in.ID
	}
	return "", ""
}

// repository reads a platform repository and its keys.
func (s *snapshotter) repository(ctx context.Context, name string) (engine.SnapshotRepository, engine.RepositorySecret, error) {
	var r engine.SnapshotRepository
	var sec engine.RepositorySecret
	if _, err := s.l.s.GetJSON(ctx, engine.RepositoryPath(name), &r); err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			return r, sec, fmt.Errorf("snapshot repository %s does not exist: add it (paddock repository add %s …) or point the deployment at another", name, name)
		}
		return r, sec, err
	}
	if r.Type == engine.RepositoryS3 {
		if _, err := s.l.s.GetJSON(ctx, engine.RepositorySecretPath(name), &sec); err != nil {
			return r, sec, fmt.Errorf("the keys of snapshot repository %s: %w (add the repository again)", name, err)
		}
	}
	return r, sec, nil
}

// scrub removes the repository keys from a message (a node could echo
// its settings in an error).
func scrub(msg string, sec engine.RepositorySecret) string {
	for _, k := range []string{sec.SecretKey, sec.AccessKey} {
		if len(k) >= 4 {
			msg = strings.ReplaceAll(msg, k, "********")
		}
	}
	return msg
}

func (s *snapshotter) runSnapshot(ctx context.Context, rn RepositoryNodes, d engine.Deployment, p engine.SnapshotPolicy, rec engine.SnapshotRecord, create bool) {
	start := time.Now().UTC()
	rec.Status, rec.StartedAt = engine.SnapshotInProgress, &start
	addr, iid := s.node(d)
	rec.Node = iid
	recPath := engine.SnapshotRecordPath(d.ID, rec.Name)
	op := engine.OpSet(recPath, rec, engine.AnyVersion)
	if create {
		op = engine.OpCreate(recPath, rec)
		if err := s.l.s.EnsureSnapshotPolicy(ctx, d.ID); err != nil {
			s.l.log.Warn("snapshot policy znode not created", "deployment", d.ID, "err", err)
			return
		}
	}
	if !s.write(ctx, op) {
		return
	}
	log := s.l.log.With("deployment", d.ID, "snapshot", rec.Name, "trigger", rec.Trigger)
	res, err := func() (SnapshotResult, error) {
		if addr == "" {
			return SnapshotResult{}, fmt.Errorf("no healthy Elasticsearch node to take it on (see paddock deployment show %s)", d.ID)
		}
		repo, sec, err := s.repository(ctx, rec.Repository)
		if err != nil {
			return SnapshotResult{}, err
		}
		cctx, cancel := context.WithTimeout(ctx, s.l.cfg.StepTimeout)
		defer cancel()
		nodeRepo := engine.NodeRepositoryName(repo.Name)
		if err := rn.PutRepository(cctx, addr, nodeRepo, repositoryBody(repo, sec, d.ID)); err != nil {
			return SnapshotResult{}, errors.New(scrub("register the repository on the node: "+err.Error(), sec))
		}
		res, err := rn.CreateSnapshot(cctx, addr, nodeRepo, rec.Name, "")
		if err != nil {
			return res, errors.New(scrub(err.Error(), sec))
		}
		return res, nil
	}()
	if ctx.Err() != nil {
		return // leadership lost: the next leader fails the record
	}
	end := time.Now().UTC()
	rec.EndedAt, rec.DurationMS = &end, end.Sub(start).Milliseconds()
	rec.SizeBytes, rec.IncrementalBytes, rec.Files, rec.Indices = res.SizeBytes, res.IncrementalBytes, res.Files, res.Indices
	if err != nil {
		rec.Status, rec.Error = engine.SnapshotFailed, err.Error()
		s.l.m.snap.failures.WithLabelValues(d.ID).Inc()
		s.l.m.snap.taken.WithLabelValues(rec.Trigger, "failed").Inc()
		log.Warn("snapshot failed", "err", rec.Error)
	} else {
		rec.Status = engine.SnapshotSuccess
		s.l.m.snap.taken.WithLabelValues(rec.Trigger, "success").Inc()
		s.l.m.snap.lastSuccess.WithLabelValues(d.ID).Set(float64(end.UnixMilli()) / 1000)
		s.l.m.snap.duration.Observe(end.Sub(start).Seconds())
		log.Info("snapshot taken", "bytes", rec.SizeBytes, "uploaded", rec.IncrementalBytes, "duration", end.Sub(start).String())
	}
	if !s.write(ctx, engine.OpSet(recPath, rec, engine.AnyVersion)) || rec.Status != engine.SnapshotSuccess {
		return
	}
	s.retain(ctx, rn, d, p, addr, rec, end)
}

// retain deletes what the policy no longer keeps: the snapshot on the
// node, then its record.
func (s *snapshotter) retain(ctx context.Context, rn RepositoryNodes, d engine.Deployment, p engine.SnapshotPolicy, addr string, last engine.SnapshotRecord, now time.Time) {
	recs := s.records(d.ID)
	// The cache may not show the last write yet.
	for i := range recs {
		if recs[i].Name == last.Name {
			recs[i] = last
		}
	}
	drop := engine.Retain(recs, p.KeepLast, p.KeepDailyDays, now)
	byName := map[string]engine.SnapshotRecord{}
	for _, r := range recs {
		byName[r.Name] = r
	}
	for _, name := range drop {
		r := byName[name]
		if r.Status == engine.SnapshotSuccess {
			cctx, cancel := context.WithTimeout(ctx, s.l.cfg.StepTimeout)
			err := rn.DeleteSnapshot(cctx, addr, engine.NodeRepositoryName(r.Repository), name)
			cancel()
			if err != nil {
				s.l.log.Warn("retention: snapshot not deleted; retried after the next snapshot", "deployment", d.ID, "snapshot", name, "err", err)
				continue
			}
		}
		if s.write(ctx, engine.OpDelete(engine.SnapshotRecordPath(d.ID, name), engine.AnyVersion)) {
			s.l.log.Info("retention: snapshot deleted", "deployment", d.ID, "snapshot", name)
		}
	}
}

// runRestore restores a snapshot (of this or another deployment) into
// d through one of its healthy Elasticsearch nodes.
func (s *snapshotter) runRestore(ctx context.Context, rn RepositoryNodes, d engine.Deployment, r engine.RestoreRecord) {
	start := time.Now().UTC()
	r.Status, r.StartedAt = engine.RestoreInProgress, &start
	if !s.write(ctx, engine.OpSet(engine.RestorePath(d.ID), r, engine.AnyVersion)) {
		return
	}
	log := s.l.log.With("deployment", d.ID, "source", r.SourceDeployment, "snapshot", r.Snapshot)
	restored, err := func() (int, error) {
		repo, sec, err := s.repository(ctx, r.Repository)
		if err != nil {
			return 0, err
		}
		// Every node knows the source repository (a node forwards the
		// restore to its copies, which read it themselves); one restores.
		var addrs []string
		for _, in := range esOnly(d.Instances) {
			st, ok := s.l.status(in.Allocator, in.ID)
			if !ok || !st.Healthy || st.State != engine.StateRunning || !s.l.alive(in.Allocator) {
				continue
			}
			addr := st.Address
			if s.l.cfg.NodeLoader != nil && st.TunnelAddr != "" {
				addr = TunnelTarget(st.TunnelAddr, in.ID)
			}
			cctx, cancel := context.WithTimeout(ctx, s.l.cfg.StepTimeout)
			err := rn.PutRepository(cctx, addr, restoreRepository, repositoryBody(repo, sec, r.SourceDeployment))
			cancel()
			if err != nil {
				return 0, fmt.Errorf("register the source repository on %s: %s", in.ID, scrub(err.Error(), sec))
			}
			addrs = append(addrs, addr)
		}
		if len(addrs) == 0 {
			return 0, fmt.Errorf("no healthy Elasticsearch node to restore into (see paddock deployment show %s)", d.ID)
		}
		cctx, cancel := context.WithTimeout(ctx, s.l.cfg.StepTimeout)
		defer cancel()
		if err := rn.RestoreSnapshot(cctx, addrs[0], restoreRepository, r.Snapshot,
			RestoreBody{Indices: r.Indices, RenamePattern: r.RenamePattern, RenameReplacement: r.RenameReplacement}); err != nil {
			return 0, errors.New(scrub(err.Error(), sec))
		}
		n := len(addrs)
		return n, nil
	}()
	if ctx.Err() != nil {
		return
	}
	end := time.Now().UTC()
	r.EndedAt = &end
	if err != nil {
		r.Status, r.Error = engine.RestoreFailed, err.Error()
		s.l.m.snap.restores.WithLabelValues("failed").Inc()
		log.Warn("restore failed", "err", r.Error)
	} else {
		r.Status = engine.RestoreSuccess
		r.Message = fmt.Sprintf("restored snapshot %s of deployment %s into %d node(s) in %s", r.Snapshot, r.SourceDeployment, restored, end.Sub(start).Round(time.Millisecond))
		s.l.m.snap.restores.WithLabelValues("success").Inc()
		log.Info("restore done", "nodes", restored)
	}
	s.write(ctx, engine.OpSet(engine.RestorePath(d.ID), r, engine.AnyVersion))
}

// platformRecoverPrefix marks a Progress.Recover that names a platform
// repository's snapshot ("platform:<repository>/<snapshot>") rather than
// one of the plans' found-snapshots.
const platformRecoverPrefix = "platform:"

// recoverFromPlatform is the lost-deployment path of a plan: no healthy
// node holds the data, so the newest successful snapshot of the
// platform's schedule is restored into the new nodes, if it ended after
// since. It records the choice in the plan (resumable) and says which
// snapshot and how much time of writes is lost.
func (x *executor) recoverFromPlatform(ctx context.Context, since time.Time) (string, bool) {
	raw, err := x.l.s.ReadChildren(ctx, engine.SnapshotPolicyPath(x.depID))
	if err != nil {
		return "", false
	}
	var best *engine.SnapshotRecord
	for name, b := range raw {
		var r engine.SnapshotRecord
		if json.Unmarshal(b, &r) != nil || r.Status != engine.SnapshotSuccess || r.EndedAt == nil {
			continue
		}
		r.Name = name
		if best == nil || r.Name > best.Name {
			best = &r
		}
	}
	if best == nil || !best.EndedAt.After(since) {
		return "", false
	}
	x.plan.Progress.Recover = platformRecoverPrefix + best.Repository + "/" + best.Name
	taken := best.CreatedAt
	if best.StartedAt != nil {
		taken = *best.StartedAt
	}
	return fmt.Sprintf("no healthy node holds the data (every copy lost): recovering snapshot %s of repository %s, taken %s; "+
		"writes made after it are lost (up to %s)", best.Name, best.Repository, taken.Format(time.RFC3339),
		time.Since(taken).Round(time.Second)), true
}

// restorePlatform restores a platform snapshot (recoverFromPlatform's
// choice) into every new Elasticsearch node.
func (x *executor) restorePlatform(ctx context.Context, recover string, targets []engine.PlacedInstance) error {
	repoName, snap, _ := strings.Cut(strings.TrimPrefix(recover, platformRecoverPrefix), "/")
	rn, ok := x.l.cfg.Nodes.(RepositoryNodes)
	if !ok {
		return fmt.Errorf("this constructor's node API cannot restore from repository %s", repoName)
	}
	s := &snapshotter{l: x.l}
	repo, sec, err := s.repository(ctx, repoName)
	if err != nil {
		return err
	}
	for _, in := range esOnly(targets) {
		addr := x.nodeAddr(in)
		if addr == "" {
			return fmt.Errorf("new instance %s on %s is not healthy: cannot restore into it", in.ID, in.Allocator)
		}
		cctx, cancel := context.WithTimeout(ctx, x.l.cfg.StepTimeout)
		err := rn.PutRepository(cctx, addr, engine.NodeRepositoryName(repo.Name), repositoryBody(repo, sec, x.depID))
		if err == nil {
			err = rn.RestoreSnapshot(cctx, addr, engine.NodeRepositoryName(repo.Name), snap, RestoreBody{Replace: true})
		}
		cancel()
		if err != nil {
			return fmt.Errorf("restore %s into %s: %s", snap, in.ID, scrub(err.Error(), sec))
		}
	}
	return nil
}

// lastPlanEnd is when the deployment's newest finished plan ended (the
// plans' own snapshots are older); far in the future when it cannot be
// read, so that the plans' repository is tried first.
func (x *executor) lastPlanEnd(ctx context.Context) time.Time {
	never := time.Now().Add(100 * 365 * 24 * time.Hour)
	names, err := x.l.s.Children(ctx, engine.PlanHistoryPath(x.depID))
	if err != nil {
		return never
	}
	sort.Strings(names)
	if len(names) == 0 {
		return time.Time{}
	}
	var p engine.Plan
	if _, err := x.l.s.GetJSON(ctx, engine.PlanHistoryEntryPath(x.depID, names[len(names)-1]), &p); err != nil || p.EndedAt == nil {
		return never
	}
	return *p.EndedAt
}
