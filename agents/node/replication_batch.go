package node

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"sync"

	"paddock/agents/node/shard"
)

// Replication batching: concurrent writes to one index each replicate
// their operations to every copy, and the primary group-commits them
// into one fsync. Sent one HTTP call per write, the copy then pays a
// round trip and a group commit per write. Instead, a write's
// operations join the copy's queue for (index, term, checkpoint mode,
// refresh); while one call to the copy is in flight the next writes
// wait in the queue, and the next call carries all of them: one round
// trip and one commit on the copy for every write that arrived
// meanwhile. Each write still waits for the call that carried its
// operations, and gets its error, so acknowledgement and copy-failure
// semantics are those of a call per write.

// batchKey: operations sent together share the request's other fields.
type batchKey struct {
	index   string
	term    int64
	synced  bool // carries the global checkpoint (the copy is in in_sync)
	refresh string
}

// batchWaiter is one write's operations waiting for a call.
type batchWaiter struct {
	ops  []shard.ReplicaOp
	gcp  int64
	done chan error // buffered: the sender never blocks on it
}

// opsBatch is a copy's queue for one batchKey.
type opsBatch struct {
	pending []*batchWaiter
	sending bool
}

// maxBatchOps bounds the operations of one call; more wait for the next.
const maxBatchOps = 10_000

// copyBatches is a copy's queues, keyed by batchKey.
type copyBatches struct {
	mu sync.Mutex
	q  map[batchKey]*opsBatch
}

// sendBatched sends a write's operations to a copy together with the
// other writes' operations queued for the same key, and returns the
// error of the call that carried them.
func (s *Server) sendBatched(ctx context.Context, t *copyTrack, k batchKey, gcp int64, ops []shard.ReplicaOp) error {
	w := &batchWaiter{ops: ops, gcp: gcp, done: make(chan error, 1)}
	b := &t.batches
	b.mu.Lock()
	if b.q == nil {
		b.q = map[batchKey]*opsBatch{}
	}
	q := b.q[k]
	if q == nil {
		q = &opsBatch{}
		b.q[k] = q
	}
	q.pending = append(q.pending, w)
	start := !q.sending
	q.sending = true
	b.mu.Unlock()
	if start {
		s.repl.wg.Add(1)
		go s.flushBatches(t, k, q)
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flushBatches sends the queue's writes, as many per call as waited,
// until the queue is empty. It runs on the replication's own context
// (the calls are bounded by sendTimeout): a caller that gives up does
// not fail the others carried in the same call.
func (s *Server) flushBatches(t *copyTrack, k batchKey, q *opsBatch) {
	defer s.repl.wg.Done()
	b := &t.batches
	for {
		b.mu.Lock()
		n, count := 0, 0
		for n < len(q.pending) && (n == 0 || count+len(q.pending[n].ops) <= maxBatchOps) {
			count += len(q.pending[n].ops)
			n++
		}
		if n == 0 {
			q.sending = false
			if b.q[k] == q {
				delete(b.q, k)
			}
			b.mu.Unlock()
			return
		}
		ws := q.pending[:n:n]
		q.pending = q.pending[n:]
		b.mu.Unlock()

		err := s.sendOps(s.repl.ctx, t, k.index, batchBody(k, ws))
		for _, w := range ws {
			w.done <- err
		}
	}
}

// batchBody is one operations request for the writes ws: their
// operations in seq_no order, and the highest global checkpoint among
// them (each was true when taken, and the checkpoint only grows).
func batchBody(k batchKey, ws []*batchWaiter) []byte {
	req := opsRequest{Term: k.term, Index: k.index, GlobalCheckpoint: -1, Refresh: k.refresh, Ops: ws[0].ops}
	if len(ws) > 1 {
		n := 0
		for _, w := range ws {
			n += len(w.ops)
		}
		req.Ops = make([]shard.ReplicaOp, 0, n)
		for _, w := range ws {
			req.Ops = append(req.Ops, w.ops...)
		}
		slices.SortStableFunc(req.Ops, func(a, b shard.ReplicaOp) int { return cmp.Compare(a.SeqNo, b.SeqNo) })
	}
	if k.synced {
		for _, w := range ws {
			req.GlobalCheckpoint = max(req.GlobalCheckpoint, w.gcp)
		}
	}
	body, _ := json.Marshal(req)
	return body
}
