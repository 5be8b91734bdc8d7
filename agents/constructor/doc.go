// Package constructor is the platform's scheduler (`paddock constructor`).
// Several may run; one leads (ZooKeeper leader election on ephemeral
// sequential znodes under /paddock/leader/constructor). The leader watches
// deployments and allocators, and:
//
//   - runs every pending plan step by step (validate, place, wait until
//     running and healthy, then recover new copies by replication while
//     the primary runs, else snapshot, migrate data, pause route, final
//     sync; switch route, resume route, remove old instances, completed),
//     logging each step in the plan's activity by compare-and-set on the
//     pending znode, rolling back to the last good topology on failure or
//     cancellation, and resuming (or rolling back) a plan a previous leader
//     left half-done;
//   - writes instance assignments (/paddock/allocators/<id>/instances/<iid>)
//     chosen by the pure placement core (engine/placement);
//   - writes routes (/paddock/routes/<id>) from healthy Elasticsearch
//     instances, pausing them during a snapshot migration's final sync;
//   - replaces the instances of allocators lost longer than the platform's
//     grace period, with a rate limit and a freeze when a whole zone or
//     most allocators look lost at once.
//
// The leader keeps the platform's state in memory from its caches' watch
// events (world.go) and its own writes (instance znodes and routes are
// written by the leader alone), starts plans as their znodes appear, up
// to Config.MaxPlans at once, places from one kept placement state with
// reservations (concurrent plans never share memory), and writes every
// change as a Multi fenced by its election znode, the plan's step
// records written behind with their effects (executor.go).
//
// It owns: instance znodes, routes, the leader election znodes, and the
// running/finished state of plans (pending → history). It must not touch
// allocator records, alive, status, maintenance or settings znodes (the
// allocators' and admins'), nor create plans other than the move plans of
// rescheduling (the service layer creates the others). It talks to nodes
// only through the NodeAPI (snapshot, restore, peers, health): with a
// constructor certificate (Config.NodeLoader) a node whose allocator runs
// a node tunnel (InstanceStatus.TunnelAddr) is called there over mutual
// TLS, SNI stunnel.BackendSNI(instance id), the server checked to be an
// allocator of the platform CA, so the constructor needs no other route
// to the allocators' hosts; otherwise at its published Address (same
// host only).
package constructor
