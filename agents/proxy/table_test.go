package proxy

import (
	"testing"

	"paddock/engine"
)

func TestZoneState(t *testing.T) {
	cases := []struct {
		name   string
		allocs map[string]AllocatorView
		down   []string
	}{
		{"all alive", map[string]AllocatorView{"a": {Zone: "z1", Alive: true}, "b": {Zone: "z2", Alive: true}}, nil},
		{"one of two in a zone", map[string]AllocatorView{"a": {Zone: "z1", Alive: true}, "b": {Zone: "z1"}}, nil},
		{"whole zone", map[string]AllocatorView{"a": {Zone: "z1"}, "b": {Zone: "z1"}, "c": {Zone: "z2", Alive: true}}, []string{"z1"}},
		{"no zone recorded", map[string]AllocatorView{"a": {}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := zoneState(c.allocs)
			if len(got) != len(c.down) {
				t.Fatalf("zones down = %v, want %v", got, c.down)
			}
			for _, z := range c.down {
				if !got[z] {
					t.Fatalf("zone %s not down in %v", z, got)
				}
			}
		})
	}
}

func TestAvoidBackend(t *testing.T) {
	allocs := map[string]AllocatorView{"a1": {Zone: "z1", Alive: true}, "a2": {Zone: "z2"}, "a3": {Zone: "z3"}, "a4": {Zone: "z3", Alive: true}}
	down := zoneState(allocs)
	cases := []struct {
		name string
		be   engine.Backend
		want bool
	}{
		{"alive allocator", engine.Backend{Allocator: "a1", Zone: "z1"}, false},
		{"dead allocator, zone down", engine.Backend{Allocator: "a2", Zone: "z2"}, true},
		{"dead allocator, zone up", engine.Backend{Allocator: "a3", Zone: "z3"}, true},
		{"unknown allocator, zone down", engine.Backend{Allocator: "zz", Zone: "z2"}, true},
		{"unknown allocator and zone", engine.Backend{Allocator: "zz", Zone: "z9"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := avoidBackend(c.be, allocs, down); got != c.want {
				t.Fatalf("avoid = %v, want %v", got, c.want)
			}
		})
	}
}

func TestPick(t *testing.T) {
	mk := func(name string, out int64, down, avoid bool) *member {
		b := newBackend(name, false, "")
		b.outstanding.Store(out)
		b.down.Store(down)
		return &member{b: b, instance: name, avoid: avoid}
	}
	cases := []struct {
		name    string
		ms      []*member
		start   uint32
		exclude int // index into ms, -1 none
		want    string
	}{
		{"empty", nil, 0, -1, ""},
		{"least outstanding", []*member{mk("a", 3, false, false), mk("b", 1, false, false), mk("c", 2, false, false)}, 0, -1, "b"},
		{"ties rotate from start", []*member{mk("a", 0, false, false), mk("b", 0, false, false), mk("c", 0, false, false)}, 2, -1, "c"},
		{"down skipped", []*member{mk("a", 0, true, false), mk("b", 5, false, false)}, 0, -1, "b"},
		{"avoided zone skipped while another is up", []*member{mk("a", 0, false, true), mk("b", 9, false, false)}, 0, -1, "b"},
		{"avoided zone used as last resort", []*member{mk("a", 0, false, true), mk("b", 0, true, false)}, 0, -1, "a"},
		{"excluded skipped", []*member{mk("a", 0, false, false), mk("b", 4, false, false)}, 0, 0, "b"},
		{"all down", []*member{mk("a", 0, true, false), mk("b", 0, true, true)}, 0, -1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ex *backend
			if c.exclude >= 0 {
				ex = c.ms[c.exclude].b
			}
			got := pick(c.ms, c.start, ex)
			name := ""
			if got != nil {
				name = got.instance
			}
			if name != c.want {
				t.Fatalf("pick = %q, want %q", name, c.want)
			}
		})
	}
}
