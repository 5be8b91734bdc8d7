package engine

import (
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
)

// Sentinel errors of the store; test with errors.Is.
var (
	ErrNotFound    = errors.New("not found")
	ErrExists      = errors.New("already exists")
	ErrConflict    = errors.New("conflict: the record changed since it was read")
	ErrNoAuth      = errors.New("not authorised")
	ErrNotEmpty    = errors.New("has children")
	ErrUnavailable = errors.New("ZooKeeper unavailable")
	// ErrCacheStale: a tree cache is not connected to ZooKeeper, so it
	// cannot promise to be up to date.
	ErrCacheStale = errors.New("cache not connected to ZooKeeper")
)

// StoreError is a failed store operation on a path.
type StoreError struct {
	Op   string
	Path string
	// Kind is one of the sentinel errors above (nil if unclassified).
	Kind error
	// Cause is the underlying ZooKeeper error.
	Cause error
}

func (e *StoreError) Error() string {
	hint := ""
	switch e.Kind {
	case ErrNoAuth:
		hint = ": this role may not do that (see the ACL table in docs/architecture.md)"
	case ErrUnavailable:
		hint = ": check that ZooKeeper is running (scripts/zk.sh status) and reachable"
	case ErrConflict:
		hint = ": read it again and retry"
	}
	return fmt.Sprintf("%s %s: %v%s", e.Op, e.Path, e.Cause, hint)
}

// Unwrap exposes both the sentinel kind and the ZooKeeper cause.
func (e *StoreError) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Cause}
	}
	return []error{e.Kind, e.Cause}
}

// ConflictError is returned when a compare-and-set loses a race.
type ConflictError = StoreError

func wrapErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var se *StoreError
	if errors.As(err, &se) {
		return err
	}
	return &StoreError{Op: op, Path: path, Kind: classify(err), Cause: err}
}

func classify(err error) error {
	switch {
	case errors.Is(err, zk.ErrNoNode):
		return ErrNotFound
	case errors.Is(err, zk.ErrNodeExists):
		return ErrExists
	case errors.Is(err, zk.ErrBadVersion):
		return ErrConflict
	case errors.Is(err, zk.ErrNoAuth), errors.Is(err, zk.ErrAuthFailed), errors.Is(err, zk.ErrInvalidACL):
		return ErrNoAuth
	case errors.Is(err, zk.ErrNotEmpty):
		return ErrNotEmpty
	case errors.Is(err, zk.ErrConnectionClosed), errors.Is(err, zk.ErrNoServer),
		errors.Is(err, zk.ErrSessionExpired), errors.Is(err, zk.ErrClosing),
		errors.Is(err, ErrUnavailable):
		return ErrUnavailable
	}
	return nil
}

// IsNotFound, IsConflict... are shorthands for errors.Is.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict reports a lost compare-and-set or an existing node.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }
