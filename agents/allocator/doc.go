// Package allocator is the agent that runs on every host holding
// deployment nodes (`paddock allocator`). It registers the host in
// ZooKeeper (record, instances and status parents, the ephemeral alive
// node advertising capacity and use), watches the instances the
// constructor assigns to it and reconciles them continuously against the
// node containers it runs on the Docker engine (or against the in-memory
// `sim` runtime for scale tests): create, start, probe, restart, stop,
// remove. It writes each instance's observed state to its status znode.
//
// With a certificate (Config.TunnelLoader, the host's allocator-role
// certificate) it runs an mTLS tunnel (:9400) in front of its nodes:
// stunnel.Server routing by SNI <instance id>.node.paddock to the node's
// loopback port, admitting proxy and constructor certificates only, and
// writes InstanceStatus.TunnelAddr (<TunnelHost>:<port>) for running
// nodes; node ports stay published on PublishIP (loopback by default).
//
// It owns: its own allocator record and children in ZooKeeper (except the
// admin-written maintenance and settings nodes, which it only reads), the
// Docker containers, volumes and networks labelled with its id AND its
// platform's id (paddock.platform, from /paddock/config): objects of
// another platform, or unlabelled ones made before platform ids, are
// never listed, replaced or removed (they are logged once), so two
// platforms on one Docker host with the same allocator ids stay apart. The
// node
// image builder (paddock/node:<version>) and its state directory (own
// credential, removed-volume ledger). It must not touch other allocators'
// znodes or containers, deployments, plans or routes (the constructor's),
// and it never gives a node container access to ZooKeeper or to Docker.
package allocator
