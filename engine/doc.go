// Package engine is paddock's control-plane core: the data model, the
// ZooKeeper layout and ACL table, the typed state store with its subtree
// cache and self-healing ephemeral registrations, and the service layer the
// API, the CLI and the console share.
//
// It must not import agents, tui or main: dependencies point one way,
// main → {tui, agents} → engine → (zk, docker client).
package engine
