package allocator

import (
	"fmt"
	"regexp"
	"sort"

	"paddock/engine"
)

// Resources are a node container's limits.
type Resources struct {
	MemoryBytes int64
	// CPUShares is the relative CPU weight under contention: one share
	// per MB of memory, so a 32 GB node weighs twice a 16 GB one.
	CPUShares int64
	// NanoCPUs is the hard CPU ceiling: size/capacity × host CPUs.
	NanoCPUs int64
}

// Bounds of the CPU settings.
const (
	minCPUShares = 2
	maxCPUShares = 262144
	// minNanoCPUs keeps a tiny node schedulable (0.01 CPU).
	minNanoCPUs = 10_000_000
)

// ComputeResources derives a node's limits from its memory size, ECE
// style: memory limit = size; CPU in proportion to memory, as a weight
// (CPUShares) and as a quota of size/capacity of the host's CPUs.
func ComputeResources(sizeMB, capacityMB, hostCPUs int) Resources {
	r := Resources{MemoryBytes: int64(sizeMB) << 20}
	r.CPUShares = min(max(int64(sizeMB), minCPUShares), maxCPUShares)
	if capacityMB > 0 && hostCPUs > 0 {
		nano := int64(float64(sizeMB) / float64(capacityMB) * float64(hostCPUs) * 1e9)
		r.NanoCPUs = min(max(nano, minNanoCPUs), int64(hostCPUs)*1_000_000_000)
	}
	return r
}

// DefaultCapacityMB is 85% of host memory.
func DefaultCapacityMB(hostMemoryMB int) int { return hostMemoryMB * 85 / 100 }

var (
	idPattern      = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	versionPattern = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z_.-]{0,63}$`)
)

// ValidateInstance checks a desired instance before anything is run for
// it; the error is what the status znode says.
func ValidateInstance(in engine.Instance, iid string) error {
	switch {
	case in.ID != "" && in.ID != iid:
		return fmt.Errorf("record id %q does not match its znode %q: the constructor must write matching ids", in.ID, iid)
	case !idPattern.MatchString(iid):
		return fmt.Errorf("instance id %q is not usable as a container name: use letters, digits, '.', '_' or '-'", iid)
	case in.DeploymentID == "" || !idPattern.MatchString(in.DeploymentID):
		return fmt.Errorf("deployment id %q is missing or invalid", in.DeploymentID)
	case in.Kind != engine.KindElasticsearch && in.Kind != engine.KindKibana:
		return fmt.Errorf("unknown kind %q: use %s or %s", in.Kind, engine.KindElasticsearch, engine.KindKibana)
	case !versionPattern.MatchString(in.Version):
		return fmt.Errorf("invalid version %q", in.Version)
	case in.SizeMB < 64:
		return fmt.Errorf("size %d MB is too small: nodes need at least 64 MB", in.SizeMB)
	}
	return nil
}

// admission is the outcome of fitting desired instances into capacity.
type admission struct {
	admitted map[string]bool
	rejected map[string]string
	usedMB   int
}

// admit fits desired instances into capacityMB. Instances that already
// run keep their place (a capacity cut never evicts a running node);
// the others are admitted oldest first. Invalid ones are rejected with
// their reason.
func admit(desired map[string]engine.Instance, invalid map[string]error, running map[string]bool, capacityMB int) admission {
	a := admission{admitted: make(map[string]bool, len(desired)), rejected: map[string]string{}}
	ids := make([]string, 0, len(desired))
	for id := range desired {
		if err := invalid[id]; err != nil {
			a.rejected[id] = err.Error()
			continue
		}
		ids = append(ids, id)
	}
	// Everything fits (the constructor never assigns more): admitted in
	// any order, no sort.
	total := 0
	for _, id := range ids {
		total += desired[id].SizeMB
	}
	if total <= capacityMB {
		for _, id := range ids {
			a.admitted[id] = true
		}
		a.usedMB = total
		return a
	}
	sort.Slice(ids, func(i, j int) bool {
		ri, rj := running[ids[i]], running[ids[j]]
		if ri != rj {
			return ri
		}
		ci, cj := desired[ids[i]].CreatedAt, desired[ids[j]].CreatedAt
		if !ci.Equal(cj) {
			return ci.Before(cj)
		}
		return ids[i] < ids[j]
	})
	for _, id := range ids {
		in := desired[id]
		if running[id] || a.usedMB+in.SizeMB <= capacityMB {
			a.admitted[id] = true
			a.usedMB += in.SizeMB
			continue
		}
		a.rejected[id] = fmt.Sprintf("does not fit: %d MB asked, %d MB free of %d MB capacity: the constructor must place it elsewhere or the operator must raise the capacity",
			in.SizeMB, max(capacityMB-a.usedMB, 0), capacityMB)
	}
	return a
}
