package shard

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/blevesearch/bleve/v2/document"
	bolt "go.etcd.io/bbolt"

	"paddock/agents/node/eserr"
	"paddock/agents/node/mapping"
)

// Kind is a write's kind.
type Kind int

// Write kinds.
const (
	OpIndex  Kind = iota // create or replace
	OpCreate             // fail if the document exists
	OpUpdate             // read-modify-write through Op.Update
	OpDelete
)

// Version types.
const (
	VersionInternal    = "internal"
	VersionExternal    = "external"
	VersionExternalGTE = "external_gte"
)

// Op is one write.
type Op struct {
	Kind    Kind
	ID      string
	Source  []byte         // Index, Create: the document as sent
	Parsed  map[string]any // Source decoded (optional: decoded here if nil)
	Routing string
	// Optimistic concurrency: IfSeqNo and IfPrimaryTerm together, or
	// Version with VersionType external / external_gte.
	IfSeqNo, IfPrimaryTerm *int64
	Version                int64
	VersionType            string
	// Update computes the new source from the current one (nil, false
	// when the document is missing). noop leaves the document as it is.
	Update func(current []byte, exists bool) (next []byte, noop bool, err error)

	decodeErr error // Source is not a JSON object
}

// Result is one write's outcome.
type Result struct {
	Result string // created, updated, deleted, not_found, noop
	Meta
	Err    error  // an Elasticsearch error for this write only
	Source []byte // the document after an update (for "get" in _update)
}

type request struct {
	ops  []Op
	repl []ReplicaOp // operations from the primary (ApplyReplica)
	res  []Result
	err  error
	done chan struct{}
}

