// Package data turns the platform's ZooKeeper tree into the console's
// Snapshot: allocators with capacity and instances, deployments with
// health and plans, proxies, routes and alerts. Production feeds it
// from engine.TreeCache watches (live, no polling); tests feed fixtures
// through the same Source interface.
//
// It only reads. It must not write to ZooKeeper: actions go through the
// engine's service layer, as the API's do.
package data
