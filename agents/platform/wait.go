package platform

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v5"

	"paddock/engine"
)

// waitFor retries cond until it holds, ctx ends (the error then says
// what was not seen and the last reason) or a service reports a failure
// on errc (nil: none to watch). The one policy: backoff.Retry,
// exponential from 100 ms to 1 s, bounded by ctx alone.
func waitFor(ctx context.Context, what string, errc <-chan error, cond func(context.Context) error) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if errc != nil {
		go func() {
			select {
			case err := <-errc:
				cancel(err)
			case <-wctx.Done():
			}
		}()
	}
	var last error
	b := backoff.NewExponentialBackOff()
	// Checks at most a second apart, jitter included (the backoff
	// randomises ±RandomizationFactor around its capped interval).
	b.InitialInterval, b.MaxInterval, b.RandomizationFactor = 100*time.Millisecond, 800*time.Millisecond, 0.25
	_, err := backoff.Retry(wctx, func() (struct{}, error) {
		last = cond(wctx)
		return struct{}{}, last
	}, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0))
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		err = timeout(ctx, what)
		if last != nil {
			err = fmt.Errorf("%w (last: %v)", err, last)
		}
		return err
	case context.Cause(wctx) != nil:
		return context.Cause(wctx) // a service failed
	}
	return err // permanent
}

// waitProxy waits for proxy id's registration and returns its address.
func waitProxy(ctx context.Context, s *engine.Store, id string, errc <-chan error) (string, error) {
	rec, err := waitProxyRecord(ctx, s, id, errc)
	return rec.HTTPAddr, err
}

// waitProxyRecord waits for proxy id's registration and returns it.
func waitProxyRecord(ctx context.Context, s *engine.Store, id string, errc <-chan error) (engine.ProxyRecord, error) {
	var out engine.ProxyRecord
	err := waitFor(ctx, "the proxy "+id+" did not register", errc, func(ctx context.Context) error {
		var rec engine.ProxyRecord
		if _, err := s.GetJSON(ctx, engine.ProxyPath(id), &rec); err != nil {
			return err
		}
		if rec.HTTPAddr == "" && rec.HTTPSAddr == "" {
			return errors.New("registered without an address")
		}
		out = rec
		return nil
	})
	return out, err
}

// waitAllocators waits until every allocator holds its alive node and
// returns their records.
func waitAllocators(ctx context.Context, s *engine.Store, ids []string, errc <-chan error) (map[string]engine.Allocator, error) {
	recs := map[string]engine.Allocator{}
	for _, id := range ids {
		err := waitFor(ctx, "allocator "+id+" did not register", errc, func(ctx context.Context) error {
			if ok, _, err := s.Exists(ctx, engine.AllocatorAlivePath(id)); err != nil || !ok {
				return fmt.Errorf("no alive node (err %v): check Docker and the log", err)
			}
			var rec engine.Allocator
			if _, err := s.GetJSON(ctx, engine.AllocatorPath(id), &rec); err != nil {
				return err
			}
			recs[id] = rec
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return recs, nil
}

// waitCA waits until the director has published the platform CA.
func waitCA(ctx context.Context, s *engine.Store) error {
	return waitFor(ctx, "the director did not publish the platform CA", nil, func(ctx context.Context) error {
		ok, _, err := s.Exists(ctx, engine.PathCA)
		if err == nil && !ok {
			err = errors.New("not yet")
		}
		return err
	})
}

// waitTCP waits until addr accepts connections.
func waitTCP(ctx context.Context, addr string) error {
	var d net.Dialer
	return waitFor(ctx, addr+" did not accept connections", nil, func(ctx context.Context) error {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// waitHTTP waits until url answers (any status below 500).
func waitHTTP(ctx context.Context, url string) error {
	c := &http.Client{Timeout: time.Second}
	return waitFor(ctx, url+" did not answer", nil, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return backoff.Permanent(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil
	})
}
