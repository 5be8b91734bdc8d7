// Package headroom answers the on-call engineer's "can we survive losing
// this zone (or vacating this allocator) right now?" by a dry-run of the
// constructor's own placement: for each zone it marks the zone's
// allocators lost and asks engine/placement to re-place every instance
// there with the move requests the constructor would make
// (placement.Mover, the rule of placement.MoveRequests); for each
// allocator it asks the same for a vacate. Every dry-run runs on one
// placement state and is taken back with its Mark and Undo. It never restates a placement
// rule: what it reports is what the placement core decides.
//
// It is pure (no I/O, no clock): the service layer (engine/service)
// reads the inventory and the deployments and caches the Report. It must
// not import agents, tui or cmd, and writes nothing.
package headroom
