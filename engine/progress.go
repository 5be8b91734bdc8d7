package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// PlanProgress is what a plan's executor keeps across leader changes,
// so a new leader resumes where the last one stopped.
//
// On the wire it is the flat string map constructors have always
// written ("done:<step key>": "1", "source": "<address>",
// "successor:<old id>": "<new id>", ...), so constructors of this
// version and of earlier ones resume each other's plans during an
// upgrade of the platform. Keys it does not know are kept as they are.
type PlanProgress struct {
	// Done lists the keys of the steps done (a step's name, or its name
	// and the instance it worked on).
	Done []string
	// Source is the node the data was snapshotted from.
	Source string
	// NoSource: no healthy node held the data (its allocator is lost).
	NoSource bool
	// Recover names the snapshot restored instead (no source).
	Recover string
	// Paused: the plan paused the route; Switched: it switched it.
	Paused, Switched bool
	// Rolling: the plan replaces instances one zone at a time.
	Rolling bool
	// ByRecovery: the new Elasticsearch copies take the data by
	// replication recovery from the primary (no snapshot, no pause).
	ByRecovery bool
	// Removed lists the old instances a rolling plan removed.
	Removed []string
	// Successor maps an old instance to the one replacing it.
	Successor map[string]string
	// NoSnapshot lists old instances whose successor restores nothing
	// (the old node was not healthy).
	NoSnapshot []string
	// Generation is the generation a restart asked of each instance.
	Generation map[string]int

	other map[string]string
}

// Wire keys of PlanProgress.
const (
	progDone       = "done:"
	progSource     = "source"
	progNoSource   = "nosource"
	progRecover    = "recover"
	progPaused     = "paused"
	progSwitched   = "switched"
	progRolling    = "rolling"
	progRecovery   = "byrecovery"
	progRemoved    = "removed:"
	progSuccessor  = "successor:"
	progNoSnapshot = "nosnap:"
	progGeneration = "gen:"
)

// IsDone reports whether the step with this key is done.
func (p *PlanProgress) IsDone(key string) bool { return slices.Contains(p.Done, key) }

// MarkDone records the step with this key as done.
func (p *PlanProgress) MarkDone(key string) {
	if !p.IsDone(key) {
		p.Done = append(p.Done, key)
	}
}

// WasRemoved reports whether a rolling plan removed the old instance.
func (p *PlanProgress) WasRemoved(id string) bool { return slices.Contains(p.Removed, id) }

// MarkRemoved records that a rolling plan removed the old instance.
func (p *PlanProgress) MarkRemoved(id string) {
	if !p.WasRemoved(id) {
		p.Removed = append(p.Removed, id)
	}
}

// HasNoSnapshot reports whether the old instance's successor restores
// nothing.
func (p *PlanProgress) HasNoSnapshot(id string) bool { return slices.Contains(p.NoSnapshot, id) }

// MarkNoSnapshot records that the old instance was not snapshotted.
func (p *PlanProgress) MarkNoSnapshot(id string) {
	if !p.HasNoSnapshot(id) {
		p.NoSnapshot = append(p.NoSnapshot, id)
	}
}

// SetSuccessor records the instance replacing old.
func (p *PlanProgress) SetSuccessor(old, id string) {
	if p.Successor == nil {
		p.Successor = map[string]string{}
	}
	p.Successor[old] = id
}

// SetGeneration records the generation a restart asked of an instance.
func (p *PlanProgress) SetGeneration(id string, gen int) {
	if p.Generation == nil {
		p.Generation = map[string]int{}
	}
	p.Generation[id] = gen
}

// IsZero reports whether nothing was recorded (the plan's JSON then
// has no progress field).
func (p PlanProgress) IsZero() bool { return len(p.wire()) == 0 }

func flag(b bool) string {
	if b {
		return "1"
	}
	return ""
}

func (p PlanProgress) wire() map[string]string {
	m := map[string]string{}
	for k, v := range p.other {
		m[k] = v
	}
	for _, k := range p.Done {
		m[progDone+k] = "1"
	}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set(progSource, p.Source)
	set(progNoSource, flag(p.NoSource))
	set(progRecover, p.Recover)
	set(progPaused, flag(p.Paused))
	set(progSwitched, flag(p.Switched))
	set(progRolling, flag(p.Rolling))
	set(progRecovery, flag(p.ByRecovery))
	for _, id := range p.Removed {
		m[progRemoved+id] = "1"
	}
	for old, id := range p.Successor {
		set(progSuccessor+old, id)
	}
	for _, id := range p.NoSnapshot {
		m[progNoSnapshot+id] = "1"
	}
	for id, g := range p.Generation {
		m[progGeneration+id] = strconv.Itoa(g)
	}
	return m
}

// MarshalJSON writes the flat map (see the type).
func (p PlanProgress) MarshalJSON() ([]byte, error) { return json.Marshal(p.wire()) }

// UnmarshalJSON reads the flat map; null or {} is no progress.
func (p *PlanProgress) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("plan progress: %w", err)
	}
	var out PlanProgress
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // Done and the lists come out in a stable order
	for _, k := range keys {
		v := m[k]
		switch {
		case strings.HasPrefix(k, progDone):
			if v != "" {
				out.Done = append(out.Done, k[len(progDone):])
			}
		case k == progSource:
			out.Source = v
		case k == progNoSource:
			out.NoSource = v != ""
		case k == progRecover:
			out.Recover = v
		case k == progPaused:
			out.Paused = v != ""
		case k == progSwitched:
			out.Switched = v != ""
		case k == progRolling:
			out.Rolling = v != ""
		case k == progRecovery:
			out.ByRecovery = v != ""
		case strings.HasPrefix(k, progRemoved):
			if v != "" {
				out.Removed = append(out.Removed, k[len(progRemoved):])
			}
		case strings.HasPrefix(k, progSuccessor):
			if v != "" {
				out.SetSuccessor(k[len(progSuccessor):], v)
			}
		case strings.HasPrefix(k, progNoSnapshot):
			if v != "" {
				out.NoSnapshot = append(out.NoSnapshot, k[len(progNoSnapshot):])
			}
		case strings.HasPrefix(k, progGeneration):
			g, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("plan progress: %s = %q is not a generation number", k, v)
			}
			out.SetGeneration(k[len(progGeneration):], g)
		default:
			if out.other == nil {
				out.other = map[string]string{}
			}
			out.other[k] = v
		}
	}
	*p = out
	return nil
}
