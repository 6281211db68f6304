package parts

import (
	"context"
	"errors"
	"io"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/s3"
)

// S3Config says how to reach an S3 endpoint: its URL, the region, the
// credentials, and whether to sign with signature version 2.
type S3Config struct {
	// Endpoint is the service URL, such as https://s3.us-east-1.amazonaws.com
	// or http://127.0.0.1:9000.
	Endpoint string
	// Region is the bucket's region; "" means us-east-1.
	Region string
	// AccessKey, SecretKey and SessionToken are the credentials.
	AccessKey, SecretKey, SessionToken string
	// SigV2 signs requests and presigned URLs with signature version 2
	// (for old endpoints) instead of version 4.
	SigV2 bool
	// VirtualHost lets the client address buckets as virtual hosts
	// (bucket.s3.amazonaws.com) where the endpoint allows it; by default
	// buckets are always addressed by path (endpoint/bucket/key), as
	// presigned URLs are.
	VirtualHost bool
}

// S3ConfigFromEnv returns a config for endpoint with the credentials and
// region of the usual AWS environment variables: AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION or
// AWS_DEFAULT_REGION.
func S3ConfigFromEnv(endpoint string) S3Config { return S3Config(s3.ConfigFromEnv(endpoint)) }

// newClient returns a client for cfg, which must carry credentials.
func newClient(cfg S3Config) (*s3.Client, error) {
	c := s3.Config(cfg)
	if _, err := c.EndpointURL(); err != nil {
		return nil, err
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("manifest: no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	return s3.New(c)
}

// An S3Store keeps parts in a bucket, by key, with the S3 API: it reads
// them (for a manifest whose presigned URLs have expired) and uploads them
// ([S3Store.Upload]).
type S3Store struct {
	client *s3.Client
	bucket string
}

// NewS3Store returns the store of bucket at the endpoint of cfg, which
// must carry credentials.
func NewS3Store(cfg S3Config, bucket string) (*S3Store, error) {
	c, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	return &S3Store{client: c, bucket: bucket}, nil
}

// Where returns s3://bucket/key.
func (s *S3Store) Where(p *Part) string { return "s3://" + s.bucket + "/" + p.Key }

// OpenPart gets [off, off+n) of the part's object, checking the object's
// size against the part's.
func (s *S3Store) OpenPart(ctx context.Context, p *Part, off, n int64) (io.ReadCloser, error) {
	whole := off == 0 && n == p.Length
	if whole {
		n = 0
	}
	obj, st, err := s.client.Get(ctx, s.bucket, p.Key, off, n)
	if err != nil {
		return nil, s3Error(err)
	}
	if whole && st.Size != p.Length {
		obj.Close()
		return nil, lengthError(st.Size, p.Length)
	}
	return obj, nil
}

// s3Error turns a missing object into a corruption of the file.
func s3Error(err error) error {
	var er *s3.Error
	if errors.As(err, &er) && er.Code == "NoSuchKey" {
		return errorf(disk.ErrCorrupt, "missing: %s", er.Message)
	}
	return err
}

// Fetch reads the object key of the bucket whole (the manifest beside
// the parts); an object larger than limit bytes is refused
// (disk.ErrTooLarge).
func (s *S3Store) Fetch(ctx context.Context, key string, limit int64) ([]byte, error) {
	obj, _, err := s.client.Get(ctx, s.bucket, key, 0, 0)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	b, err := io.ReadAll(io.LimitReader(obj, limit+1))
	if err != nil {
		return nil, s3.Parse(err)
	}
	if int64(len(b)) > limit {
		return nil, errorf(disk.ErrTooLarge, "document larger than %d bytes", limit)
	}
	return b, nil
}
