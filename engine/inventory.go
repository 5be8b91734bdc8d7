package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/go-zookeeper/zk"
)

// InventoryAllocator is everything the scheduler knows of one allocator:
// its record, liveness, maintenance flag, operator settings, the
// instances assigned to it and their observed state.
type InventoryAllocator struct {
	Allocator Allocator `json:"allocator"`
	// Alive is nil while the allocator's ephemeral alive node is missing.
	Alive *AllocatorAlive `json:"alive,omitempty"`
	// AliveOwner is the session owning the alive node (0 when missing).
	AliveOwner  int64             `json:"-"`
	Maintenance bool              `json:"maintenance"`
	Settings    AllocatorSettings `json:"settings"`
	// Instances are the desired instances (written by the constructor),
	// sorted by id.
	Instances []Instance `json:"instances"`
	// Statuses are the observed states by instance id.
	Statuses map[string]InstanceStatus `json:"statuses"`
}

// ID is the allocator id.
func (a InventoryAllocator) ID() string { return a.Allocator.ID }

// CapacityMB is the memory the allocator offers: the operator's settings
// override, else what the allocator advertises.
func (a InventoryAllocator) CapacityMB() int {
	if a.Settings.CapacityMB > 0 {
		return a.Settings.CapacityMB
	}
	if a.Alive != nil && a.Alive.CapacityMB > 0 {
		return a.Alive.CapacityMB
	}
	return a.Allocator.CapacityMB
}

// Tags are the record's tags overlaid with the operator's settings.
func (a InventoryAllocator) Tags() map[string]string {
	if len(a.Settings.Tags) == 0 {
		return a.Allocator.Tags
	}
	out := make(map[string]string, len(a.Allocator.Tags)+len(a.Settings.Tags))
	for k, v := range a.Allocator.Tags {
		out[k] = v
	}
	for k, v := range a.Settings.Tags {
		out[k] = v
	}
	return out
}

// AssignedMB is the memory of the instances assigned to the allocator.
func (a InventoryAllocator) AssignedMB() int {
	n := 0
	for _, in := range a.Instances {
		n += in.SizeMB
	}
	return n
}

// nodeReader is what Inventory needs: the store and the tree cache both
// provide it.
type nodeReader interface {
	read(ctx context.Context, p string) ([]byte, Stat, bool, error)
	children(ctx context.Context, p string) ([]string, error)
}

type storeReader struct{ s *Store }

func (r storeReader) read(ctx context.Context, p string) ([]byte, Stat, bool, error) {
	b, st, err := r.s.Get(ctx, p)
	if errors.Is(err, ErrNotFound) {
		return nil, Stat{}, false, nil
	}
	return b, st, err == nil, err
}

func (r storeReader) children(ctx context.Context, p string) ([]string, error) {
	c, err := r.s.Children(ctx, p)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return c, err
}

type cacheReader struct{ c *TreeCache }

func (r cacheReader) read(_ context.Context, p string) ([]byte, Stat, bool, error) {
	n, ok := r.c.Get(p)
	return n.Data, n.Stat, ok, nil
}

func (r cacheReader) children(_ context.Context, p string) ([]string, error) {
	return r.c.Children(p), nil
}

// Inventory reads every allocator from ZooKeeper, sorted by id, with
// the observed states of their instances. Allocators are read
// concurrently (the reads pipeline on the session).
func (s *Store) Inventory(ctx context.Context) ([]InventoryAllocator, error) {
	return readInventory(ctx, storeReader{s}, true)
}

// PlacementInventory is Inventory without the observed states: what a
// placement decision needs, in half the reads.
func (s *Store) PlacementInventory(ctx context.Context) ([]InventoryAllocator, error) {
	return readInventory(ctx, storeReader{s}, false)
}

