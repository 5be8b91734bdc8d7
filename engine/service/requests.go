package service

import (
	"context"
	"errors"
	"time"

	"paddock/engine"
)

// RequestTTL is how long a create's request id is remembered: a retry
// with the same id within it returns the same deployment.
const RequestTTL = 24 * time.Hour

// PruneRequests deletes idempotency records older than maxAge (by their
// znode creation time), so /paddock/requests stays small. It returns how
// many it deleted.
func (s *Service) PruneRequests(ctx context.Context, maxAge time.Duration) (int, error) {
	ids, err := s.store.Children(ctx, engine.PathRequests)
	if err != nil {
		return 0, storeErr(err, "request", "list")
	}
	cutoff := s.now().Add(-maxAge)
	n := 0
	for _, id := range ids {
		ok, st, err := s.store.Exists(ctx, engine.RequestPath(id))
		if err != nil {
			return n, storeErr(err, "request", id)
		}
		if !ok || st.Ctime.After(cutoff) {
			continue
		}
		if err := s.store.Delete(ctx, engine.RequestPath(id), st.Version); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return n, storeErr(err, "request", id)
		}
		n++
	}
	return n, nil
}
