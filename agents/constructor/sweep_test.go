package constructor

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestSweepPacesRounds(t *testing.T) {
	list := func(n int) func() []string {
		return func() []string {
			out := make([]string, n)
			for i := range out {
				out[i] = fmt.Sprint(i)
			}
			return out
		}
	}
	t0 := time.Unix(1000, 0)
	// Small: the whole list at once, then nothing until the period
	// since the round's start has passed.
	s := &sweep{period: 5 * time.Second, limit: 100}
	if ids, started := s.next(t0, list(12)); !started || !slices.Equal(ids, list(12)()) {
		t.Fatalf("first round: %v %v", ids, started)
	}
	if ids, _ := s.next(t0.Add(4500*time.Millisecond), list(12)); ids != nil {
		t.Fatalf("between rounds: %v", ids)
	}
	if ids, started := s.next(t0.Add(5*time.Second), list(12)); !started || len(ids) != 12 {
		t.Fatalf("next round: %v %v", ids, started)
	}
	// Large: limit per call, every id once, the round lasts longer than
	// the period; the next starts at once after it.
	s = &sweep{period: 5 * time.Second, limit: 100}
	var got []string
	for i := range 10 {
		ids, started := s.next(t0.Add(time.Duration(i)*time.Second), list(1000))
		if started != (i == 0) || len(ids) != 100 {
			t.Fatalf("call %d: %d ids, started %v", i, len(ids), started)
		}
		got = append(got, ids...)
	}
	if !slices.Equal(got, list(1000)()) {
		t.Fatalf("large round: %d ids, not the list once", len(got))
	}
	if _, started := s.next(t0.Add(10*time.Second), list(1000)); !started {
		t.Fatal("the next round did not start after a round longer than the period")
	}
}
