// Package api is the REST API (`paddock api`): Elastic-platform-shaped
// endpoints under /api/v1 for deployments, allocators, proxies and the
// constructor's settings, authenticated by API keys (Authorization:
// ApiKey <key>) or built-in users (basic auth), with role-based access
// (platform-admin, platform-viewer, deployment-manager).
//
// Every action is a call into engine/service: the API only decodes
// requests (size-limited, unknown fields refused), checks the caller's
// role, and maps the service's typed errors to HTTP statuses and the
// {"errors":[…]} body. The OpenAPI 3 document (openapi.yaml, embedded)
// is served at /api/v1/api-docs and kept honest by a test that compares
// it with the routes registered here.
//
// It owns no ZooKeeper paths of its own and must not write any znode
// except through engine/service; it must not import cmd or tui.
package api
