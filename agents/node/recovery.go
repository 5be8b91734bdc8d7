package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"paddock/agents/node/shard"
)

// recoveryChunk is how many operations one recovery request carries.
const recoveryChunk = 500

// refusal is an answer of a copy that retrying will not change: the
// request is malformed for it (400: another version of the contract),
// it does not let this node in (401, 403), or it lacks the endpoint
// (405, 501; 404 to its view). The primary keeps retrying (the copy
// may be replaced), but its view marks the copy "refused" so the
// authority need not wait for the recovery to stall.
type refusal struct{ error }

func (r refusal) Unwrap() error { return r.error }

// refused wraps err as a refusal when code is one.
func refused(code int, err error) error {
	switch code {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return refusal{err}
	}
	return err
}

// setErr records why the copy's last replication or recovery failed
// (repl.mu held).
func (t *copyTrack) setErr(err error) {
	t.err = err.Error()
	t.refused = errors.As(err, new(refusal))
}

// startRecoveryLocked starts recovering a copy that is in the routing's
// copies but not in in_sync (p.mu held). It runs until the copy is in
// sync, the copy leaves the routing, or this node stops being primary.
func (s *Server) startRecoveryLocked(t *copyTrack) {
	p := s.repl
	if t.cancel != nil {
		t.cancel()
	}
	ctx, cancel := context.WithCancel(p.ctx)
	t.cancel = cancel
	term := p.rt.Term
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		s.recoverCopy(ctx, t, term)
	}()
}

func (s *Server) recoverCopy(ctx context.Context, t *copyTrack, term int64) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.recoverOnce(ctx, t, term)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		s.repl.mu.Lock()
		t.setErr(err)
		s.repl.mu.Unlock()
		s.log.Debug("recovery of a copy failed: retrying", "copy", t.id, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// copyView is what GET /_paddock/replication answers, as far as
// recovery needs it.
type copyView struct {
	// Term is the highest term the copy has seen.
	Term    int64 `json:"term"`
	Indices map[string]struct {
		MaxSeqNo         int64  `json:"max_seq_no"`
		GlobalCheckpoint int64  `json:"global_checkpoint"`
		LastOpTerm       int64  `json:"last_op_term"`
		UUID             string `json:"uuid"`
	} `json:"indices"`
}

// recoverOnce brings a copy up to date: metadata, then per index the
// operations since its global checkpoint (from the op log) or a full
// copy, then, with live writes waited for, the operations written
// meanwhile; then asks the authority to add it to in_sync.
func (s *Server) recoverOnce(ctx context.Context, t *copyTrack, term int64) error {
	p := s.repl
	p.mu.Lock()
	if p.copies[t.id] != t || p.rt.Term != term || p.roleLocked() != RolePrimary {
		p.mu.Unlock()
		return nil
	}
	t.state = copyRecovering
	p.mu.Unlock()
	t.dirty.Store(false)
	// Metadata first (the copy's indices match the primary's), forced.
	t.metaSent.Store(0)
	if err := s.ensureMetadata(ctx, t); err != nil {
		return err
	}
	code, b, err := s.call(ctx, http.MethodGet, t.base()+ReplicationPath, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		err := fmt.Errorf("copy [%s] answered %d to its view: %s", t.id, code, b)
		if code == http.StatusNotFound { // no replication endpoints
			return refusal{err}
		}
		return refused(code, err)
	}
	var view copyView
	if err := json.Unmarshal(b, &view); err != nil {
		return fmt.Errorf("copy [%s] view: %w", t.id, err)
	}
	// From here live writes reach the copy (it is in targets as
	// recovering); what was written before is copied below.
	start := map[string]int64{}
	full, opBased := 0, 0
	for _, name := range s.indexNames() {
		sh := s.index(name)
		if sh == nil {
			continue
		}
		start[name] = sh.MaxSeqNo() + 1
		cv, has := view.Indices[name]
		from := int64(0)
		reset := false
		if has {
			from = cv.GlobalCheckpoint + 1
			// Operations above its global checkpoint from an older term
			// may be ones this primary never had: copy it all.
			reset = cv.MaxSeqNo > cv.GlobalCheckpoint && cv.LastOpTerm < term
			if !reset && cv.MaxSeqNo > cv.GlobalCheckpoint {
				// Its last operation may be one of this term (a live
				// write reached it first) over older ones this primary
				// never had: look at each.
				d, err := s.divergedOps(ctx, t, sh, from)
				switch {
				case errors.Is(err, errNotCovered):
					reset = true
				case err != nil:
					return err
				default:
					reset = len(d) > 0
				}
			}
		}
		if !reset {
			done, err := s.sendOpsSince(ctx, t, sh, term, from, -1)
			if err != nil {
				return err
			}
			if done {
				opBased++
				continue
			}
		}
		if err := s.fullCopy(ctx, t, sh, term); err != nil {
			return err
		}
		full++
	}
	// Now wait for the copy on every write, then send what was written
	// since the start (live sends to a recovering copy may have missed).
	p.mu.Lock()
	if p.copies[t.id] != t || p.rt.Term != term || p.roleLocked() != RolePrimary {
		p.mu.Unlock()
		return nil
	}
	t.state = copyTracking
	p.mu.Unlock()
	for name, from := range start {
		sh := s.index(name)
		if sh == nil {
			continue
		}
		if done, err := s.sendOpsSince(ctx, t, sh, term, from, -1); err != nil {
			return err
		} else if !done {
			return fmt.Errorf("op log of [%s] no longer holds seq_no %d", name, from)
		}
	}
	p.mu.Lock()
	if t.state != copyTracking {
		p.mu.Unlock()
		return fmt.Errorf("copy [%s] missed a write during recovery", t.id)
	}
	t.err, t.refused = "", false
	p.mu.Unlock()
	s.log.Info("copy recovered: asking to add it to in_sync", "copy", t.id, "term", term, "op_based", opBased, "full", full)
	// Ask until the routing has it in in_sync (or moves on).
	for {
		p.mu.Lock()
		if p.copies[t.id] != t || p.rt.Term != term || p.roleLocked() != RolePrimary {
			p.mu.Unlock()
			return nil
		}
		if p.rt.inSync(t.id) {
			p.mu.Unlock()
			return nil
		}
		if t.state != copyTracking {
			// It failed a write before joining in_sync: recover again.
			p.mu.Unlock()
			return fmt.Errorf("copy [%s] missed a write before joining in_sync", t.id)
		}
		p.emitLocked("in_sync", t.id, fmt.Sprintf("recovered (%d indices operation-based, %d full copy)", opBased, full))
		ch := p.changed
		p.mu.Unlock()
		timer := time.NewTimer(10 * time.Second)
		select {
		case <-ch:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil
		}
		timer.Stop()
	}
}

// sendOpsSince sends the current state of every document the op log
// names from seq_no from on; false when the log no longer holds from.
func (s *Server) sendOpsSince(ctx context.Context, t *copyTrack, sh *shard.Shard, term, from, gcp int64) (bool, error) {
	for {
		ops, next, covered, err := sh.OpsSince(from, recoveryChunk)
		if err != nil || !covered {
			return false, err
		}
		if len(ops) > 0 {
			if err := s.sendChunk(ctx, t, sh.Name(), term, gcp, ops); err != nil {
				return false, err
			}
		}
		if next == from {
			return true, nil
		}
		from = next
	}
}

// fullCopy empties the copy's index and sends every document and
// tombstone.
func (s *Server) fullCopy(ctx context.Context, t *copyTrack, sh *shard.Shard, term int64) error {
	b, _ := json.Marshal(map[string]any{"term": term, "index": sh.Name()})
	code, resp, err := s.call(ctx, http.MethodPost, t.base()+ReplicationResetPath, b)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return refused(code, fmt.Errorf("copy [%s] refused to reset [%s] (%d): %s", t.id, sh.Name(), code, resp))
	}
	for _, tombs := range []bool{false, true} {
		after := ""
		for {
			ops, last, done, err := sh.ExportChunk(tombs, after, recoveryChunk)
			if err != nil {
				return err
			}
			if len(ops) > 0 {
				if err := s.sendChunk(ctx, t, sh.Name(), term, -1, ops); err != nil {
					return err
				}
			}
			if done {
				break
			}
			after = last
		}
	}
	return nil
}

