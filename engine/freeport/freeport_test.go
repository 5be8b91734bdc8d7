package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPickOutsideEphemeralRange(t *testing.T) {
	start := ephemeralStart()
	ports, err := Pick("127.0.0.1", 50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p < low || p >= start {
			t.Errorf("port %d outside [%d, %d)", p, low, start)
		}
		if seen[p] {
			t.Errorf("port %d returned twice", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Errorf("port %d not bindable: %v", p, err)
			continue
		}
		l.Close()
	}
}

func TestPickNeverReturnsAPortTwice(t *testing.T) {
	a, err := Pick("127.0.0.1", 100)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Pick("127.0.0.1", 100)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range append(a, b...) {
		if seen[p] {
			t.Fatalf("port %d returned twice in one process", p)
		}
		seen[p] = true
	}
}
