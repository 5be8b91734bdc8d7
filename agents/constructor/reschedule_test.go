package constructor

import (
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestRescheduleObserve(t *testing.T) {
	t.Parallel()
	grace := 30 * time.Second
	fleet := func(dead ...string) []AllocatorView {
		all := []AllocatorView{
			{ID: "a1", Zone: "zone-1", Instances: 2}, {ID: "a2", Zone: "zone-1", Instances: 1},
			{ID: "b1", Zone: "zone-2", Instances: 1}, {ID: "b2", Zone: "zone-2"},
			{ID: "c1", Zone: "zone-3", Instances: 3},
		}
		for i := range all {
			all[i].Alive = true
			for _, d := range dead {
				if all[i].ID == d {
					all[i].Alive = false
				}
			}
		}
		return all
	}
	tests := []struct {
		name       string
		first      []AllocatorView // observed at t0
		then       []AllocatorView // observed at t0+after
		after      time.Duration
		wantLost   []string
		wantFreeze string
	}{
		{name: "within grace nothing", first: fleet("a1"), then: fleet("a1"), after: 10 * time.Second},
		{name: "past grace", first: fleet("a1"), then: fleet("a1"), after: 31 * time.Second, wantLost: []string{"a1"}},
		{name: "back alive resets the clock", first: fleet("a1"), then: fleet(), after: 31 * time.Second},
		{name: "no instances, nothing to do", first: fleet("b2"), then: fleet("b2"), after: time.Minute},
		{name: "single-allocator zone lost is an ordinary failure", first: fleet("c1"), then: fleet("c1"), after: time.Minute, wantLost: []string{"c1"}},
		{name: "whole zone of several freezes", first: fleet("a1", "a2"), then: fleet("a1", "a2"), after: time.Minute,
			wantLost: []string{"a1", "a2"}, wantFreeze: "every allocator of zone-1 (2) looks lost"},
		{name: "most allocators freeze", first: fleet("a1", "b1", "c1"), then: fleet("a1", "b1", "c1"), after: time.Minute,
			wantLost: []string{"a1", "b1", "c1"}, wantFreeze: "3 of 5 allocators look lost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Purely time-based: the bubble's clock moves only when every
			// goroutine in it waits, so the grace period passes at once.
			synctest.Test(t, func(t *testing.T) {
				r := newRescheduler()
				r.Observe(time.Now(), tt.first, grace)
				time.Sleep(tt.after)
				lost, freeze := r.Observe(time.Now(), tt.then, grace)
				if !reflect.DeepEqual(lost, tt.wantLost) {
					t.Fatalf("lost %v, want %v", lost, tt.wantLost)
				}
				if (tt.wantFreeze == "") != (freeze == "") || !strings.Contains(freeze, tt.wantFreeze) {
					t.Fatalf("freeze %q, want %q", freeze, tt.wantFreeze)
				}
			})
		})
	}
}

func TestRescheduleRateLimit(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		r := newRescheduler()
		t0 := time.Now()
		tests := []struct {
			at   time.Duration // since the first step
			n    int
			want bool
		}{
			{0, 4, true},                 // burst of 6
			{0, 2, true},                 // bucket empty now
			{0, 1, false},                // refused
			{10 * time.Second, 1, true},  // 6/min refills one every 10 s
			{10 * time.Second, 1, false}, // not two
			{5 * time.Minute, 6, true},   // full again, capped at the burst
			{5 * time.Minute, 1, false},
		}
		for i, tt := range tests {
			time.Sleep(time.Until(t0.Add(tt.at)))
			if got := r.Take(time.Now(), tt.n, 6); got != tt.want {
				t.Fatalf("step %d: Take at +%v of %d = %v, want %v", i, tt.at, tt.n, got, tt.want)
			}
		}
	})
}
