// Package node is the stand-in search node that allocators run inside
// containers (`paddock node`): an Elasticsearch-compatible HTTP subset
// (documents, search, bulk, counts, cluster health, fs snapshots and
// restore, optional peer replication) over a bbolt file in its data
// directory, plus a Kibana-like status endpoint for --kind kibana.
//
// It owns its data directory and the snapshot repositories it is told to
// write under its snapshot root. It must not touch ZooKeeper, Docker or
// any other platform part: a node knows nothing of the control plane.
// Other agents' tests run it in-process through NewServer.
package node
