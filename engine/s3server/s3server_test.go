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
	"paddock/engine/testenv"
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

// TestStartRetriesWhenWeedExitsEarly: a weed that exits before serving
// (what a free port taken by another process between the probe and
// weed's bind looks like) is started again on fresh ports; given fixed
// ports, Start does not retry and says weed exited.
func TestStartRetriesWhenWeedExitsEarly(t *testing.T) {
	weed, err := s3server.Binary()
	if err != nil {
		testenv.Unavailable(t, "SeaweedFS (weed)", err)
	}
	dir := t.TempDir()
	// A weed that exits 255 on its first start, then is the real one.
	flaky := filepath.Join(dir, "weed-flaky")
	script := "#!/bin/sh\nif [ ! -e \"$0.once\" ]; then : > \"$0.once\"; exit 255; fi\nexec " + weed + " \"$@\"\n"
	if err := os.WriteFile(flaky, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := s3server.Options{Dir: filepath.Join(dir, "store"), Binary: flaky, AccessKey: "paddock-test", SecretKey: "paddock-test-secret", Buckets: []string{"snaps"}}
	s, err := s3server.Start(ctx, o)
	if err != nil {
		t.Fatalf("Start with free ports after one early exit: %v", err)
	}
	ports := s.Options()
	s.Stop()

	// Fixed ports: no second try, a clear error.
	os.Remove(flaky + ".once")
	_, err = s3server.Start(ctx, ports)
	if err == nil || !strings.Contains(err.Error(), "weed exited") {
		t.Fatalf("Start on fixed ports after an early exit = %v, want weed exited", err)
	}
}
