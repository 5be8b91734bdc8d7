package shard

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/blevesearch/bleve/v2/document"
	bolt "go.etcd.io/bbolt"

	"paddock/agents/node/mapping"
)

// Keys of the replication state in the meta bucket.
var (
	keyGCP      = []byte("global_checkpoint") // last global checkpoint known
	keyLastTerm = []byte("last_op_term")      // highest primary term of an op held
	keyLogStart = []byte("op_log_start")      // lowest seq_no the op log still holds
)

// ReplicaOp is one operation as the primary sends it to its copies:
// the document's state after the write, with the seq_no, version and
// primary term the primary gave it.
type ReplicaOp struct {
	SeqNo       int64           `json:"seq_no"`
	PrimaryTerm int64           `json:"primary_term"`
	Op          string          `json:"op"` // index or delete
	ID          string          `json:"id"`
	Version     int64           `json:"version"`
	Routing     string          `json:"routing,omitempty"`
	Source      json.RawMessage `json:"source,omitempty"`
}

// Checkpoint is where an index's replication stands on this copy.
type Checkpoint struct {
	// MaxSeqNo is the highest seq_no this copy holds.
	MaxSeqNo int64 `json:"max_seq_no"`
	// GlobalCheckpoint is the last global checkpoint this copy was told:
	// every seq_no up to it is on every in-sync copy.
	GlobalCheckpoint int64 `json:"global_checkpoint"`
	// LastOpTerm is the highest primary term of an operation held.
	LastOpTerm int64 `json:"last_op_term"`
	// OpLogStart is the lowest seq_no the operation log still holds.
	OpLogStart int64 `json:"op_log_start"`
}

// FromResult is the replica operation of a write done on the primary
// (false for a write that changed nothing: an error, noop, not_found).
func FromResult(id string, r Result) (ReplicaOp, bool) {
	switch {
	case r.Err != nil, r.SeqNo < 0:
		return ReplicaOp{}, false
	case r.Result == "deleted":
		return ReplicaOp{SeqNo: r.SeqNo, PrimaryTerm: r.PrimaryTerm, Op: "delete", ID: id, Version: r.Version}, true
	case r.Result == "created", r.Result == "updated":
		return ReplicaOp{SeqNo: r.SeqNo, PrimaryTerm: r.PrimaryTerm, Op: "index", ID: id, Version: r.Version, Routing: r.Routing, Source: r.Source}, true
	}
	return ReplicaOp{}, false
}

// Validate checks an operation received from a primary.
func (o ReplicaOp) Validate() error {
	switch {
	case o.ID == "":
		return fmt.Errorf("op with seq_no %d has no id", o.SeqNo)
	case len(o.ID) > 512:
		return fmt.Errorf("op with seq_no %d: id longer than 512 bytes", o.SeqNo)
	case len(o.Routing) > 1<<15:
		return fmt.Errorf("op with seq_no %d: routing too long", o.SeqNo)
	case o.SeqNo < 0:
		return fmt.Errorf("op on [%s] has a negative seq_no %d", o.ID, o.SeqNo)
	case o.PrimaryTerm < 1:
		return fmt.Errorf("op on [%s] has primary_term %d (must be at least 1)", o.ID, o.PrimaryTerm)
	case o.Version < 1:
		return fmt.Errorf("op on [%s] has version %d (must be at least 1)", o.ID, o.Version)
	case o.Op == "delete":
		return nil
	case o.Op == "index":
		if len(o.Source) == 0 {
			return fmt.Errorf("index op on [%s] has no source", o.ID)
		}
		return nil
	}
	return fmt.Errorf("op on [%s] has kind %q: use index or delete", o.ID, o.Op)
}

// Term is the primary term the shard writes with.
func (s *Shard) Term() int64 {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.term
}

// SetTerm makes the shard write with a new primary term (a promotion):
// a lower term than the current one is ignored.
func (s *Shard) SetTerm(term int64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if term <= s.term {
		return nil
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyTerm, i64(term)) }); err != nil {
		return err
	}
	s.term = term
	return nil
}

// MaxSeqNo is the highest seq_no assigned or received, without waiting
// for a commit in progress.
func (s *Shard) MaxSeqNo() int64 { return s.maxSeq.Load() }

// SetGlobalCheckpoint records the global checkpoint (it only grows); it
// is persisted with the next commit.
func (s *Shard) SetGlobalCheckpoint(g int64) {
	for {
		cur := s.gcp.Load()
		if g <= cur || s.gcp.CompareAndSwap(cur, g) {
			return
		}
	}
}

// Checkpoint is the shard's replication state.
func (s *Shard) Checkpoint() Checkpoint {
	return Checkpoint{MaxSeqNo: s.maxSeq.Load(), GlobalCheckpoint: s.gcp.Load(), LastOpTerm: s.lastTerm.Load(), OpLogStart: s.logStart.Load()}
}

