package engine

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestPlanProgressWire(t *testing.T) {
	tests := []struct {
		name string
		wire string // what earlier constructors wrote
		want PlanProgress
	}{
		{name: "empty", wire: `{}`, want: PlanProgress{}},
		{name: "grow and shrink", wire: `{"done:validate":"1","done:place":"1","source":"127.0.0.1:9201","paused":"1","switched":"1"}`,
			want: PlanProgress{Done: []string{"place", "validate"}, Source: "127.0.0.1:9201", Paused: true, Switched: true}},
		{name: "lost source", wire: `{"done:snapshot":"1","nosource":"1","recover":"snap-7"}`,
			want: PlanProgress{Done: []string{"snapshot"}, NoSource: true, Recover: "snap-7"}},
		{name: "rolling", wire: `{"rolling":"1","removed:old1":"1","successor:old1":"new1","nosnap:old2":"1","done:snapshot@old1":"1"}`,
			want: PlanProgress{Done: []string{"snapshot@old1"}, Rolling: true, Removed: []string{"old1"},
				Successor: map[string]string{"old1": "new1"}, NoSnapshot: []string{"old2"}}},
		{name: "restart", wire: `{"gen:i1":"3","done:restart:i1":"1"}`,
			want: PlanProgress{Done: []string{"restart:i1"}, Generation: map[string]int{"i1": 3}}},
		{name: "unknown keys kept", wire: `{"future":"x"}`, want: PlanProgress{other: map[string]string{"future": "x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got PlanProgress
			if err := json.Unmarshal([]byte(tt.wire), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("decoded %+v, want %+v", got, tt.want)
			}
			// Written back, it is the same map an earlier constructor reads.
			b, _ := json.Marshal(got)
			var back, orig map[string]string
			_ = json.Unmarshal(b, &back)
			_ = json.Unmarshal([]byte(tt.wire), &orig)
			if !reflect.DeepEqual(back, orig) {
				t.Fatalf("written back as %s, want %s", b, tt.wire)
			}
		})
	}
	if err := json.Unmarshal([]byte(`{"gen:i1":"x"}`), new(PlanProgress)); err == nil {
		t.Fatal("a non-numeric generation was accepted")
	}
	// A plan without progress has no progress field.
	b, _ := json.Marshal(Plan{ID: "p"})
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if _, ok := m["progress"]; ok {
		t.Fatalf("empty progress written: %s", b)
	}
}

func FuzzPlanProgress(f *testing.F) {
	for _, s := range []string{`{}`, `null`, `{"done:validate":"1","source":"a"}`, `{"gen:x":"2","successor:a":"b"}`, `{"rolling":""}`, `[1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p PlanProgress
		if json.Unmarshal(b, &p) != nil {
			return
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("marshal of a decoded progress: %v", err)
		}
		var q PlanProgress
		if err := json.Unmarshal(out, &q); err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		out2, _ := json.Marshal(q)
		if string(out) != string(out2) {
			t.Fatalf("not stable: %s then %s", out, out2)
		}
	})
}
