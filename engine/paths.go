package engine

import (
	"path"
	"strings"
)

// Root is the top of paddock's ZooKeeper tree. All paths are built here.
const Root = "/paddock"

// Paths of the DESIGN.md layout. Functions take ids and return the znode
// path; nothing else in the code concatenates znode paths.
var (
	PathConfig      = Root + "/config"
	PathZones       = Root + "/zones"
	PathAllocators  = Root + "/allocators"
	PathDeployments = Root + "/deployments"
	PathRoutes      = Root + "/routes"
	PathProxies     = Root + "/proxies"
	PathLeader      = Root + "/leader"
	PathLeaderCons  = Root + "/leader/constructor"
	PathSecurity    = Root + "/security"
	PathCA          = Root + "/security/ca"
	PathTokens      = Root + "/security/tokens"
	PathAPIKeys     = Root + "/apikeys"
	PathRequests    = Root + "/requests"
	// PathTrafficFilters holds traffic filter rule sets (trafficfilter.go).
	PathTrafficFilters = Root + "/trafficfilters"
)

// Zone returns /paddock/zones/<zone>.
func ZonePath(zone string) string { return PathZones + "/" + zone }

// AllocatorPath returns /paddock/allocators/<id>.
func AllocatorPath(id string) string { return PathAllocators + "/" + id }

// AllocatorAlivePath returns the ephemeral liveness node of an allocator.
func AllocatorAlivePath(id string) string { return AllocatorPath(id) + "/alive" }

// AllocatorMaintenancePath holds the maintenance flag, a znode of its own
// because ZooKeeper ACLs are per znode: admins may write it, the allocator
// may only read it.
func AllocatorMaintenancePath(id string) string { return AllocatorPath(id) + "/maintenance" }

// AllocatorSettingsPath holds operator settings (capacity override, tags)
// written by admins and read by the allocator (applied live).
func AllocatorSettingsPath(id string) string { return AllocatorPath(id) + "/settings" }

// InstancesPath returns the desired-instance parent of an allocator.
func InstancesPath(alloc string) string { return AllocatorPath(alloc) + "/instances" }

// InstancePath returns /paddock/allocators/<id>/instances/<iid>.
func InstancePath(alloc, iid string) string { return InstancesPath(alloc) + "/" + iid }

// StatusesPath returns the observed-state parent of an allocator.
func StatusesPath(alloc string) string { return AllocatorPath(alloc) + "/status" }

// StatusPath returns /paddock/allocators/<id>/status/<iid>.
func StatusPath(alloc, iid string) string { return StatusesPath(alloc) + "/" + iid }

// DeploymentPath returns /paddock/deployments/<id>.
func DeploymentPath(id string) string { return PathDeployments + "/" + id }

// PlansPath returns /paddock/deployments/<id>/plans.
func PlansPath(id string) string { return DeploymentPath(id) + "/plans" }

// PendingPlanPath returns /paddock/deployments/<id>/plans/pending.
func PendingPlanPath(id string) string { return PlansPath(id) + "/pending" }

// PlanHistoryPath returns /paddock/deployments/<id>/plans/history.
func PlanHistoryPath(id string) string { return PlansPath(id) + "/history" }

// PlanHistoryEntryPath returns /paddock/deployments/<id>/plans/history/<seq>.
func PlanHistoryEntryPath(id, seq string) string { return PlanHistoryPath(id) + "/" + seq }

// RoutePath returns /paddock/routes/<id>.
func RoutePath(id string) string { return PathRoutes + "/" + id }

// ProxyPath returns /paddock/proxies/<id>.
func ProxyPath(id string) string { return PathProxies + "/" + id }

// TokenPath returns /paddock/security/tokens/<hash>.
func TokenPath(hash string) string { return PathTokens + "/" + hash }

// APIKeyPath returns /paddock/security/apikeys/<id>.
func APIKeyPath(id string) string { return PathAPIKeys + "/" + id }

// RequestPath returns /paddock/requests/<request-id> (idempotent creates).
func RequestPath(id string) string { return PathRequests + "/" + id }

// parent returns the parent of a znode path.
func parent(p string) string { return path.Dir(p) }

// splitPath splits a path under Root into its elements ("" for Root).
func splitPath(p string) []string {
	rel := strings.TrimPrefix(strings.TrimPrefix(p, Root), "/")
	if rel == "" {
		return nil
	}
	return strings.Split(rel, "/")
}
