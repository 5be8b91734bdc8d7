package dsl

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"paddock/agents/node/eserr"
)

// MultiSearch runs an _msearch body: NDJSON pairs of a header line
// ({"index": ...}) and a search body line. Each item answers on its own: a
// broken or failing item reports its error, the others run. resolve turns
// an index expression into targets; an item without an index calls
// resolve("") (the request path's index, or every index).
func MultiSearch(ctx context.Context, body []byte, params url.Values, resolve func(expr string) ([]Target, error)) (any, error) {
	start := time.Now()
	lines := splitNDJSON(body)
	if len(lines) == 0 {
		return nil, eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
	}
	var responses []any
	for i := 0; i < len(lines); i += 2 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		header := lines[i]
		var item []byte
		if i+1 < len(lines) {
			item = lines[i+1]
		}
		responses = append(responses, msearchItem(ctx, header, item, params, resolve))
	}
	return map[string]any{"took": time.Since(start).Milliseconds(), "responses": responses}, nil
}

func splitNDJSON(body []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(body, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

func msearchError(err error) any {
	e := eserr.From(err)
	return map[string]any{"error": e.Body(), "status": e.Status}
}

func msearchItem(ctx context.Context, header, body []byte, params url.Values, resolve func(string) ([]Target, error)) any {
	p := url.Values{}
	for _, k := range []string{"rest_total_hits_as_int", "typed_keys"} {
		if v, ok := params[k]; ok {
			p[k] = v
		}
	}
	expr := ""
	h, err := decodeJSON(header)
	if err != nil {
		return msearchError(err)
	}
	ho, ok := h.(map[string]any)
	if !ok {
		return msearchError(parsingErr("msearch header must be an object, got %s", jsonKind(h)))
	}
	for _, k := range sortedKeys(ho) {
		switch k {
		case "index":
			switch x := ho[k].(type) {
			case string:
				expr = x
			case []any:
				var names []string
				for _, e := range x {
					if s, ok := e.(string); ok {
						names = append(names, s)
					}
				}
				expr = strings.Join(names, ",")
			}
		case "search_type", "preference", "routing", "request_cache", "allow_no_indices", "expand_wildcards",
			"ignore_unavailable", "allow_partial_search_results", "ccs_minimize_roundtrips", "type":
		default:
			return msearchError(eserr.BadRequest("key [%s] is not supported in the metadata section", k))
		}
	}
	if body == nil {
		return msearchError(eserr.BadRequest("msearch item has a header but no body"))
	}
	req, err := ParseSearch(body, p)
	if err != nil {
		return msearchError(err)
	}
	if req.Scroll > 0 {
		return msearchError(eserr.BadRequest("scroll is not supported in msearch"))
	}
	targets, err := resolve(expr)
	if err != nil {
		return msearchError(err)
	}
	resp, err := Search(ctx, targets, req)
	if err != nil {
		return msearchError(err)
	}
	r := resp.(*response)
	return msearchOK{response: r, Status: 200}
}

// msearchOK is a search response with its status, as _msearch shows it.
type msearchOK struct {
	*response
	Status int `json:"status"`
}
