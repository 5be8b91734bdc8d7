// Package service is the one implementation of every operator action on
// the platform: create, update, restart and delete deployments, cancel
// plans, read activity, put allocators in maintenance, vacate them,
// change their settings, read and change the constructor's settings, and
// manage API keys and built-in users. The REST API (agents/api), the CLI
// (through the API) and the console (tui) all call these functions, so an
// action behaves the same whatever triggers it.
//
// Functions are plain Go methods over *engine.Store and return typed
// errors (*Error, matched with errors.Is against ErrNotFound,
// ErrConflict, ErrInvalid, ErrUnplaceable, ErrUnavailable,
// ErrUnauthorized, ErrForbidden) that the API maps to HTTP statuses.
//
// The service writes only what the admin role may write (see the ACL
// table in engine/acl.go): deployments and their plans, allocator
// maintenance flags and settings, the platform configuration, API keys
// and idempotency records. It never writes instances, statuses or routes:
// those belong to the constructor and the allocators, which execute the
// plans written here. It must not import agents, tui or cmd.
package service
