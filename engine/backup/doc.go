// Package backup copies the platform's ZooKeeper state (everything
// under /paddock but ephemeral znodes) to a file and back: a consistent
// cut, taken by walking the tree until two walks in a row read the same
// modification and child-list zxids everywhere (every znode then held
// the same value at the moment between them), with each znode's data
// and ACL. Secrets given by the caller (the director's CA key) travel in
// the same file, encrypted with a passphrase (PBKDF2-SHA256, AES-256-GCM).
//
// Restore writes the znodes into an empty ZooKeeper (standalone or
// ensemble) with a super-user session, parents first, with their
// original ACLs, so the role and allocator credentials the agents hold
// keep working; sequential parents get their counters moved past the
// restored names. The agents' sessions of the lost ZooKeeper expire on
// reconnect and they re-create their ephemerals.
//
// It reads and writes ZooKeeper only through the given store's
// connection and owns no file layout: agents/platform decides where
// backups and the CA live. It must not import agents, tui or cmd.
package backup