// loadReplState reads the persisted replication state (Open).
func (s *Shard) loadReplState(meta *bolt.Bucket) {
	s.gcp.Store(-1)
	if v := meta.Get(keyGCP); v != nil {
		s.gcp.Store(geti64(v))
	}
	if v := meta.Get(keyLastTerm); v != nil {
		s.lastTerm.Store(geti64(v))
	}
	if v := meta.Get(keyLogStart); v != nil {
		s.logStart.Store(geti64(v))
	}
}

// saveReplState writes the replication state in a commit's transaction.
func (s *Shard) saveReplState(meta *bolt.Bucket, lastTerm int64) error {
	if lastTerm > s.lastTerm.Load() {
		s.lastTerm.Store(lastTerm)
		if err := meta.Put(keyLastTerm, i64(lastTerm)); err != nil {
			return err
		}
	}
	return meta.Put(keyGCP, i64(s.gcp.Load()))
}

// ApplyReplica applies operations received from the primary, in one
// group commit with other writes. An operation is applied only when its
// seq_no is above the document's current one (or its tombstone's), so
// replaying, reordering or duplicating operations changes nothing. gcp
// is the primary's global checkpoint (-1: unknown).
func (s *Shard) ApplyReplica(ctx context.Context, ops []ReplicaOp, gcp int64) (Checkpoint, error) {
	for _, o := range ops {
		if err := o.Validate(); err != nil {
			return Checkpoint{}, err
		}
	}
	r := &request{repl: ops, done: make(chan struct{})}
	select {
	case s.queue <- r:
	case <-s.stop:
		return Checkpoint{}, ErrClosed
	case <-ctx.Done():
		return Checkpoint{}, ctx.Err()
	}
	<-r.done
	if r.err != nil {
		return Checkpoint{}, r.err
	}
	s.SetGlobalCheckpoint(gcp)
	return s.Checkpoint(), nil
}

// applyReplica stages one replicated operation in the commit's
// transaction. Stale operations are skipped.
func (s *Shard) applyReplica(docs, tombs, ops *bolt.Bucket, m *mapping.Mapping, o *ReplicaOp, seq *int64) (*staged, *mapping.Mapping, error) {
	key := []byte(o.ID)
	cur := int64(-1)
	if rec := docs.Get(key); rec != nil {
		meta, _ := decodeRecord(rec)
		cur = meta.SeqNo
	} else if t := tombs.Get(key); t != nil {
		cur = geti64(t[8:16])
	}
	if o.SeqNo <= cur {
		return nil, nil, nil
	}
	*seq = max(*seq, o.SeqNo)
	if err := ops.Put(i64(o.SeqNo), key); err != nil {
		return nil, nil, err
	}
	if o.Op == "delete" {
		if err := docs.Delete(key); err != nil {
			return nil, nil, err
		}
		if err := tombs.Put(key, append(i64(o.Version), i64(o.SeqNo)...)); err != nil {
			return nil, nil, err
		}
		return &staged{id: o.ID, seq: o.SeqNo}, nil, nil
	}
	meta := Meta{Version: o.Version, SeqNo: o.SeqNo, PrimaryTerm: o.PrimaryTerm, Routing: o.Routing}
	if err := docs.Put(key, encodeRecord(meta, o.Source)); err != nil {
		return nil, nil, err
	}
	if err := tombs.Delete(key); err != nil {
		return nil, nil, err
	}
	var doc *document.Document
	var nm *mapping.Mapping
	parsed, err := mapping.DecodeSource(o.Source)
	if err == nil {
		doc, nm, err = m.Document(o.ID, parsed)
	}
	if err != nil {
		// The primary accepted it: keep it (GET finds it, a promotion
		// keeps it), unsearchable here, and say so.
		s.log.Warn("replicated document does not fit this copy's mapping: stored but not searchable", "id", o.ID, "seq_no", o.SeqNo, "err", err)
		return &staged{id: o.ID, seq: o.SeqNo}, nil, nil
	}
	if nm == m {
		nm = nil
	}
	return &staged{id: o.ID, doc: doc, seq: o.SeqNo}, nm, nil
}

