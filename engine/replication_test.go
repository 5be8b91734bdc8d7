package engine

import (
	"strings"
	"testing"
)

func TestReplicationValidate(t *testing.T) {
	cases := []struct {
		name string
		r    Replication
		err  string
	}{
		{"ok", Replication{Term: 1, Primary: "a", Copies: []string{"a", "b"}, InSync: []string{"a"}}, ""},
		{"all in sync", Replication{Term: 3, Primary: "b", Copies: []string{"a", "b"}, InSync: []string{"b", "a"}}, ""},
		{"term zero", Replication{Primary: "a", Copies: []string{"a"}, InSync: []string{"a"}}, "terms start at 1"},
		{"no primary", Replication{Term: 1, Copies: []string{"a"}, InSync: []string{"a"}}, "no primary"},
		{"primary not in sync", Replication{Term: 1, Primary: "a", Copies: []string{"a", "b"}, InSync: []string{"b"}}, "not in in_sync"},
		{"in sync not a copy", Replication{Term: 1, Primary: "a", Copies: []string{"a"}, InSync: []string{"a", "c"}}, "not a set of copies"},
		{"repeated copy", Replication{Term: 1, Primary: "a", Copies: []string{"a", "a"}, InSync: []string{"a"}}, "repeated"},
		{"repeated in sync", Replication{Term: 1, Primary: "a", Copies: []string{"a", "b"}, InSync: []string{"a", "a"}}, "not a set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.r.Validate()
			if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("Validate() = %v, want %q", err, c.err)
			}
			if _, oerr := OpReplication("d", c.r, AnyVersion); (oerr == nil) != (c.err == "") {
				t.Fatalf("OpReplication accepted a routing Validate refuses (or the reverse): %v", oerr)
			}
		})
	}
}

func TestReplicationHealth(t *testing.T) {
	r := Replication{Term: 2, Primary: "p", Copies: []string{"p", "r1", "r2"}, InSync: []string{"p", "r1"}}
	cases := []struct {
		name   string
		r      Replication
		down   []string
		health string
		reason string
	}{
		{"all in sync", Replication{Term: 1, Primary: "p", Copies: []string{"p", "r1"}, InSync: []string{"p", "r1"}}, nil, HealthGreen, ""},
		{"one recovering", r, nil, HealthYellow, "r2 recovering"},
		{"in-sync replica down", Replication{Term: 1, Primary: "p", Copies: []string{"p", "r1"}, InSync: []string{"p", "r1"}}, []string{"r1"}, HealthYellow, "1 of 2 copies in sync (r1 not running)"},
		{"primary down", r, []string{"p"}, HealthRed, "primary p is not running"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			live := func(id string) bool {
				for _, d := range c.down {
					if d == id {
						return false
					}
				}
				return true
			}
			h, why := ReplicationHealth(c.r, live)
			if h != c.health || !strings.Contains(why, c.reason) {
				t.Fatalf("health = %s (%q), want %s (%q)", h, why, c.health, c.reason)
			}
		})
	}
}
