package s3server_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"paddock/engine/s3server"
	"paddock/engine/s3server/s3test"
)

// TestRestartKeepsData: objects written before a stop are served after
// a restart on the same directory and ports; the identity file is
// private; anonymous and wrong-key requests are refused.
func TestRestartKeepsData(t *testing.T) {
	t0 := time.Now()
	st := s3test.Start(t)
	t.Logf("weed serving after %s (ports %+v)", time.Since(t0).Round(time.Millisecond), st.Options().Internal)
	cli, err := st.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := cli.PutObject(ctx, st.Bucket, "a/b", strings.NewReader("hello"), 5, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(st.Options().Dir, "s3.json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v, mode %v; want 0600", err, info.Mode())
	}
	t0 = time.Now()
	st.Restart()
	t.Logf("weed restarted in %s", time.Since(t0).Round(time.Millisecond))
	cli, _ = st.Client()
	obj, err := cli.GetObject(ctx, st.Bucket, "a/b", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(obj)
	if err != nil || string(b) != "hello" {
		t.Fatalf("after restart: %q, %v", b, err)
	}
	for name, creds := range map[string][2]string{"anonymous": {"", ""}, "wrong secret": {st.AccessKey, "nope-nope-nope"}} {
		opts := &minio.Options{BucketLookup: minio.BucketLookupPath, Region: "us-east-1"}
		if creds[0] != "" {
			opts.Creds = credentialsV4(creds[0], creds[1])
		}
		c, err := minio.New(st.Host, opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetObject(ctx, st.Bucket, "a/b", minio.GetObjectOptions{}); err == nil {
			if _, err := c.StatObject(ctx, st.Bucket, "a/b", minio.StatObjectOptions{}); err == nil {
				t.Fatalf("%s read succeeded", name)
			}
		}
	}
}

func TestStartRefusesNoKeys(t *testing.T) {
	_, err := s3server.Start(context.Background(), s3server.Options{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "secret key") {
		t.Fatalf("Start without keys = %v", err)
	}
}

func credentialsV4(access, secret string) *credentials.Credentials {
	return credentials.NewStaticV4(access, secret, "")
}
