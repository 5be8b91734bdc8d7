package api

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"paddock/engine/service"
)

func TestDecodeBytes(t *testing.T) {
	cases := []struct {
		name, body string
		optional   bool
		code       string
		field      string
	}{
		{"valid", `{"name":"a","spec":{"elasticsearch":{"size_mb":1024,"zones":1}}}`, false, "", ""},
		{"empty required", ``, false, "request.empty", ""},
		{"empty optional", `  `, true, "", ""},
		{"unknown top field", `{"name":"a","nmae":"b"}`, false, "request.unknown_field", "nmae"},
		{"unknown nested field", `{"spec":{"elasticsearch":{"size":1}}}`, false, "request.unknown_field", "size"},
		{"wrong type", `{"name":5}`, false, "request.invalid", "name"},
		{"wrong nested type", `{"spec":{"elasticsearch":{"zones":"two"}}}`, false, "request.invalid", "spec.elasticsearch.zones"},
		{"syntax", `{"name":}`, false, "request.malformed", ""},
		{"truncated", `{"name":"a"`, false, "request.malformed", ""},
		{"two values", `{} {}`, false, "request.malformed", ""},
		{"trailing garbage", `{}x`, false, "request.malformed", ""},
		{"array", `[]`, false, "request.invalid", ""},
		{"null", `null`, false, "", ""},
		{"overflow", `{"spec":{"elasticsearch":{"size_mb":99999999999999999999}}}`, false, "request.invalid", "spec.elasticsearch.size_mb"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b CreateDeploymentBody
			err := decodeBytes([]byte(tc.body), &b, tc.optional)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var se *service.Error
			if !errors.As(err, &se) || se.Kind != service.KindInvalid || se.Code != tc.code {
				t.Fatalf("error %v (%#v), want code %s", err, se, tc.code)
			}
			if tc.field != "" && (len(se.Fields) == 0 || se.Fields[0].Field != tc.field) {
				t.Fatalf("fields %+v, want %s", se.Fields, tc.field)
			}
		})
	}
}

// FuzzDecodeCreate: decoding never panics; a refusal is always an
// Invalid error with a message; an accepted body round-trips.
func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{
		`{"name":"a","request_id":"r","validate_only":true,"spec":{"version":"8.18.0","elasticsearch":{"size_mb":1024,"zones":2,"allocator_filter":{"t":"hot"}},"kibana":{"size_mb":512,"zones":1}}}`,
		`{}`, `[]`, `null`, `{"name":1}`, `{"spec":{"elasticsearch":{"allocator_filter":{}}}}`, `{"spec":{"kibana":{"zones":-1}}}`, "\x00", `{"a":`, `"x"`, `{"name":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDecode(t, body, &CreateDeploymentBody{}, func() any { return &CreateDeploymentBody{} })
	})
}

// FuzzDecodeUpdate is FuzzDecodeCreate for PUT bodies.
func FuzzDecodeUpdate(f *testing.F) {
	for _, s := range []string{`{"name":"b","version":3,"spec":{"elasticsearch":{"size_mb":2048}}}`, `{"version":"3"}`, `{"spec":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDecode(t, body, &UpdateDeploymentBody{}, func() any { return &UpdateDeploymentBody{} })
	})
}

func checkDecode(t *testing.T, body []byte, v any, fresh func() any) {
	err := decodeBytes(body, v, false)
	if err != nil {
		var se *service.Error
		if !errors.As(err, &se) || se.Kind != service.KindInvalid || se.Code == "" || strings.TrimSpace(se.Message) == "" {
			t.Fatalf("refusal is not a typed Invalid error: %v", err)
		}
		return
	}
	out, merr := json.Marshal(v)
	if merr != nil {
		t.Fatalf("accepted body cannot be re-encoded: %v", merr)
	}
	w := fresh()
	if err := decodeBytes(out, w, false); err != nil {
		t.Fatalf("re-encoded body %s refused: %v", out, err)
	}
	// Compare encodings: empty maps and nil maps encode alike (omitempty).
	if out2, _ := json.Marshal(w); string(out) != string(out2) {
		t.Fatalf("round trip differs: %s vs %s", out, out2)
	}
}
