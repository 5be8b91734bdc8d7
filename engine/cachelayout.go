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
// children (a pending plan, the replication routing).
func LeafDeploymentZnode(p string) bool {
	if path.Base(p) == "replication" {
		return path.Dir(path.Dir(p)) == PathDeployments
	}
	return path.Base(p) == "pending" && path.Base(path.Dir(p)) == "plans"
}
