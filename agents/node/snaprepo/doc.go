// Package snaprepo is where a node's snapshots live: a flat blob store
// keyed by slash-separated names, on a local (shared) directory or an
// S3-compatible object store (through minio-go). It owns only moving
// bytes and counting them; the snapshot layout (manifests, content
// addressed blobs) belongs to the node's snapshot code.
//
// Credentials given to New are used for requests only: they never appear
// in errors or logs produced here.
package snaprepo
