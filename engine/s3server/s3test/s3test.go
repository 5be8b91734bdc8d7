// Package s3test runs a private SeaweedFS object store for a test: its
// own directory, free ports, a random identity and one bucket, stopped
// and removed when the test ends. When weed is not installed the test
// skips, except under CI=true where it fails (scripts/setup.sh builds it).
package s3test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"paddock/engine"
	"paddock/engine/s3server"
	"paddock/engine/testenv"
)

// Store is a running private object store.
type Store struct {
	*s3server.Server
	AccessKey, SecretKey, Bucket string
	t                            testing.TB
}

// Start runs weed for t (stopped at cleanup).
func Start(t testing.TB) *Store {
	t.Helper()
	if _, err := s3server.Binary(); err != nil {
		testenv.Unavailable(t, "SeaweedFS (weed)", err)
	}
	st := &Store{AccessKey: "paddock-" + engine.RandomToken(6), SecretKey: engine.RandomToken(20), Bucket: "paddock-test", t: t}
	st.start(s3server.Options{Dir: t.TempDir(), AccessKey: st.AccessKey, SecretKey: st.SecretKey, Buckets: []string{st.Bucket}})
	t.Cleanup(func() { st.Server.Stop() })
	return st
}

func (st *Store) start(o s3server.Options) {
	st.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	srv, err := s3server.Start(ctx, o)
	if err != nil {
		st.t.Fatalf("start the object store: %v", err)
	}
	st.Server = srv
}

// Restart starts the store again after Stop, on the same directory and
// ports, with its data.
func (st *Store) Restart() {
	st.t.Helper()
	st.Server.Stop()
	st.start(st.Server.Options())
}

// RepoSettings is the body of PUT /_snapshot/<repo> for this store.
func (st *Store) RepoSettings(basePath string) string {
	b, _ := json.Marshal(map[string]any{"type": "s3", "settings": map[string]any{
		"endpoint": st.Endpoint, "bucket": st.Bucket, "base_path": basePath, "region": "us-east-1",
		"access_key": st.AccessKey, "secret_key": st.SecretKey, "protocol": "http", "path_style_access": true,
	}})
	return string(b)
}

// Count returns the objects and bytes under prefix in the bucket.
func (st *Store) Count(prefix string) (objects int, bytes int64) {
	st.t.Helper()
	cli, err := st.Client()
	if err != nil {
		st.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for o := range cli.ListObjects(ctx, st.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			st.t.Fatalf("list %s: %v", prefix, o.Err)
		}
		objects++
		bytes += o.Size
	}
	return objects, bytes
}
