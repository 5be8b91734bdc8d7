package constructor

import (
	"slices"
	"testing"

	"paddock/engine"
)

func rt(term int64, primary string, copies, inSync []string) engine.Replication {
	return engine.Replication{Term: term, Primary: primary, Copies: copies, InSync: inSync}
}

func TestPlanRouting(t *testing.T) {
	cases := []struct {
		name     string
		cur      *engine.Replication
		copies   []string
		created  bool
		migrated []string
		want     engine.Replication
		changed  bool
	}{
		{name: "new deployment: every copy in sync", copies: []string{"b", "a"}, created: true,
			want: rt(1, "a", []string{"a", "b"}, []string{"a", "b"}), changed: true},
		{name: "first routing of a deployment with data: one copy in sync", copies: []string{"b", "a"},
			want: rt(1, "a", []string{"a", "b"}, []string{"a"}), changed: true},
		{name: "no copies: nothing written", copies: nil, want: engine.Replication{}},
		{name: "same group: unchanged", cur: ptr(rt(2, "a", []string{"a", "b"}, []string{"a", "b"})), copies: []string{"b", "a"},
			want: rt(2, "a", []string{"a", "b"}, []string{"a", "b"})},
		{name: "a copy added: out of sync, recovers", cur: ptr(rt(2, "a", []string{"a", "b"}, []string{"a", "b"})), copies: []string{"a", "b", "c"},
			migrated: []string{"c"}, want: rt(2, "a", []string{"a", "b", "c"}, []string{"a", "b"}), changed: true},
		{name: "a replica removed", cur: ptr(rt(2, "a", []string{"a", "b"}, []string{"a", "b"})), copies: []string{"a"},
			want: rt(2, "a", []string{"a"}, []string{"a"}), changed: true},
		{name: "primary removed: in-sync copy promoted", cur: ptr(rt(2, "a", []string{"a", "b", "c"}, []string{"a", "c"})), copies: []string{"b", "c", "d"},
			migrated: []string{"d"}, want: rt(3, "c", []string{"b", "c", "d"}, []string{"c"}), changed: true},
		{name: "every node replaced with the data migrated: a new copy leads", cur: ptr(rt(4, "a", []string{"a", "b"}, []string{"a", "b"})),
			copies: []string{"d", "c"}, migrated: []string{"d", "c"}, want: rt(5, "c", []string{"c", "d"}, []string{"c"}), changed: true},
		{name: "no in-sync copy stays and nothing migrated: the primary stays", cur: ptr(rt(4, "a", []string{"a", "b"}, []string{"a"})),
			copies: []string{"b", "c"}, want: rt(4, "a", []string{"a", "b", "c"}, []string{"a"}), changed: true},
		{name: "migrated data never outranks an in-sync copy", cur: ptr(rt(4, "a", []string{"a", "b"}, []string{"a", "b"})),
			copies: []string{"b", "c"}, migrated: []string{"c"}, want: rt(5, "b", []string{"b", "c"}, []string{"b"}), changed: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, changed := planRouting(c.cur, c.copies, c.created, c.migrated, "plan p")
			if changed != c.changed || !got.Equal(c.want) {
				t.Fatalf("planRouting = %+v (changed %v), want %+v (changed %v)", got, changed, c.want, c.changed)
			}
			if changed {
				if err := got.Validate(); err != nil {
					t.Fatalf("invalid routing %+v: %v", got, err)
				}
				if got.Reason == "" {
					t.Fatal("a change without a reason")
				}
			}
		})
	}
}

