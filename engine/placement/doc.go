// Package placement is the constructor's pure placement core: given the
// allocators (capacity, use, zone, liveness, maintenance, tags, what they
// already run) and the instances to place, it decides which allocator
// takes each instance, spreading one deployment's instances of a kind over
// distinct zones and ranking allocators by the platform's strategy
// (fill-anti-affinity, fill, distribute, distribute-anti-affinity).
//
// It does no I/O and keeps no global state: the same inputs and Seed give
// the same decisions. Every allocator considered gets a Verdict (why it was
// rejected, or its score), and an impossible request returns an
// *UnplaceableError saying per zone what is missing.
//
// It owns nothing in ZooKeeper and must not touch the store: the
// constructor (agents/constructor) and the service layer (engine/service)
// read the inventory (engine.Store.Inventory), convert it with
// FromInventory and write the decisions themselves. It imports engine only
// for the model's constants and inventory type; engine must never import
// placement.
package placement
