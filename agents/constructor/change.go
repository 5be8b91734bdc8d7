package constructor

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"paddock/engine"
	"paddock/engine/placement"
)

// Change is what a plan does to a deployment's topology: pure data,
// computed from the current deployment and the plan.
type Change struct {
	// Keep stay untouched.
	Keep []engine.PlacedInstance
	// Retire are removed at the end (replaced, scaled in, moved, deleted).
	Retire []engine.PlacedInstance
	// Requests place the new instances.
	Requests []placement.Request
	// Restart are restarted in place (forced restart).
	Restart []engine.PlacedInstance
	// Describe summarises the change for the activity log.
	Describe string
}

// NeedsMigration reports whether new Elasticsearch nodes must receive the
// data of the current ones.
func (c Change) NeedsMigration() bool {
	newES := false
	for _, r := range c.Requests {
		if r.Kind == engine.KindElasticsearch {
			newES = true
		}
	}
	if !newES {
		return false
	}
	for _, in := range append(append([]engine.PlacedInstance(nil), c.Keep...), c.Retire...) {
		if in.Kind == engine.KindElasticsearch {
			return true
		}
	}
	return false
}

func byKind(ins []engine.PlacedInstance, kind string) []engine.PlacedInstance {
	var out []engine.PlacedInstance
	for _, in := range ins {
		if in.Kind == kind {
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Zone < out[j].Zone || (out[i].Zone == out[j].Zone && out[i].ID < out[j].ID)
	})
	return out
}

func zonesOf(ins []engine.PlacedInstance) []string {
	var z []string
	for _, in := range ins {
		if !slices.Contains(z, in.Zone) {
			z = append(z, in.Zone)
		}
	}
	return z
}

func topo(spec engine.DeploymentSpec, kind string) engine.Topology {
	if kind == engine.KindKibana {
		return spec.Kibana
	}
	return spec.Elasticsearch
}

// ComputeChange turns current → desired into a Change.
func ComputeChange(dep engine.Deployment, plan engine.Plan) Change {
	var c Change
	cur := dep.Instances
	switch plan.Action {
	case engine.ActionDelete:
		c.Retire = append(c.Retire, cur...)
		c.Describe = fmt.Sprintf("delete %d instance(s)", len(cur))
		return c
	case engine.ActionRestart:
		c.Keep = append(c.Keep, cur...)
		c.Restart = append(c.Restart, cur...)
		c.Describe = fmt.Sprintf("restart %d instance(s)", len(cur))
		return c
	case engine.ActionMove:
		m := placement.MoveRequests(dep, plan.MoveFrom, plan.Targets)
		c.Keep, c.Retire, c.Requests = m.Keep, m.Moved, m.Requests
		c.Describe = fmt.Sprintf("move %d instance(s) off %v", len(m.Moved), plan.MoveFrom)
		return c
	}
	desc := ""
	for _, kind := range []string{engine.KindElasticsearch, engine.KindKibana} {
		want := topo(plan.Spec, kind)
		have := byKind(cur, kind)
		old := topo(dep.Spec, kind)
		switch {
		case want.SizeMB == 0 || want.Zones == 0:
			c.Retire = append(c.Retire, have...)
			if len(have) > 0 {
				desc += fmt.Sprintf("; remove %s", kind)
			}
		case len(have) == 0:
			c.Requests = append(c.Requests, placement.Request{DeploymentID: dep.ID, Kind: kind, SizeMB: want.SizeMB, Zones: want.Zones, Filter: want.Filter})
			desc += fmt.Sprintf("; add %s %s × %d zone(s)", kind, engine.FormatSize(want.SizeMB), want.Zones)
		case plan.Spec.Version != dep.Spec.Version || want.SizeMB != old.SizeMB || !maps.Equal(want.Filter, old.Filter) || instancesDiffer(have, want.SizeMB, plan.Spec.Version):
			c.Retire = append(c.Retire, have...)
			c.Requests = append(c.Requests, placement.Request{DeploymentID: dep.ID, Kind: kind, SizeMB: want.SizeMB, Zones: want.Zones,
				Filter: want.Filter, PreferZones: zonesOf(have), Replaces: true})
			desc += fmt.Sprintf("; replace %s: %s %s × %d → %s %s × %d", kind, dep.Spec.Version, engine.FormatSize(old.SizeMB), len(have),
				plan.Spec.Version, engine.FormatSize(want.SizeMB), want.Zones)
		case want.Zones > len(have):
			c.Keep = append(c.Keep, have...)
			c.Requests = append(c.Requests, placement.Request{DeploymentID: dep.ID, Kind: kind, SizeMB: want.SizeMB, Zones: want.Zones - len(have),
				Filter: want.Filter, ExcludeZones: zonesOf(have)})
			desc += fmt.Sprintf("; scale %s out %d → %d zones", kind, len(have), want.Zones)
		case want.Zones < len(have):
			c.Keep = append(c.Keep, have[:want.Zones]...)
			c.Retire = append(c.Retire, have[want.Zones:]...)
			desc += fmt.Sprintf("; scale %s in %d → %d zones", kind, len(have), want.Zones)
		default:
			c.Keep = append(c.Keep, have...)
		}
	}
	if desc == "" {
		desc = "; no topology change"
	}
	c.Describe = desc[2:]
	return c
}

// instancesDiffer reports instances not matching the spec (a previous
// partial rolling plan left them mixed).
func instancesDiffer(have []engine.PlacedInstance, size int, version string) bool {
	for _, in := range have {
		if in.SizeMB != size || (in.Version != "" && in.Version != version) {
			return true
		}
	}
	return false
}