func TestApplyEvents(t *testing.T) {
	cur := rt(3, "p", []string{"p", "r1", "r2"}, []string{"p", "r1"})
	cases := []struct {
		name    string
		from    string
		evs     []ReplicationEvent
		want    []string
		changed bool
		stale   int
	}{
		{"failed copy leaves in_sync", "p", []ReplicationEvent{{Kind: EventFailed, Copy: "r1", Term: 3, Reason: "connection refused"}}, []string{"p"}, true, 0},
		{"recovered copy joins", "p", []ReplicationEvent{{Kind: EventInSync, Copy: "r2", Term: 3}}, []string{"p", "r1", "r2"}, true, 0},
		{"older term ignored", "p", []ReplicationEvent{{Kind: EventFailed, Copy: "r1", Term: 2}}, []string{"p", "r1"}, false, 1},
		{"not the primary: ignored", "r1", []ReplicationEvent{{Kind: EventFailed, Copy: "p", Term: 3}}, []string{"p", "r1"}, false, 1},
		{"the primary never fails itself out", "p", []ReplicationEvent{{Kind: EventFailed, Copy: "p", Term: 3}}, []string{"p", "r1"}, false, 0},
		{"unknown copy not added", "p", []ReplicationEvent{{Kind: EventInSync, Copy: "x", Term: 3}}, []string{"p", "r1"}, false, 0},
		{"replayed in order: same end", "p", []ReplicationEvent{{Kind: EventFailed, Copy: "r1", Term: 3}, {Kind: EventInSync, Copy: "r1", Term: 3},
			{Kind: EventInSync, Copy: "r2", Term: 3}}, []string{"p", "r1", "r2"}, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, changed, stale := applyEvents(cur, c.from, c.evs)
			if changed != c.changed || stale != c.stale || !slices.Equal(got.InSync, c.want) {
				t.Fatalf("applyEvents = in_sync %v changed %v stale %d, want %v %v %d", got.InSync, changed, stale, c.want, c.changed, c.stale)
			}
			if got.Term != cur.Term || got.Primary != cur.Primary {
				t.Fatalf("events changed the term or primary: %+v", got)
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if !slices.Equal(cur.InSync, []string{"p", "r1"}) {
		t.Fatalf("applyEvents changed its input: %v", cur.InSync)
	}
}

func TestPromote(t *testing.T) {
	cases := []struct {
		name    string
		cur     engine.Replication
		down    []string
		primary string
		ok      bool
	}{
		{"in-sync replica promoted", rt(3, "p", []string{"p", "r1", "r2"}, []string{"p", "r2"}), []string{"p"}, "r2", true},
		{"never a copy out of sync", rt(3, "p", []string{"p", "r1"}, []string{"p"}), []string{"p"}, "", false},
		{"never a copy that does not run", rt(3, "p", []string{"p", "r1", "r2"}, []string{"p", "r1", "r2"}), []string{"p", "r1"}, "r2", true},
		{"nothing runs: red", rt(3, "p", []string{"p", "r1"}, []string{"p", "r1"}), []string{"p", "r1"}, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := promote(c.cur, func(id string) bool { return !slices.Contains(c.down, id) }, "test")
			if ok != c.ok {
				t.Fatalf("promote ok = %v, want %v (%+v)", ok, c.ok, got)
			}
			if !ok {
				if !got.Equal(c.cur) {
					t.Fatalf("a failed promotion changed the routing: %+v", got)
				}
				return
			}
			if got.Primary != c.primary || got.Term != c.cur.Term+1 || got.IsInSync(c.cur.Primary) || !slices.Equal(got.Copies, c.cur.Copies) {
				t.Fatalf("promote = %+v, want primary %s at term %d, old primary out of in_sync, copies kept", got, c.primary, c.cur.Term+1)
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestAdoptRouting(t *testing.T) {
	r := adoptRouting([]string{"c", "a", "b"}, "b")
	if err := r.Validate(); err != nil || r.Primary != "b" || !slices.Equal(r.InSync, []string{"b"}) || !slices.Equal(r.Copies, []string{"a", "b", "c"}) || r.Term != 1 {
		t.Fatalf("adoptRouting = %+v (%v), want b primary alone in sync of a, b, c at term 1", r, err)
	}
}

func TestRestoredRouting(t *testing.T) {
	view := func(self string, term, rterm int64, ver int32, primary string, inSync ...string) NodeReplication {
		return NodeReplication{Self: self, Term: term, RoutingTerm: rterm, Version: ver, Role: RoleReplica, Primary: primary, InSync: inSync}
	}
	abc := []string{"a", "b", "c"}
	cases := []struct {
		name  string
		cur   engine.Replication
		ver   engine.Version
		views map[string]NodeReplication
		ahead bool
		want  engine.Replication
	}{
		{name: "nodes on the znode's routing: not ahead", cur: rt(2, "a", abc, abc), ver: 4,
			views: map[string]NodeReplication{"a": view("a", 2, 2, 4, "a", abc...), "b": view("b", 2, 2, 4, "a", abc...)}},
		{name: "nodes behind: not ahead", cur: rt(2, "a", abc, abc), ver: 4,
			views: map[string]NodeReplication{"a": view("a", 2, 2, 3, "a", abc...), "b": view("b", 1, 1, 9, "a", abc...)}},
		{name: "a standalone node or another copy's view does not count", cur: rt(2, "a", abc, abc), ver: 0,
			views: map[string]NodeReplication{"a": {Self: "a", Term: 5, Role: RoleStandalone}, "b": view("c", 2, 2, 7, "a", abc...)}},
		{name: "same term, higher version (restored znode): the nodes' in_sync kept, term past theirs", cur: rt(1, "a", abc, abc), ver: 0,
			views: map[string]NodeReplication{"a": view("a", 1, 1, 3, "a", "a", "b"), "b": view("b", 1, 1, 2, "a", abc...)},
			ahead: true, want: rt(2, "a", abc, []string{"a", "b"})},
		{name: "a failover after the backup: the nodes' primary, not the znode's", cur: rt(1, "a", abc, abc), ver: 2,
			views: map[string]NodeReplication{"b": view("b", 2, 2, 0, "b", "b", "c"), "c": view("c", 2, 2, 0, "b", "b", "c")},
			ahead: true, want: rt(3, "b", abc, []string{"b", "c"})},
		{name: "a term seen in ops only counts for the term", cur: rt(2, "a", abc, abc), ver: 5,
			views: map[string]NodeReplication{"a": view("a", 4, 2, 1, "a", abc...)},
			ahead: true, want: rt(5, "a", abc, abc)},
		{name: "the nodes' primary is not a copy: the znode's primary alone in sync", cur: rt(1, "a", abc, abc), ver: 0,
			views: map[string]NodeReplication{"b": view("b", 3, 3, 1, "z", "z", "b")},
			ahead: true, want: rt(4, "a", abc, []string{"a"})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := nodesAhead(c.cur, c.ver, c.views); got != c.ahead {
				t.Fatalf("nodesAhead = %v, want %v", got, c.ahead)
			}
			if !c.ahead {
				return
			}
			got := restoredRouting(c.cur, c.views)
			if !got.Equal(c.want) {
				t.Fatalf("restoredRouting = %+v, want %+v", got, c.want)
			}
			if err := got.Validate(); err != nil || got.Reason == "" {
				t.Fatalf("routing %+v: invalid (%v) or without a reason", got, err)
			}
		})
	}
}
