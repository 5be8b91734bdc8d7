package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"paddock/engine/service"
)

// ErrorItem is one entry of an error body.
type ErrorItem struct {
	Code    string               `json:"code"`
	Message string               `json:"message"`
	Fields  []service.FieldError `json:"fields,omitempty"`
	// Explain carries placement verdicts (422).
	Explain []service.Verdict `json:"explain,omitempty"`
}

// ErrorBody is every 4xx/5xx answer: {"errors":[…]}.
type ErrorBody struct {
	Errors []ErrorItem `json:"errors"`
}

// statusOf maps a service error kind to its HTTP status.
func statusOf(k service.Kind) int {
	switch k {
	case service.KindNotFound:
		return http.StatusNotFound
	case service.KindConflict:
		return http.StatusConflict
	case service.KindInvalid:
		return http.StatusBadRequest
	case service.KindUnplaceable:
		return http.StatusUnprocessableEntity
	case service.KindUnavailable:
		return http.StatusServiceUnavailable
	case service.KindUnauthorized:
		return http.StatusUnauthorized
	case service.KindForbidden:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// writeError answers err as {"errors":[…]} with the status of its kind.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var se *service.Error
	if !errors.As(err, &se) {
		se = &service.Error{Kind: service.KindInternal, Code: "internal",
			Message: "internal error: see the API's log for details", Err: err}
	}
	status := statusOf(se.Kind)
	switch se.Code {
	case "method.not_allowed":
		status = http.StatusMethodNotAllowed
	case "request.too_large":
		status = http.StatusRequestEntityTooLarge
	}
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	code := se.Code
	if code == "" {
		code = se.Kind.String()
	}
	msg := se.Message
	if msg == "" {
		msg = se.Error()
	}
	switch status {
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `ApiKey, Basic realm="paddock"`)
	}
	writeJSON(w, status, ErrorBody{Errors: []ErrorItem{{Code: code, Message: msg, Fields: se.Fields, Explain: se.Explain}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"errors":[{"code":"internal","message":"cannot encode the response"}]}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func apiErr(kind service.Kind, code, msg string, fields ...service.FieldError) *service.Error {
	return &service.Error{Kind: kind, Code: code, Message: msg, Fields: fields}
}
