package snaprepo

import (
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"testing"

	"paddock/engine/s3server/s3test"
)

// testStore is the contract every store keeps.
func testStore(t *testing.T, st Store) {
	ctx := context.Background()
	put := func(key, body string) {
		t.Helper()
		if err := st.Put(ctx, key, strings.NewReader(body), int64(len(body))); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
	}
	get := func(key string) (string, error) {
		rc, err := st.Get(ctx, key)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		return string(b), err
	}
	put("blobs/aa", "first")
	put("blobs/bb", "second")
	put("snapshots/s1.json", "{}")
	put("blobs/aa", "replaced")
	for _, tc := range []struct{ key, want string }{{"blobs/aa", "replaced"}, {"blobs/bb", "second"}, {"snapshots/s1.json", "{}"}} {
		if got, err := get(tc.key); err != nil || got != tc.want {
			t.Fatalf("get %s = %q, %v; want %q", tc.key, got, err, tc.want)
		}
	}
	if _, err := get("blobs/missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing = %v, want ErrNotFound", err)
	}
	objs, err := st.List(ctx, "blobs/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
		if o.Size == 0 || o.Modified.IsZero() {
			t.Fatalf("listed %+v without size or time", o)
		}
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "blobs/aa,blobs/bb" {
		t.Fatalf("list blobs/ = %v", keys)
	}
	if err := st.Delete(ctx, "blobs/aa"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "blobs/aa"); err != nil {
		t.Fatalf("deleting a missing blob: %v", err)
	}
	if _, err := get("blobs/aa"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted blob still readable: %v", err)
	}
	if err := Verify(ctx, st, "tok"); err != nil {
		t.Fatal(err)
	}
	if objs, _ := st.List(ctx, "tests-"); len(objs) != 0 {
		t.Fatalf("verification left %v", objs)
	}
	c := NewCounting(st)
	if err := c.Put(ctx, "blobs/cc", strings.NewReader("12345"), 5); err != nil {
		t.Fatal(err)
	}
	if n, b := c.Written(); n != 1 || b != 5 {
		t.Fatalf("counted %d blobs/%d bytes, want 1/5", n, b)
	}
}

func TestFS(t *testing.T) {
	st, err := New(context.Background(), Settings{Type: "fs", Location: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, st)
	for _, bad := range []string{"../x", "a/../../b", ""} {
		if err := st.Put(context.Background(), bad, strings.NewReader("x"), 1); err == nil {
			t.Fatalf("put %q was accepted", bad)
		}
	}
}

func TestS3(t *testing.T) {
	srv := s3test.Start(t)
	set := Settings{Type: "s3", Endpoint: srv.Endpoint, Bucket: "other-bucket", BasePath: "/dep/", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PathStyle: true}
	st, err := New(context.Background(), set)
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, st)
	if !strings.Contains(st.Describe(), "base_path [dep]") || strings.Contains(st.Describe(), srv.SecretKey) {
		t.Fatalf("describe = %q", st.Describe())
	}
	set.SecretKey = "not-the-secret"
	if st, err := New(context.Background(), set); err == nil {
		err = Verify(context.Background(), st, "x")
		if err == nil {
			t.Fatal("a wrong secret key was accepted")
		}
		if strings.Contains(err.Error(), "not-the-secret") {
			t.Fatalf("error shows the secret: %v", err)
		}
	} else if strings.Contains(err.Error(), "not-the-secret") {
		t.Fatalf("error shows the secret: %v", err)
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  Settings
		want string
	}{
		{"unknown type", Settings{Type: "hdfs"}, "does not exist"},
		{"fs without location", Settings{Type: "fs"}, "location"},
		{"s3 without bucket", Settings{Type: "s3", Endpoint: "http://x:1", AccessKey: "a", SecretKey: "b"}, "bucket"},
		{"s3 without keys", Settings{Type: "s3", Endpoint: "http://x:1", Bucket: "b"}, "access_key"},
		{"s3 bad endpoint", Settings{Type: "s3", Endpoint: "ftp://x", Bucket: "b", AccessKey: "a", SecretKey: "s"}, "http(s)://host:port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(context.Background(), tc.set)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
