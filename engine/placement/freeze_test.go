package placement

import (
	"slices"
	"testing"
)

func TestFreezeReasons(t *testing.T) {
	t.Parallel()
	up := func(z string) FleetAllocator { return FleetAllocator{Zone: z, Alive: true} }
	down := func(z string) FleetAllocator { return FleetAllocator{Zone: z} }
	for _, tc := range []struct {
		name  string
		fleet []FleetAllocator
		want  []string
	}{
		{"all alive", []FleetAllocator{up("z1"), up("z2"), up("z3")}, nil},
		{"one lost of four", []FleetAllocator{down("z1"), up("z1"), up("z2"), up("z3")}, nil},
		{"zone of one lost", []FleetAllocator{down("z1"), up("z2"), up("z3")}, nil},
		{"zone of two lost", []FleetAllocator{down("z1"), down("z1"), up("z2"), up("z2")}, []string{"every allocator of z1 (2) looks lost"}},
		{"most of the fleet", []FleetAllocator{down("z1"), down("z2"), down("z3"), up("z3")}, []string{"3 of 4 allocators look lost"}},
		{"both", []FleetAllocator{down("z1"), down("z1"), down("z2"), up("z3")},
			[]string{"every allocator of z1 (2) looks lost", "3 of 4 allocators look lost"}},
		{"fleet of two both lost", []FleetAllocator{down("z1"), down("z2")}, nil},
		{"empty", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := FreezeReasons(tc.fleet); !slices.Equal(got, tc.want) {
				t.Errorf("FreezeReasons = %q, want %q", got, tc.want)
			}
		})
	}
}
