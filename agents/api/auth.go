package api

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"

	"paddock/engine/service"
)

// access is what a route needs.
type access int

const (
	accessPublic      access = iota // no credentials (the API document)
	accessRead                      // every role
	accessDeployments               // platform-admin, deployment-manager
	accessPlatform                  // platform-admin
)

func (a access) String() string {
	switch a {
	case accessPublic:
		return "public"
	case accessRead:
		return "read"
	case accessDeployments:
		return "deployments"
	}
	return "platform"
}

// allowed is the RBAC table: the service's, shared with the console.
func allowed(role string, a access) bool {
	switch a {
	case accessPublic:
		return true
	case accessRead:
		return service.RoleAllows(role, service.AccessRead)
	case accessDeployments:
		return service.RoleAllows(role, service.AccessDeployments)
	case accessPlatform:
		return service.RoleAllows(role, service.AccessPlatform)
	}
	return false
}

// authenticate reads the Authorization header: "ApiKey <key>" or
// "Basic <base64(user:password)>". Secrets never reach the logs.
func (s *server) authenticate(ctx context.Context, r *http.Request) (service.Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return service.Principal{}, apiErr(service.KindUnauthorized, "auth.missing",
			"authentication required: send Authorization: ApiKey <key> (create one with `paddock apikey create`) or basic auth")
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "apikey":
		return s.svc.AuthenticateKey(ctx, cred)
	case "basic":
		b, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			break
		}
		user, pass, ok := strings.Cut(string(b), ":")
		if !ok {
			break
		}
		return s.svc.AuthenticateUser(ctx, user, pass)
	}
	return service.Principal{}, apiErr(service.KindUnauthorized, "auth.invalid",
		"unsupported Authorization header: use ApiKey <key> or Basic <base64(user:password)>")
}

func forbidden(p service.Principal, a access) error {
	return apiErr(service.KindForbidden, "auth.forbidden",
		"role "+p.Role+" of "+p.Kind+" "+p.Name+" may not do this ("+a.String()+" access needed): use a key with a role that may (platform-admin for platform changes)")
}
