// Package s3server runs SeaweedFS (`weed server -s3`) as the platform's
// S3-compatible object store: it finds the weed binary that
// scripts/setup.sh builds from the Go module proxy, writes weed's S3
// identity file (authentication is always on: one identity with an
// access and a secret key), starts master, volume, filer and S3 gateway
// on the ports it is given, and waits until a signed S3 request succeeds.
//
// It owns the weed process and its files under Options.Dir; it does not
// know about repositories or snapshots (the node and the platform do).
// The secret key is written only to Dir/s3.json (0600), never logged.
package s3server