// OpsSince returns the current state of the documents the operation log
// names from seq_no from on, up to limit operations, in seq_no order,
// and the seq_no to continue from. covered is false when the log no
// longer holds from (trimmed): recover with a full copy instead.
func (s *Shard) OpsSince(from int64, limit int) (out []ReplicaOp, next int64, covered bool, err error) {
	if from < s.logStart.Load() {
		return nil, from, false, nil
	}
	next = from
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOps).Cursor()
		docs, tombs := tx.Bucket(bucketDocs), tx.Bucket(bucketTombs)
		for k, v := c.Seek(i64(from)); k != nil && len(out) < limit; k, v = c.Next() {
			seq := geti64(k)
			next = seq + 1
			if op, ok := current(docs, tombs, v, s.term); ok && op.SeqNo == seq {
				out = append(out, op)
			}
		}
		return nil
	})
	return out, next, true, err
}

// current is a document's (or tombstone's) state as a replica op.
func current(docs, tombs *bolt.Bucket, key []byte, term int64) (ReplicaOp, bool) {
	if rec := docs.Get(key); rec != nil {
		meta, src := decodeRecord(rec)
		return ReplicaOp{SeqNo: meta.SeqNo, PrimaryTerm: meta.PrimaryTerm, Op: "index", ID: string(key), Version: meta.Version,
			Routing: meta.Routing, Source: append(json.RawMessage(nil), src...)}, true
	}
	if t := tombs.Get(key); t != nil {
		return ReplicaOp{SeqNo: geti64(t[8:16]), PrimaryTerm: term, Op: "delete", ID: string(key), Version: geti64(t[0:8])}, true
	}
	return ReplicaOp{}, false
}

// ExportChunk returns up to limit documents (tombstones when tombs) with ids
// after "after", in id order, for a full copy; done when none remain.
// Each call is its own short read: writes during the copy reach the
// copy as live operations.
func (s *Shard) ExportChunk(tombs bool, after string, limit int) (out []ReplicaOp, last string, done bool, err error) {
	term := s.Term()
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDocs)
		if tombs {
			b = tx.Bucket(bucketTombs)
		}
		c := b.Cursor()
		k, _ := c.First()
		if after != "" {
			k, _ = c.Seek([]byte(after))
			if k != nil && string(k) == after {
				k, _ = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, _ = c.Next() {
			var op ReplicaOp
			var ok bool
			if tombs {
				op, ok = current(tx.Bucket(bucketDocs), b, k, term)
			} else {
				op, ok = current(b, tx.Bucket(bucketTombs), k, term)
			}
			if ok {
				out = append(out, op)
			}
			last = string(k)
		}
		done = k == nil
		return nil
	})
	return out, last, done, err
}

// ReplaceSettings makes the settings those of the primary (a copy
// following its primary's metadata).
func (s *Shard) ReplaceSettings(next Settings) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.Settings() == next {
		return nil
	}
	return s.storeSettingsLocked(next)
}

// AdvanceSeqNo makes the next seq_no assigned higher than n (a new
// primary steps past every seq_no its copies may hold, so its writes
// always supersede an older primary's).
func (s *Shard) AdvanceSeqNo(n int64) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if n <= s.seqNo {
		return nil
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySeq, i64(n)) }); err != nil {
		return err
	}
	s.seqNo = n
	s.maxSeq.Store(n)
	return nil
}

// SeqNoOf is the seq_no of a document's current state here (its
// record's, or its tombstone's); false when the shard has neither.
func (s *Shard) SeqNoOf(id string) (int64, bool, error) {
	seq, found := int64(-1), false
	err := s.db.View(func(tx *bolt.Tx) error {
		if op, ok := current(tx.Bucket(bucketDocs), tx.Bucket(bucketTombs), []byte(id), 0); ok {
			seq, found = op.SeqNo, true
		}
		return nil
	})
	return seq, found, err
}

// Reassert writes again, with fresh seq_nos above every one assigned
// and this shard's term, the current state here of each document
// named: its record, or a delete (version from versions, at least 1)
// when it has none. Sent to the copies, these operations supersede
// whatever a deposed primary left on them for those documents. Call it
// only while no other write runs (a promotion holds writes): the seq_nos
// are taken from the last one assigned.
func (s *Shard) Reassert(ctx context.Context, ids []string, versions map[string]int64) error {
	if len(ids) == 0 {
		return nil
	}
	term := s.Term()
	s.wmu.Lock()
	seq := s.seqNo
	s.wmu.Unlock()
	ops := make([]ReplicaOp, 0, len(ids))
	err := s.db.View(func(tx *bolt.Tx) error {
		docs, tombs := tx.Bucket(bucketDocs), tx.Bucket(bucketTombs)
		for _, id := range ids {
			seq++
			op, ok := current(docs, tombs, []byte(id), term)
			if !ok || op.Op == "delete" {
				op = ReplicaOp{Op: "delete", ID: id, Version: max(op.Version, versions[id], 1)}
			}
			op.SeqNo, op.PrimaryTerm = seq, term
			ops = append(ops, op)
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = s.ApplyReplica(ctx, ops, -1)
	return err
}
