package snaprepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

type s3Store struct {
	client   *minio.Client
	bucket   string
	base     string // "" or "dir/" (always ends with "/")
	endpoint string // for messages, without credentials
}

func newS3(ctx context.Context, s Settings) (*s3Store, error) {
	if s.Bucket == "" {
		return nil, errors.New("s3 repository needs settings.bucket")
	}
	if s.Endpoint == "" {
		return nil, errors.New("s3 repository needs settings.endpoint (http://host:port of the object store)")
	}
	if s.AccessKey == "" || s.SecretKey == "" {
		return nil, errors.New("s3 repository needs settings.access_key and settings.secret_key")
	}
	ep := s.Endpoint
	if !strings.Contains(ep, "://") {
		proto := s.Protocol
		if proto == "" {
			proto = "https"
		}
		ep = proto + "://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("s3 repository endpoint %q is not http(s)://host:port", redact(ep))
	}
	region := s.Region
	if region == "" {
		region = "us-east-1"
	}
	lookup := minio.BucketLookupAuto
	if s.PathStyle {
		lookup = minio.BucketLookupPath
	}
	tr, err := minio.DefaultTransport(u.Scheme == "https")
	if err != nil {
		return nil, err
	}
	tr.ResponseHeaderTimeout = 30 * time.Second
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       region,
		BucketLookup: lookup,
		Transport:    tr,
		MaxRetries:   3,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", redact(ep), err)
	}
	st := &s3Store{client: client, bucket: s.Bucket, endpoint: u.Scheme + "://" + u.Host}
	if b := strings.Trim(s.BasePath, "/"); b != "" {
		st.base = b + "/"
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ok, err := client.BucketExists(cctx, s.Bucket)
	if err != nil {
		return nil, st.wrap("check bucket", err)
	}
	if !ok {
		if err := client.MakeBucket(cctx, s.Bucket, minio.MakeBucketOptions{Region: region}); err != nil {
			var resp minio.ErrorResponse
			if !errors.As(err, &resp) || (resp.Code != "BucketAlreadyOwnedByYou" && resp.Code != "BucketAlreadyExists") {
				return nil, st.wrap("create bucket", err)
			}
		}
	}
	return st, nil
}

func (s *s3Store) Describe() string {
	return "s3 bucket [" + s.bucket + "] base_path [" + strings.TrimSuffix(s.base, "/") + "] at " + s.endpoint
}

func (s *s3Store) wrap(op string, err error) error {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && resp.Code != "" {
		return fmt.Errorf("%s on %s: %s (%s)", op, s.endpoint, resp.Message, resp.Code)
	}
	return fmt.Errorf("%s on %s: %w", op, s.endpoint, err)
}

func (s *s3Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	_, err := s.client.PutObject(ctx, s.bucket, s.base+key, r, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream", DisableMultipart: size >= 0 && size < 64<<20,
	})
	if err != nil {
		return s.wrap("put "+key, err)
	}
	return nil
}

func (s *s3Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, s.base+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap("get "+key, err)
	}
	// GetObject is lazy: Stat surfaces a missing key now.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		if minio.ToErrorResponse(err).StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return nil, s.wrap("get "+key, err)
	}
	return obj, nil
}

func (s *s3Store) Delete(ctx context.Context, key string) error {
	if err := s.client.RemoveObject(ctx, s.bucket, s.base+key, minio.RemoveObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).StatusCode == http.StatusNotFound {
			return nil
		}
		return s.wrap("delete "+key, err)
	}
	return nil
}

func (s *s3Store) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.base + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, s.wrap("list "+path.Join(s.base, prefix), o.Err)
		}
		out = append(out, Object{Key: strings.TrimPrefix(o.Key, s.base), Size: o.Size, Modified: o.LastModified})
	}
	return out, nil
}
