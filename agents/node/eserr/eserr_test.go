package eserr

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		typ    string
		index  string
	}{
		{"index not found", IndexNotFound("logs"), 404, "index_not_found_exception", "logs"},
		{"wrapped conflict", fmt.Errorf("bulk item: %w", VersionConflict("a", "1", "current version [2] is different than the one provided [1]")), 409, "version_conflict_engine_exception", "a"},
		{"plain error", fmt.Errorf("disk full"), 500, "exception", ""},
		{"parsing", Parsing("unknown query [foo]"), 400, "parsing_exception", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Write(rec, tt.err)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d", rec.Code, tt.status)
			}
			var got struct {
				Error struct {
					RootCause []map[string]any `json:"root_cause"`
					Type      string           `json:"type"`
					Index     string           `json:"index"`
				} `json:"error"`
				Status int `json:"status"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.status || got.Error.Type != tt.typ || got.Error.Index != tt.index {
				t.Fatalf("got %+v", got)
			}
			if len(got.Error.RootCause) != 1 || got.Error.RootCause[0]["type"] != tt.typ {
				t.Fatalf("root_cause %v", got.Error.RootCause)
			}
		})
	}
}
