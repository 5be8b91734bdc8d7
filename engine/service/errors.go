package service

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"paddock/engine"
)

// Kind classifies a service error; the API maps each kind to one HTTP
// status.
type Kind int

// Error kinds.
const (
	KindInternal     Kind = iota // 500
	KindNotFound                 // 404: unknown id
	KindConflict                 // 409: plan pending, stale version, exists
	KindInvalid                  // 400: a field is wrong
	KindUnplaceable              // 422: no room for the topology asked
	KindUnavailable              // 503: ZooKeeper unreachable
	KindUnauthorized             // 401: no or bad credentials
	KindForbidden                // 403: the role may not do that
)

// String names the kind as the API's error code prefix.
func (k Kind) String() string {
	switch k {
	case KindNotFound:
		return "not_found"
	case KindConflict:
		return "conflict"
	case KindInvalid:
		return "invalid"
	case KindUnplaceable:
		return "unplaceable"
	case KindUnavailable:
		return "unavailable"
	case KindUnauthorized:
		return "unauthorized"
	case KindForbidden:
		return "forbidden"
	}
	return "internal"
}

// FieldError names one invalid field of a request and why.
type FieldError = engine.FieldError

// Verdict is one allocator's placement verdict (why it was rejected or
// how it scored), copied from the placement core so that the API and the
// console show it without importing it.
type Verdict struct {
	Kind      string  `json:"kind,omitempty"`
	Allocator string  `json:"allocator"`
	Zone      string  `json:"zone"`
	Feasible  bool    `json:"feasible"`
	Reason    string  `json:"reason,omitempty"`
	Score     float64 `json:"score,omitempty"`
	Chosen    bool    `json:"chosen,omitempty"`
}

// Error is the typed error of every service function.
type Error struct {
	Kind Kind
	// Code is a stable machine-readable code, e.g. "deployment.not_found".
	Code    string
	Message string
	Fields  []FieldError
	// Explain carries the placement verdicts of an Unplaceable error.
	Explain []Verdict
	Err     error
}

func (e *Error) Error() string {
	msg := e.Message
	if len(e.Fields) > 0 {
		var parts []string
		for _, f := range e.Fields {
			parts = append(parts, f.Field+": "+f.Message)
		}
		if msg == "" {
			msg = strings.Join(parts, "; ")
		} else {
			msg += " (" + strings.Join(parts, "; ") + ")"
		}
	}
	if e.Err != nil && msg == "" {
		return e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the kind sentinels (errors.Is(err, service.ErrNotFound)).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == "" && t.Message == "" && t.Kind == e.Kind
}

// Sentinels to test an error's kind with errors.Is.
var (
	ErrNotFound     = &Error{Kind: KindNotFound}
	ErrConflict     = &Error{Kind: KindConflict}
	ErrInvalid      = &Error{Kind: KindInvalid}
	ErrUnplaceable  = &Error{Kind: KindUnplaceable}
	ErrUnavailable  = &Error{Kind: KindUnavailable}
	ErrUnauthorized = &Error{Kind: KindUnauthorized}
	ErrForbidden    = &Error{Kind: KindForbidden}
)

// KindOf returns the kind of any error (KindInternal when untyped).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

func notFound(what, id string) *Error {
	return &Error{Kind: KindNotFound, Code: what + ".not_found",
		Message: fmt.Sprintf("%s %s not found: list them with `paddock %s list`", what, id, what)}
}

func conflict(code, format string, args ...any) *Error {
	return &Error{Kind: KindConflict, Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalid(fields ...FieldError) *Error {
	return &Error{Kind: KindInvalid, Code: "request.invalid", Message: "invalid request", Fields: fields}
}

func field(name, format string, args ...any) FieldError {
	return FieldError{Field: name, Message: fmt.Sprintf(format, args...)}
}

// storeErr turns a store error into a service error: unavailable
// ZooKeeper, lost races and refusals get their kinds; the rest is
// internal. what names the object for not-found errors.
func storeErr(err error, what, id string) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	switch {
	case errors.Is(err, engine.ErrNotFound):
		e := notFound(what, id)
		e.Err = err
		return e
	case errors.Is(err, engine.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: KindUnavailable, Code: "zookeeper.unavailable",
			Message: "the platform's state store (ZooKeeper) is unavailable: retry in a few seconds; if it persists check ZooKeeper (`paddock status`, scripts/zk.sh status)", Err: err}
	case errors.Is(err, engine.ErrConflict):
		return &Error{Kind: KindConflict, Code: "version.conflict",
			Message: fmt.Sprintf("%s %s changed while being updated: read it again and retry", what, id), Err: err}
	case errors.Is(err, engine.ErrNoAuth):
		return &Error{Kind: KindInternal, Code: "store.not_authorised",
			Message: "the API's ZooKeeper credential may not do that: run the API with the admin role's credential", Err: err}
	}
	return &Error{Kind: KindInternal, Code: "internal", Message: err.Error(), Err: err}
}
