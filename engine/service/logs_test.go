package service

import (
	"errors"
	"testing"

	"paddock/engine"
)

func TestPickInstance(t *testing.T) {
	es2 := engine.PlacedInstance{ID: "bb22", Kind: engine.KindElasticsearch, Zone: "zone-2"}
	es1 := engine.PlacedInstance{ID: "aa11", Kind: engine.KindElasticsearch, Zone: "zone-1"}
	kb := engine.PlacedInstance{ID: "ab33", Kind: engine.KindKibana, Zone: "zone-1"}
	all := []engine.PlacedInstance{kb, es2, es1}
	cases := []struct {
		name, ask, want string
		err             error
	}{
		{"default: first Elasticsearch by zone", "", "aa11", nil},
		{"exact id", "ab33", "ab33", nil},
		{"unique prefix", "bb", "bb22", nil},
		{"ambiguous prefix", "a", "", ErrInvalid},
		{"unknown", "zz", "", ErrNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := pickInstance("d", append([]engine.PlacedInstance(nil), all...), c.ask)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err %v, want %v", err, c.err)
				}
				return
			}
			if err != nil || got.ID != c.want {
				t.Fatalf("got %s (%v), want %s", got.ID, err, c.want)
			}
		})
	}
	if _, err := pickInstance("d", nil, ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("no instance: %v", err)
	}
}
