package engine

import (
	"context"
	"errors"
)

// ReadChildren reads every child of p (name → data), the reads
// pipelined on the session. Children deleted meanwhile are left out; a
// missing p is an empty map.
func (s *Store) ReadChildren(ctx context.Context, p string) (map[string][]byte, error) {
	names, err := s.Children(ctx, p)
	if errors.Is(err, ErrNotFound) {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, err
	}
	data := make([][]byte, len(names))
	found := make([]bool, len(names))
	errs := make([]error, len(names))
	parallel(ctx, len(names), func(i int) {
		b, _, err := s.Get(ctx, p+"/"+names[i])
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			errs[i] = err
		default:
			data[i], found[i] = b, true
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(names))
	for i, n := range names {
		if found[i] {
			out[n] = data[i]
		}
	}
	return out, nil
}