// Write applies ops in order in one group commit and returns their
// results once durable. The error is for the storage itself (the whole
// request failed); per-write failures are in the results.
func (s *Shard) Write(ctx context.Context, ops []Op) ([]Result, error) {
	for i := range ops {
		if ops[i].Parsed == nil && (ops[i].Kind == OpIndex || ops[i].Kind == OpCreate) {
			ops[i].Parsed, ops[i].decodeErr = mapping.DecodeSource(ops[i].Source)
		}
	}
	r := &request{ops: ops, done: make(chan struct{})}
	select {
	case s.queue <- r:
	case <-s.stop:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	<-r.done // once queued, the commit is not abandoned half-way
	return r.res, r.err
}

func (s *Shard) committer() {
	defer s.done.Done()
	for {
		var batch []*request
		select {
		case r := <-s.queue:
			batch = append(batch, r)
		case <-s.stop:
			// Answer what is queued, then stop.
			for {
				select {
				case r := <-s.queue:
					s.commit([]*request{r})
				default:
					return
				}
			}
		}
	drain:
		for len(batch) < 256 {
			select {
			case r := <-s.queue:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		s.commit(batch)
	}
}

type staged struct {
	id  string
	doc *document.Document // nil: delete
	seq int64
}

// commit applies a group of requests in one bbolt transaction.
func (s *Shard) commit(batch []*request) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	m := s.Mapping()
	seq := s.seqNo
	var changes []staged
	for _, r := range batch {
		r.res = make([]Result, len(r.ops))
	}
	lastTerm := int64(0)
	err := s.db.Update(func(tx *bolt.Tx) error {
		docs, tombs, ops := tx.Bucket(bucketDocs), tx.Bucket(bucketTombs), tx.Bucket(bucketOps)
		for _, r := range batch {
			for i := range r.repl {
				ch, nm, err := s.applyReplica(docs, tombs, ops, m, &r.repl[i], &seq)
				if err != nil {
					return err
				}
				if nm != nil {
					m = nm
				}
				if ch != nil {
					changes = append(changes, *ch)
					lastTerm = max(lastTerm, r.repl[i].PrimaryTerm)
				}
			}
			before := seq
			for i := range r.ops {
				res, ch, nm, err := s.apply(tx, docs, tombs, ops, m, &r.ops[i], &seq)
				if err != nil {
					return err
				}
				r.res[i] = res
				if nm != nil {
					m = nm
				}
				if ch != nil {
					changes = append(changes, *ch)
				}
			}
			if seq > before {
				lastTerm = max(lastTerm, s.term)
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := s.saveReplState(meta, lastTerm); err != nil {
			return err
		}
		if m != s.Mapping() {
			b, _ := json.Marshal(m)
			if err := meta.Put(keyMapping, b); err != nil {
				return err
			}
		}
		return meta.Put(keySeq, i64(seq))
	})
	if err != nil {
		s.log.Error("write failed", "err", err)
		for _, r := range batch {
			r.res, r.err = nil, err
			close(r.done)
		}
		return
	}
	s.seqNo = seq
	s.maxSeq.Store(seq)
	if m != s.Mapping() {
		s.state.Lock()
		s.mapping = m
		s.state.Unlock()
	}
	s.pmu.Lock()
	for _, c := range changes {
		s.pending[c.id] = pendingWrite{doc: c.doc, seq: c.seq}
		if c.seq > s.pendingSeq {
			s.pendingSeq = c.seq
		}
	}
	s.pmu.Unlock()
	for _, r := range batch {
		close(r.done)
	}
}

func conflict(index, id, format string, args ...any) Result {
	return Result{Err: eserr.VersionConflict(index, id, format, args...)}
}

// apply checks and stages one write. A non-nil error aborts the whole
// transaction (storage failure); per-write refusals are in the Result.
func (s *Shard) apply(tx *bolt.Tx, docs, tombs, ops *bolt.Bucket, m *mapping.Mapping, op *Op, seq *int64) (Result, *staged, *mapping.Mapping, error) {
	if op.decodeErr != nil {
		return Result{Err: op.decodeErr}, nil, nil, nil
	}
	key := []byte(op.ID)
	var cur Meta
	var curSrc []byte
	exists := false
	if rec := docs.Get(key); rec != nil {
		exists = true
		cur, curSrc = decodeRecord(rec)
	} else if t := tombs.Get(key); t != nil {
		cur.Version, cur.SeqNo, cur.PrimaryTerm = geti64(t[0:8]), geti64(t[8:16]), s.term
	}
	if op.IfSeqNo != nil {
		term := int64(0)
		if op.IfPrimaryTerm != nil {
			term = *op.IfPrimaryTerm
		}
		if !exists {
			return conflict(s.name, op.ID, "required seqNo [%d], primary term [%d] but no document was found", *op.IfSeqNo, term), nil, nil, nil
		}
		if cur.SeqNo != *op.IfSeqNo || cur.PrimaryTerm != term {
			return conflict(s.name, op.ID, "required seqNo [%d], primary term [%d]. current document has seqNo [%d] and primary term [%d]",
				*op.IfSeqNo, term, cur.SeqNo, cur.PrimaryTerm), nil, nil, nil
		}
	}
	if op.Kind == OpCreate && exists {
		return conflict(s.name, op.ID, "document already exists (current version [%d])", cur.Version), nil, nil, nil
	}
	version := cur.Version + 1
	if !exists && cur.Version == 0 {
		version = 1
	}
	switch op.VersionType {
	case VersionExternal:
		if (exists || cur.Version > 0) && op.Version <= cur.Version {
			return conflict(s.name, op.ID, "current version [%d] is higher or equal to the one provided [%d]", cur.Version, op.Version), nil, nil, nil
		}
		version = op.Version
	case VersionExternalGTE:
		if (exists || cur.Version > 0) && op.Version < cur.Version {
			return conflict(s.name, op.ID, "current version [%d] is higher than the one provided [%d]", cur.Version, op.Version), nil, nil, nil
		}
		version = op.Version
	}
	if op.Kind == OpDelete {
		if !exists {
			return Result{Result: "not_found", Meta: Meta{Version: version, SeqNo: -1, PrimaryTerm: s.term}}, nil, nil, nil
		}
		*seq++
		meta := Meta{Version: version, SeqNo: *seq, PrimaryTerm: s.term}
		if err := docs.Delete(key); err != nil {
			return Result{}, nil, nil, err
		}
		if err := tombs.Put(key, append(i64(version), i64(*seq)...)); err != nil {
			return Result{}, nil, nil, err
		}
		if err := ops.Put(i64(*seq), key); err != nil {
			return Result{}, nil, nil, err
		}
		return Result{Result: "deleted", Meta: meta}, &staged{id: op.ID, seq: *seq}, nil, nil
	}
	src, parsed := op.Source, op.Parsed
	if op.Kind == OpUpdate {
		next, noop, err := op.Update(curSrc, exists)
		if err != nil {
			return Result{Err: err}, nil, nil, nil
		}
		if noop {
			return Result{Result: "noop", Meta: cur, Source: curSrc}, nil, nil, nil
		}
		src = next
		if parsed, err = mapping.DecodeSource(src); err != nil {
			return Result{Err: err}, nil, nil, nil
		}
	}
	doc, nm, err := m.Document(op.ID, parsed)
	if err != nil {
		return Result{Err: err}, nil, nil, nil
	}
	if nm == m {
		nm = nil
	}
	*seq++
	meta := Meta{Version: version, SeqNo: *seq, PrimaryTerm: s.term, Routing: op.Routing}
	if err := docs.Put(key, encodeRecord(meta, src)); err != nil {
		return Result{}, nil, nil, err
	}
	if err := tombs.Delete(key); err != nil {
		return Result{}, nil, nil, err
	}
	if err := ops.Put(i64(*seq), key); err != nil {
		return Result{}, nil, nil, err
	}
	result := "created"
	if exists {
		result = "updated"
	}
	return Result{Result: result, Meta: meta, Source: src}, &staged{id: op.ID, doc: doc, seq: *seq}, nm, nil
}

// Refresh makes every committed write searchable.
func (s *Shard) Refresh(ctx context.Context) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.pmu.Lock()
	pending, upTo := s.pending, s.pendingSeq
	s.pending = map[string]pendingWrite{}
	s.pmu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	if err := s.applyPending(pending, upTo); err != nil {
		// Put the writes back for the next attempt (newer ones win).
		s.pmu.Lock()
		for id, w := range pending {
			if _, newer := s.pending[id]; !newer {
				s.pending[id] = w
			}
		}
		s.pmu.Unlock()
		return eserr.New(http.StatusInternalServerError, "refresh_failed_engine_exception", "refresh of [%s] failed: %v", s.name, err)
	}
	s.refreshedSeq.Store(upTo)
	s.refreshedMu.Lock()
	close(s.refreshedCh)
	s.refreshedCh = make(chan struct{})
	s.refreshedMu.Unlock()
	return nil
}

// refreshBatch is the most writes one bleve batch of a refresh holds.
// bleve analyses a whole batch before it builds the batch's segment, so
// a batch holds every document's tokens (10-20 KB for a small log line)
// at once: a refresh of all a second's writes in one batch grew the
// heap with the indexing rate (230 MB live at 10,000 documents in
// BenchmarkBulkHTTP), and with it the garbage collector's work and the
// fresh pages the process touches. Batches of 1,000 are what bleve's own
// benchmark and its users do.
const refreshBatch = 1000

// pendingWrite is a committed write not yet in bleve: the document
// (nil: a delete) and the seq_no of the write that made it.
type pendingWrite struct {
	doc *document.Document
	seq int64
}

// applyPending applies the pending writes to bleve in batches of at most
// refreshBatch, in the order they were committed (seq_no), and records
// upTo in the last one. In commit order, bleve analyses the documents in
// the order the bulk requests allocated them; in the map's random order
// each document's fields were cold in the CPU's caches (about 5 % more
// CPU per document in BenchmarkBulkHTTP; noisy). Each batch applied
// leaves pending and ws, so its analysed documents are garbage once
// bleve has built its segment; on an error pending holds what was not
// applied. A search running meanwhile can see some batches of the
// refresh before the others (each document as committed). A crash between batches loses nothing:
// the op log above the recorded seq_no is replayed on open, and writes
// apply by id.
func (s *Shard) applyPending(pending map[string]pendingWrite, upTo int64) error {
	type write struct {
		id string
		pendingWrite
	}
	ws := make([]write, 0, len(pending))
	for id, w := range pending {
		ws = append(ws, write{id, w})
	}
	slices.SortFunc(ws, func(a, b write) int { return cmp.Compare(a.seq, b.seq) })
	for len(ws) > 0 {
		chunk := ws[:min(len(ws), refreshBatch)]
		ws = ws[len(chunk):]
		b := s.idx.NewBatch()
		for _, w := range chunk {
			if w.doc == nil {
				b.Delete(w.id)
			} else if err := b.IndexAdvanced(w.doc); err != nil {
				return err
			}
		}
		if len(ws) == 0 {
			b.SetInternal(internalSeq, i64(upTo))
		}
		if err := s.idx.Batch(b); err != nil {
			return err
		}
		for _, w := range chunk {
			delete(pending, w.id)
		}
		// ws's backing array would keep the applied documents alive to
		// the refresh's end.
		clear(chunk)
	}
	return nil
}

// WaitRefreshed waits until seq is searchable (refresh=wait_for).
func (s *Shard) WaitRefreshed(ctx context.Context, seq int64) error {
	for {
		s.refreshedMu.Lock()
		ch := s.refreshedCh
		s.refreshedMu.Unlock()
		if s.refreshedSeq.Load() >= seq {
			return nil
		}
		if s.Settings().RefreshInterval <= 0 {
			// Nothing will refresh on its own: do it, as Elasticsearch
			// does when refresh listeners cannot wait.
			return s.Refresh(ctx)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stop:
			return ErrClosed
		}
	}
}

// refresher refreshes every refresh_interval.
func (s *Shard) refresher() {
	defer s.done.Done()
	for {
		interval := s.Settings().RefreshInterval
		var tick <-chan time.Time
		var t *time.Timer
		if interval > 0 {
			t = time.NewTimer(interval)
			tick = t.C
		}
		select {
		case <-s.stop:
		case <-s.settingsCh:
		case <-tick:
			if err := s.Refresh(context.Background()); err != nil {
				s.log.Warn("scheduled refresh failed", "err", err)
			}
		}
		if t != nil {
			t.Stop()
		}
		select {
		case <-s.stop:
			return
		default:
		}
	}
}
