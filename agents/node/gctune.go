package node

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// CgroupMemoryMax is where a container's memory limit is read (cgroup v2).
const CgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// GC settings of a node in a container with a memory limit: the garbage
// collector may let the heap grow three times its live size (GOGC=200,
// twice the default: half the collections while bulk indexing, where
// bleve's segment building allocates fast and briefly), bounded by a
// soft limit of half the container's memory, past which it collects as
// often as needed. The other half is left to the page cache of bleve's
// memory-mapped segments and bbolt, as Elasticsearch leaves half of a
// node's memory outside its heap.
const (
	gcPercentInContainer = 200
	gcLimitShare         = 0.5
)

// gcPlan is the node's GC settings: percent and limit (bytes) to set,
// or why it keeps the runtime's. memoryMax is the content of
// CgroupMemoryMax ("" when unreadable); env reads the environment.
type gcPlan struct {
	percent int
	limit   int64
	keep    string // non-empty: the reason the runtime's settings stay
}

func planGC(memoryMax string, env func(string) string) gcPlan {
	if env("GOGC") != "" || env("GOMEMLIMIT") != "" {
		return gcPlan{keep: "GOGC or GOMEMLIMIT is set"}
	}
	v := strings.TrimSpace(memoryMax)
	if v == "" || v == "max" {
		return gcPlan{keep: "no container memory limit"}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return gcPlan{keep: fmt.Sprintf("unreadable container memory limit %q", v)}
	}
	return gcPlan{percent: gcPercentInContainer, limit: int64(float64(n) * gcLimitShare)}
}

// apply sets the plan and returns the settings it replaced (a plan
// that keeps the runtime's settings changes nothing).
func (p gcPlan) apply() gcPlan {
	if p.keep != "" {
		return p
	}
	return gcPlan{percent: debug.SetGCPercent(p.percent), limit: debug.SetMemoryLimit(p.limit)}
}

// tuneGC sets the node's GC settings from its container's memory limit
// and logs them (paddock node, at start).
func tuneGC(log *slog.Logger) {
	b, _ := os.ReadFile(CgroupMemoryMax)
	p := planGC(string(b), os.Getenv)
	if p.keep != "" {
		log.Info("garbage collector: runtime settings", "reason", p.keep, "GOGC", os.Getenv("GOGC"), "GOMEMLIMIT", os.Getenv("GOMEMLIMIT"))
		return
	}
	p.apply()
	log.Info("garbage collector: tuned to the container's memory", "gogc", p.percent, "memory_limit_bytes", p.limit,
		"container_memory_bytes", strings.TrimSpace(string(b)))
}
