package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"paddock/engine/service"
)

// MaxBodyBytes bounds request bodies.
const MaxBodyBytes = 64 << 10

// decodeBody decodes a JSON request body into v strictly: size-limited,
// unknown fields refused, exactly one JSON value. An empty body is
// allowed only when optional.
func decodeBody(r *http.Request, v any, optional bool) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return apiErr(service.KindInvalid, "request.unreadable", "cannot read the request body: "+err.Error())
	}
	if len(body) > MaxBodyBytes {
		return &service.Error{Kind: service.KindInvalid, Code: "request.too_large",
			Message: fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)}
	}
	return decodeBytes(body, v, optional)
}

// decodeBytes is decodeBody's pure part (fuzzed).
func decodeBytes(body []byte, v any, optional bool) error {
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return apiErr(service.KindInvalid, "request.empty", "empty request body: send a JSON object (see /api/v1/api-docs)")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return apiErr(service.KindInvalid, "request.malformed", "request body holds more than one JSON value")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apiErr(service.KindInvalid, "request.malformed", "unexpected data after the JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return apiErr(service.KindInvalid, "request.malformed", fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se))
	case errors.As(err, &te):
		name := te.Field
		if name == "" {
			name = "(body)"
		}
		return apiErr(service.KindInvalid, "request.invalid", "invalid field type",
			service.FieldError{Field: name, Message: fmt.Sprintf("expected %s, got JSON %s", te.Type, te.Value)})
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return apiErr(service.KindInvalid, "request.malformed", "truncated JSON body")
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name := strings.Trim(f, `"`)
		return apiErr(service.KindInvalid, "request.unknown_field", "unknown field",
			service.FieldError{Field: name, Message: "unknown field: see /api/v1/api-docs for the accepted fields"})
	}
	return apiErr(service.KindInvalid, "request.malformed", "malformed JSON: "+msg)
}
