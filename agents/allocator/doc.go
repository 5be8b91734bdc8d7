// Package allocator is the agent that runs on every host holding
// deployment nodes (`paddock allocator`). It registers the host in
// ZooKeeper (record, instances and status parents, the ephemeral alive
// node advertising capacity and use), watches the instances the
// constructor assigns to it and reconciles them continuously against the
// node containers it runs on the Docker engine (or against the in-memory
// `sim` runtime for scale tests): create, start, probe, restart, stop,
// remove. It writes each instance's observed state to its status znode.
//
// It owns: its own allocator record and children in ZooKeeper (except the
// admin-written maintenance and settings nodes, which it only reads), the
// Docker containers, volumes and networks labelled with its id, the node
// image builder (paddock/node:<version>) and its state directory (own
// credential, removed-volume ledger). It must not touch other allocators'
// znodes or containers, deployments, plans or routes (the constructor's),
// and it never gives a node container access to ZooKeeper or to Docker.
package allocator
