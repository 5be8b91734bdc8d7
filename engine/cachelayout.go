package engine

import "path"

// Layout facts the tree caches rely on, shared by every agent that
// caches /paddock/allocators or /paddock/deployments.

// LeafAllocatorZnode reports the allocator znodes that never have
// children by the layout (statuses, alive, maintenance, settings): a
// cache lists and watches no children there.
func LeafAllocatorZnode(p string) bool {
	switch path.Base(path.Dir(p)) {
	case "status":
		return path.Dir(path.Dir(path.Dir(p))) == PathAllocators
	case "instances":
		return path.Dir(path.Dir(path.Dir(p))) == PathAllocators
	}
	switch path.Base(p) {
	case "alive", "maintenance", "settings":
		return path.Dir(path.Dir(p)) == PathAllocators
	}
	return false
}

// AllocatorStatusesZnode reports an allocator's status folder (observed
// instance states): placement does not need it.
func AllocatorStatusesZnode(p string) bool {
	return path.Base(p) == "status" && path.Dir(path.Dir(p)) == PathAllocators
}

// PlanHistoryZnode reports a deployment's plan history folder (it grows
// by one znode per plan; only the activity view reads it).
func PlanHistoryZnode(p string) bool {
	return path.Base(p) == "history" && path.Base(path.Dir(p)) == "plans"
}

// LeafDeploymentZnode reports the deployment znodes that never have
// children (a pending plan, the replication routing, a finished plan in
// the history).
func LeafDeploymentZnode(p string) bool {
	if path.Base(p) == "replication" {
		return path.Dir(path.Dir(p)) == PathDeployments
	}
	if PlanHistoryZnode(path.Dir(p)) {
		return path.Dir(path.Dir(path.Dir(path.Dir(p)))) == PathDeployments
	}
	return path.Base(p) == "pending" && path.Base(path.Dir(p)) == "plans"
}

// LayoutLeaves names the leaf znodes of the subtree at root by the
// layout (nil: none known), for a cache of the whole subtree
// (CacheLeaves).
func LayoutLeaves(root string) func(p string) bool {
	switch root {
	case PathAllocators:
		return LeafAllocatorZnode
	case PathDeployments:
		return LeafDeploymentZnode
	}
	return nil
}

// ContainerZnode reports the znodes that never hold data by the layout,
// only children: a deployment's plans and plans/history, an
// allocator's instances and status folders.
func ContainerZnode(p string) bool {
	switch path.Base(p) {
	case "plans":
		return path.Dir(path.Dir(p)) == PathDeployments
	case "history":
		return PlanHistoryZnode(p) && path.Dir(path.Dir(path.Dir(p))) == PathDeployments
	case "instances", "status":
		return path.Dir(path.Dir(p)) == PathAllocators
	}
	return false
}
