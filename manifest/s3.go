package manifest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/diskport/diskport/disk"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config says how to reach an S3 endpoint.
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
}

// S3ConfigFromEnv returns a config for endpoint with the credentials and
// region of the usual AWS environment variables: AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION or
// AWS_DEFAULT_REGION.
func S3ConfigFromEnv(endpoint string) S3Config {
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	return S3Config{
		Endpoint:     endpoint,
		Region:       region,
		AccessKey:    os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretKey:    os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: os.Getenv("AWS_SESSION_TOKEN"),
	}
}

func (c *S3Config) region() string {
	if c.Region == "" {
		return "us-east-1"
	}
	return c.Region
}

func (c *S3Config) endpointURL() (*url.URL, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("manifest: endpoint %q is not an http(s) URL", c.Endpoint)
	}
	return u, nil
}

// Client returns a minio-go client for the endpoint, addressing buckets by
// path.
func (c *S3Config) Client() (*minio.Client, error) {
	u, err := c.endpointURL()
	if err != nil {
		return nil, err
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return nil, errors.New("manifest: no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	creds := credentials.NewStaticV4(c.AccessKey, c.SecretKey, c.SessionToken)
	if c.SigV2 {
		creds = credentials.NewStaticV2(c.AccessKey, c.SecretKey, c.SessionToken)
	}
	return minio.New(u.Host, &minio.Options{
		Creds:        creds,
		Secure:       u.Scheme == "https",
		Region:       c.region(),
		BucketLookup: minio.BucketLookupPath,
	})
}

// An S3Store reads parts from a bucket by key with the S3 API (for
// manifests whose presigned URLs have expired).
type S3Store struct {
	Client *minio.Client
	Bucket string
}

// Where returns s3://bucket/key.
func (s *S3Store) Where(p *Part) string { return "s3://" + s.Bucket + "/" + p.Key }

// OpenPart gets [off, off+n) of the part's object, checking the object's
// size against the manifest.
func (s *S3Store) OpenPart(ctx context.Context, p *Part, off, n int64) (io.ReadCloser, error) {
	opts := minio.GetObjectOptions{}
	if n > 0 && !(off == 0 && n == p.Length) {
		if err := opts.SetRange(off, off+n-1); err != nil {
			return nil, err
		}
	}
	obj, err := s.Client.GetObject(ctx, s.Bucket, p.Key, opts)
	if err != nil {
		return nil, s3Error(err)
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, s3Error(err)
	}
	if st.Size != p.Length && (off == 0 && n == p.Length) {
		obj.Close()
		return nil, lengthError(st.Size, p.Length)
	}
	return obj, nil
}

// s3Error turns a missing object into a corruption of the manifest's file.
func s3Error(err error) error {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		if er.Code == "NoSuchKey" {
			return errorf(disk.ErrCorrupt, "missing: %s", er.Message)
		}
		msg := er.Message
		if er.Code != "" {
			msg = er.Code + ": " + msg
		}
		return fmt.Errorf("HTTP %d: %s", er.StatusCode, strings.TrimSpace(msg))
	}
	return err
}
