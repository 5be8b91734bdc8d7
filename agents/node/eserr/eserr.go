// Package eserr is the node's Elasticsearch-shaped error: a status code, a
// type such as version_conflict_engine_exception, a reason, and the index
// or resource it concerns, written as Elasticsearch writes it:
//
//	{"error":{"root_cause":[{...}],"type":...,"reason":...},"status":N}
//
// Every package of the node returns these for anything a client did wrong,
// so the REST layer has one way to answer.
package eserr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is an Elasticsearch error.
type Error struct {
	Status int    // HTTP status
	Type   string // e.g. "index_not_found_exception"
	Reason string
	Index  string // the index concerned, if any
	// Extra holds further fields Elasticsearch puts beside type and reason
	// (for example "resource.id", "line", "col").
	Extra map[string]any
	// Cause, when set, is shown as caused_by.
	Cause *Error
}

func (e *Error) Error() string { return e.Type + ": " + e.Reason }

// New returns an error with a formatted reason.
func New(status int, typ, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Reason: fmt.Sprintf(format, args...)}
}

// WithIndex sets the index the error concerns and returns e.
func (e *Error) WithIndex(index string) *Error { e.Index = index; return e }

// With adds an extra field and returns e.
func (e *Error) With(key string, v any) *Error {
	if e.Extra == nil {
		e.Extra = map[string]any{}
	}
	e.Extra[key] = v
	return e
}

// The errors the node answers most.

// BadRequest is a 400 illegal_argument_exception.
func BadRequest(format string, args ...any) *Error {
	return New(http.StatusBadRequest, "illegal_argument_exception", format, args...)
}

// Parsing is a 400 parsing_exception (a malformed or unknown query).
func Parsing(format string, args ...any) *Error {
	return New(http.StatusBadRequest, "parsing_exception", format, args...)
}

// MapperParsing is a 400 mapper_parsing_exception (a value that
// contradicts the mapping, or a bad mapping).
func MapperParsing(format string, args ...any) *Error {
	return New(http.StatusBadRequest, "mapper_parsing_exception", format, args...)
}

// IndexNotFound is a 404 index_not_found_exception.
func IndexNotFound(index string) *Error {
	return New(http.StatusNotFound, "index_not_found_exception", "no such index [%s]", index).
		WithIndex(index).With("resource.type", "index_or_alias").With("resource.id", index)
}

// VersionConflict is a 409 version_conflict_engine_exception.
func VersionConflict(index, id, format string, args ...any) *Error {
	return New(http.StatusConflict, "version_conflict_engine_exception",
		"[%s]: version conflict, %s", id, fmt.Sprintf(format, args...)).WithIndex(index)
}

// Body is the error as a JSON object (the value of "error").
func (e *Error) Body() map[string]any {
	cause := e.fields()
	body := e.fields()
	body["root_cause"] = []any{cause}
	if e.Cause != nil {
		body["caused_by"] = e.Cause.fields()
	}
	return body
}

// Item is the error as it appears inside a bulk or mget item.
func (e *Error) Item() map[string]any {
	m := e.fields()
	if e.Cause != nil {
		m["caused_by"] = e.Cause.fields()
	}
	return m
}

func (e *Error) fields() map[string]any {
	m := map[string]any{"type": e.Type, "reason": e.Reason}
	if e.Index != "" {
		m["index"] = e.Index
	}
	for k, v := range e.Extra {
		m[k] = v
	}
	return m
}

// From turns any error into an *Error: an *Error (wrapped or not) is kept,
// anything else is a 500 "exception".
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return New(http.StatusInternalServerError, "exception", "%v", err)
}

// Write answers err in Elasticsearch's shape.
func Write(w http.ResponseWriter, err error) {
	e := From(err)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": e.Body(), "status": e.Status})
}
