package placement

import (
	"fmt"
	"hash/fnv"
	"sort"
)

// PlanSeed is the shuffle seed of a plan's placement: the service's
// preview and the constructor's decision use it, so over the same
// inventory the preview names the allocators the plan then uses.
func PlanSeed(planID string) int64 {
	h := fnv.New64a()
	h.Write([]byte(planID))
	return int64(h.Sum64())
}

// FleetAllocator is one allocator as the rescheduling freeze sees it.
type FleetAllocator struct {
	Zone  string
	Alive bool
}

// FreezeReasons is the one rescheduling-freeze rule (the constructor
// applies it, the console shows it): a loss that looks like a network
// split rather than failed hosts holds replacements back. It says why,
// one reason per finding, empty when rescheduling may proceed: every
// allocator of a zone of two or more looks lost, or more than half of a
// fleet of three or more. One lost allocator is an ordinary failure.
func FreezeReasons(fleet []FleetAllocator) []string {
	total, missing := map[string]int{}, map[string]int{}
	lost := 0
	for _, a := range fleet {
		total[a.Zone]++
		if !a.Alive {
			missing[a.Zone]++
			lost++
		}
	}
	zones := make([]string, 0, len(total))
	for z := range total {
		zones = append(zones, z)
	}
	sort.Strings(zones)
	var reasons []string
	for _, z := range zones {
		if total[z] >= 2 && missing[z] == total[z] {
			reasons = append(reasons, fmt.Sprintf("every allocator of %s (%d) looks lost", z, total[z]))
		}
	}
	if len(fleet) >= 3 && 2*lost > len(fleet) {
		reasons = append(reasons, fmt.Sprintf("%d of %d allocators look lost", lost, len(fleet)))
	}
	return reasons
}
