package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Ephemeral is an ephemeral registration that survives session expiry:
// go-zookeeper silently opens a new session after an expiry, and the old
// session's ephemerals are gone, so it is re-created each time the
// session changes (and verified periodically).
type Ephemeral struct {
	s    *Store
	path string
	log  *slog.Logger

	mu   sync.Mutex
	data any

	cancel context.CancelFunc
	done   chan struct{}
	// recreated counts re-creations after the first (tests, metrics).
	recreated int
}

// Register creates the ephemeral znode at p holding v and keeps it
// present until Close. A stale node of an earlier session of ours (a
// restart within the session timeout) is replaced.
func (s *Store) Register(ctx context.Context, p string, v any) (*Ephemeral, error) {
	e := &Ephemeral{s: s, path: p, data: v, log: s.log.With("ephemeral", p), done: make(chan struct{})}
	if err := e.ensure(ctx); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go e.run(rctx)
	return e, nil
}

// Path is the registration's znode.
func (e *Ephemeral) Path() string { return e.path }

// Recreated counts re-creations after session changes.
func (e *Ephemeral) Recreated() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.recreated
}

// Update changes the registration's data (and what is re-created).
func (e *Ephemeral) Update(ctx context.Context, v any) error {
	e.mu.Lock()
	e.data = v
	e.mu.Unlock()
	_, err := e.s.Set(ctx, e.path, v, AnyVersion)
	if errors.Is(err, ErrNotFound) {
		return e.ensure(ctx)
	}
	return err
}

// OpUpdate changes the registration's data (and what is re-created) as
// an operation of a Multi. Should the Multi fail, call Update.
func (e *Ephemeral) OpUpdate(v any) Op {
	e.mu.Lock()
	e.data = v
	e.mu.Unlock()
	return OpSet(e.path, v, AnyVersion)
}

// Close stops keeping the node and deletes it.
func (e *Ephemeral) Close() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = e.s.Delete(ctx, e.path, AnyVersion)
}

func (e *Ephemeral) run(ctx context.Context) {
	defer close(e.done)
	sess, unsub := e.s.Subscribe()
	defer unsub()
	last := e.s.SessionID()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sess:
		case <-tick.C:
		}
		if !e.s.Connected() {
			continue
		}
		sid := e.s.SessionID()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, st, err := e.s.Exists(cctx, e.path)
		if err == nil && (!ok || st.EphemeralOwner != sid) {
			if err = e.ensure(cctx); err == nil {
				e.mu.Lock()
				e.recreated++
				e.mu.Unlock()
				e.log.Info("ephemeral registration re-created", "session_changed", sid != last)
			}
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			e.log.Warn("ephemeral registration check failed", "err", err)
		}
		last = sid
	}
}

func (e *Ephemeral) ensure(ctx context.Context) error {
	e.mu.Lock()
	v := e.data
	e.mu.Unlock()
	for attempt := 0; attempt < 10; attempt++ {
		err := e.s.CreateEphemeral(ctx, e.path, v)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrExists) {
			return err
		}
		ok, st, err := e.s.Exists(ctx, e.path)
		if err != nil {
			return err
		}
		if ok && st.EphemeralOwner == e.s.SessionID() {
			_, err := e.s.Set(ctx, e.path, v, AnyVersion)
			return err
		}
		if ok {
			// A node of an earlier session of ours: replace it.
			if err := e.s.Delete(ctx, e.path, AnyVersion); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
	}
	return &StoreError{Op: "register", Path: e.path, Kind: ErrConflict, Cause: errors.New("another session keeps re-creating it: is a second agent running with the same id?")}
}
