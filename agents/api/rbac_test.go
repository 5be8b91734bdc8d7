package api

import (
	"net/http"
	"testing"

	"paddock/engine/service"
)

func TestRBACTable(t *testing.T) {
	cases := []struct {
		role string
		a    access
		ok   bool
	}{
		{service.RolePlatformAdmin, accessPlatform, true},
		{service.RolePlatformAdmin, accessDeployments, true},
		{service.RolePlatformAdmin, accessRead, true},
		{service.RoleDeploymentManager, accessPlatform, false},
		{service.RoleDeploymentManager, accessDeployments, true},
		{service.RoleDeploymentManager, accessRead, true},
		{service.RolePlatformViewer, accessPlatform, false},
		{service.RolePlatformViewer, accessDeployments, false},
		{service.RolePlatformViewer, accessRead, true},
		{"", accessRead, false},
		{"root", accessRead, false},
		{"", accessPublic, true},
	}
	for _, tc := range cases {
		t.Run(tc.role+"/"+tc.a.String(), func(t *testing.T) {
			if got := allowed(tc.role, tc.a); got != tc.ok {
				t.Fatalf("allowed(%q, %s) = %v, want %v", tc.role, tc.a, got, tc.ok)
			}
		})
	}
}

// TestEveryWriteNeedsMoreThanRead: a viewer can never write, whatever
// route is added later.
func TestEveryWriteNeedsMoreThanRead(t *testing.T) {
	for _, rt := range routes() {
		if rt.method != http.MethodGet && (rt.access == accessRead || rt.access == accessPublic) {
			t.Errorf("%s %s is a write open to readers", rt.method, rt.path)
		}
		if rt.method == http.MethodGet && rt.access == accessPublic && rt.path != "/api-docs" {
			t.Errorf("%s %s is public", rt.method, rt.path)
		}
	}
}

func TestStatusOf(t *testing.T) {
	cases := map[service.Kind]int{
		service.KindNotFound: 404, service.KindConflict: 409, service.KindInvalid: 400, service.KindUnplaceable: 422,
		service.KindUnavailable: 503, service.KindUnauthorized: 401, service.KindForbidden: 403, service.KindInternal: 500,
	}
	for k, want := range cases {
		t.Run(k.String(), func(t *testing.T) {
			if got := statusOf(k); got != want {
				t.Fatalf("statusOf(%s) = %d, want %d", k, got, want)
			}
		})
	}
}