// InventoryFromCache builds the inventory from a TreeCache of
// PathAllocators (no ZooKeeper round trips). Without statuses it skips
// the observed states (placement needs only the desired instances).
func InventoryFromCache(c *TreeCache, statuses bool) []InventoryAllocator {
	inv, _ := readInventory(context.Background(), cacheReader{c}, statuses)
	return inv
}

func readInventory(ctx context.Context, r nodeReader, statuses bool) ([]InventoryAllocator, error) {
	ids, err := r.children(ctx, PathAllocators)
	if err != nil {
		return nil, fmt.Errorf("list allocators: %w", err)
	}
	all := make([]InventoryAllocator, len(ids))
	found := make([]bool, len(ids))
	errs := make([]error, len(ids))
	read := func(i int) { all[i], found[i], errs[i] = readAllocator(ctx, r, ids[i], statuses) }
	if _, cached := r.(cacheReader); cached {
		for i := range ids {
			read(i)
		}
	} else {
		parallel(ctx, len(ids), read)
	}
	out := make([]InventoryAllocator, 0, len(ids))
	for i := range ids {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if found[i] {
			out = append(out, all[i])
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// readAllocator reads one allocator; ok is false when its record is gone
// or not yet written (a registration in progress).
func readAllocator(ctx context.Context, r nodeReader, id string, statuses bool) (InventoryAllocator, bool, error) {
	var a InventoryAllocator
	b, _, ok, err := r.read(ctx, AllocatorPath(id))
	if err != nil || !ok || len(b) == 0 {
		return a, false, err
	}
	if err := json.Unmarshal(b, &a.Allocator); err != nil {
		return a, false, nil // malformed record: not schedulable
	}
	if a.Allocator.ID == "" {
		a.Allocator.ID = id
	}
	if b, st, ok, err := r.read(ctx, AllocatorAlivePath(id)); err != nil {
		return a, false, err
	} else if ok {
		var alive AllocatorAlive
		if json.Unmarshal(b, &alive) == nil {
			a.Alive = &alive
			a.AliveOwner = st.EphemeralOwner
		}
	}
	if b, _, ok, err := r.read(ctx, AllocatorMaintenancePath(id)); err != nil {
		return a, false, err
	} else if ok && len(b) > 0 {
		var m Maintenance
		if json.Unmarshal(b, &m) == nil {
			a.Maintenance = m.On
		}
	}
	if b, _, ok, err := r.read(ctx, AllocatorSettingsPath(id)); err != nil {
		return a, false, err
	} else if ok && len(b) > 0 {
		_ = json.Unmarshal(b, &a.Settings)
	}
	iids, err := r.children(ctx, InstancesPath(id))
	if err != nil {
		return a, false, err
	}
	for _, iid := range iids {
		b, _, ok, err := r.read(ctx, InstancePath(id, iid))
		if err != nil {
			return a, false, err
		}
		var in Instance
		if !ok || json.Unmarshal(b, &in) != nil {
			continue
		}
		if in.ID == "" {
			in.ID = iid
		}
		a.Instances = append(a.Instances, in)
	}
	sort.Slice(a.Instances, func(i, j int) bool { return a.Instances[i].ID < a.Instances[j].ID })
	if !statuses {
		return a, true, nil
	}
	sids, err := r.children(ctx, StatusesPath(id))
	if err != nil {
		return a, false, err
	}
	a.Statuses = make(map[string]InstanceStatus, len(sids))
	for _, sid := range sids {
		b, _, ok, err := r.read(ctx, StatusPath(id, sid))
		if err != nil {
			return a, false, err
		}
		var st InstanceStatus
		if ok && json.Unmarshal(b, &st) == nil {
			if st.ID == "" {
				st.ID = sid
			}
			a.Statuses[sid] = st
		}
	}
	return a, true, nil
}

// OpCreateSequential creates a sequential znode under prefix holding v
// inside a Multi (the plan history entries plan-<seq>).
func OpCreateSequential(prefix string, v any) Op {
	return Op{kind: "create", path: prefix, value: v, flags: zk.FlagSequence}
}
