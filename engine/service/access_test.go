package service

import "testing"

func TestRoleAllows(t *testing.T) {
	cases := []struct {
		role             string
		read, deps, plat bool
	}{
		{RolePlatformAdmin, true, true, true},
		{RoleDeploymentManager, true, true, false},
		{RolePlatformViewer, true, false, false},
		{"", false, false, false},
		{"root", false, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.role, func(t *testing.T) {
			got := [3]bool{RoleAllows(tc.role, AccessRead), RoleAllows(tc.role, AccessDeployments), RoleAllows(tc.role, AccessPlatform)}
			if want := [3]bool{tc.read, tc.deps, tc.plat}; got != want {
				t.Fatalf("read/deployments/platform = %v, want %v", got, want)
			}
		})
	}
	if got := RolesAllowed(AccessDeployments); len(got) != 2 {
		t.Fatalf("RolesAllowed(deployments) = %v", got)
	}
}
