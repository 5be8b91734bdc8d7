package snaprepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// ErrNotFound is returned by Get for a missing blob.
var ErrNotFound = errors.New("blob not found")

// Object is one listed blob.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Store is a blob store. Keys are relative to the repository's base.
type Store interface {
	// Put writes a blob whole: a reader never sees part of it.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens a blob; ErrNotFound when it does not exist.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes a blob; a missing blob is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the blobs whose key starts with prefix.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Describe names the store for messages (never with secrets).
	Describe() string
}

// Settings are a repository's settings as Elasticsearch takes them.
type Settings struct {
	Type string
	// fs
	Location string // already resolved to a local directory
	// s3
	Endpoint, Bucket, BasePath, Region string
	AccessKey, SecretKey               string
	Protocol                           string
	PathStyle                          bool
}

// New opens the store for settings. For s3 the bucket is created when
// missing (as a test or a fresh object store needs).
func New(ctx context.Context, s Settings) (Store, error) {
	switch s.Type {
	case "fs":
		return newFS(s.Location)
	case "s3":
		return newS3(ctx, s)
	}
	return nil, fmt.Errorf("repository type [%s] does not exist: the paddock node supports fs and s3", s.Type)
}

// Verify checks the store can be written, read back and cleaned, as
// Elasticsearch verifies a repository when it is registered.
func Verify(ctx context.Context, st Store, token string) error {
	key := "tests-" + token + "/verify"
	body := []byte("paddock verification " + token)
	if err := st.Put(ctx, key, strings.NewReader(string(body)), int64(len(body))); err != nil {
		return fmt.Errorf("cannot write to %s: %w", st.Describe(), err)
	}
	rc, err := st.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("cannot read back from %s: %w", st.Describe(), err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("cannot read back from %s: %w", st.Describe(), err)
	}
	if string(got) != string(body) {
		return fmt.Errorf("%s returned other bytes than written", st.Describe())
	}
	if err := st.Delete(ctx, key); err != nil {
		return fmt.Errorf("cannot delete from %s: %w", st.Describe(), err)
	}
	return nil
}

// Counting wraps a store and counts what it writes.
type Counting struct {
	Store
	puts, bytes atomic.Int64
}

// NewCounting wraps st.
func NewCounting(st Store) *Counting { return &Counting{Store: st} }

// Put implements Store.
func (c *Counting) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := c.Store.Put(ctx, key, r, size); err != nil {
		return err
	}
	c.puts.Add(1)
	c.bytes.Add(size)
	return nil
}

// Written returns the blobs and bytes written so far.
func (c *Counting) Written() (blobs, bytes int64) { return c.puts.Load(), c.bytes.Load() }

// redact removes credentials from a URL for messages.
func redact(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "an invalid endpoint"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}
