package service

// Access is what an operation needs of the caller's role. The API's
// routes and the console's actions both ask RoleAllows, so a role may
// do the same wherever it acts.
type Access int

// Accesses, from the least to the most.
const (
	// AccessRead: every role (list, show, activity, headroom, logs).
	AccessRead Access = iota + 1
	// AccessDeployments: deployment changes (create, resize, upgrade,
	// restart, delete, cancel, retry): platform-admin, deployment-manager.
	AccessDeployments
	// AccessPlatform: platform changes (allocators, keys, settings):
	// platform-admin only.
	AccessPlatform
)

func (a Access) String() string {
	switch a {
	case AccessRead:
		return "read"
	case AccessDeployments:
		return "deployments"
	case AccessPlatform:
		return "platform"
	}
	return "unknown"
}

// RoleAllows is the role table: whether role may do what needs a.
func RoleAllows(role string, a Access) bool {
	switch a {
	case AccessRead:
		return role == RolePlatformAdmin || role == RolePlatformViewer || role == RoleDeploymentManager
	case AccessDeployments:
		return role == RolePlatformAdmin || role == RoleDeploymentManager
	case AccessPlatform:
		return role == RolePlatformAdmin
	}
	return false
}

// RolesAllowed names the roles that may do what needs a (for messages).
func RolesAllowed(a Access) []string {
	var out []string
	for _, r := range APIRoles {
		if RoleAllows(r, a) {
			out = append(out, r)
		}
	}
	return out
}
