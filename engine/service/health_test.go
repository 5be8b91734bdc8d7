package service

import (
	"testing"

	"paddock/engine"
)

func TestHealthOf(t *testing.T) {
	d := engine.Deployment{ID: "d", Instances: []engine.PlacedInstance{
		{ID: "p", Kind: engine.KindElasticsearch, Zone: "zone-1", Allocator: "a1"},
		{ID: "r", Kind: engine.KindElasticsearch, Zone: "zone-2", Allocator: "a2"},
		{ID: "k", Kind: engine.KindKibana, Zone: "zone-1", Allocator: "a1"},
	}}
	cases := []struct {
		name   string
		r      engine.Replication
		down   string
		health string
		copies string // role/in sync/running per copy
	}{
		{"green", engine.Replication{Term: 1, Primary: "p", Copies: []string{"p", "r"}, InSync: []string{"p", "r"}}, "", engine.HealthGreen, "p:P+S+R r:S+R"},
		{"replica recovering", engine.Replication{Term: 1, Primary: "p", Copies: []string{"p", "r"}, InSync: []string{"p"}}, "", engine.HealthYellow, "p:P+S+R r:R"},
		{"replica down", engine.Replication{Term: 1, Primary: "p", Copies: []string{"p", "r"}, InSync: []string{"p", "r"}}, "a2", engine.HealthYellow, "p:P+S+R r:S"},
		{"primary down", engine.Replication{Term: 2, Primary: "p", Copies: []string{"p", "r"}, InSync: []string{"p"}}, "a1", engine.HealthRed, "p:P+S r:R"},
		{"a copy without an instance does not run", engine.Replication{Term: 1, Primary: "p", Copies: []string{"p", "gone"}, InSync: []string{"p", "gone"}}, "", engine.HealthYellow, "p:P+S+R gone:S"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := healthOf(d, c.r, func(in engine.PlacedInstance) bool { return in.Allocator != c.down })
			if v.Health != c.health || (c.health != engine.HealthGreen) != (v.Reason != "") {
				t.Fatalf("health %s (%q), want %s", v.Health, v.Reason, c.health)
			}
			got := ""
			for i, cp := range v.Copies {
				if i > 0 {
					got += " "
				}
				got += cp.ID + ":"
				flags := ""
				for _, f := range []struct {
					on bool
					s  string
				}{{cp.Primary, "P"}, {cp.InSync, "S"}, {cp.Running, "R"}} {
					if f.on {
						if flags != "" {
							flags += "+"
						}
						flags += f.s
					}
				}
				got += flags
			}
			if got != c.copies {
				t.Fatalf("copies %q, want %q", got, c.copies)
			}
		})
	}
}