func (s *Server) sendChunk(ctx context.Context, t *copyTrack, index string, term, gcp int64, ops []shard.ReplicaOp) error {
	b, _ := json.Marshal(opsRequest{Term: term, Index: index, GlobalCheckpoint: gcp, Ops: ops})
	return s.sendOps(ctx, t, index, b)
}

// copyIndicesToAll sends a full copy of indices written outside the
// operation path (a restore) to every other copy; an in-sync copy that
// fails it is reported and the caller held until it leaves in_sync.
func (s *Server) copyIndicesToAll(ctx context.Context, names []string) error {
	if s.repl.role() != RolePrimary || len(names) == 0 {
		return nil
	}
	s.metadataChanged()
	targets, term, _ := s.repl.targets()
	errs := make([]error, len(targets))
	done := make(chan struct{}, len(targets))
	for i, tg := range targets {
		go func() {
			defer func() { done <- struct{}{} }()
			if tg.dead {
				return
			}
			if err := s.ensureMetadata(ctx, tg.t); err != nil {
				errs[i] = err
				return
			}
			for _, n := range names {
				if sh := s.index(n); sh != nil {
					if err := s.fullCopy(ctx, tg.t, sh, term); err != nil {
						errs[i] = err
						return
					}
				}
			}
		}()
	}
	for range targets {
		<-done
	}
	var held []string
	for i, tg := range targets {
		if errs[i] == nil {
			continue
		}
		if !tg.wait {
			tg.t.dirty.Store(true)
			continue
		}
		if s.copyFailed(tg.t, term, errs[i]) {
			held = append(held, tg.t.id)
		}
	}
	if len(held) > 0 {
		return s.holdFor(ctx, term, held)
	}
	return nil
}
