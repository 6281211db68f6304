// Package s3 is diskport's one S3 client, shared by manifest/parts
// (import uploads and parts read by key) and bundle (bundles read and
// removed by key, stored with POST policies): the client setup from an endpoint URL
// and static credentials, the few object operations they use, S3's
// signature version 2 for presigned URLs and POST policies, and S3's error
// responses parsed into an [Error] ("Code: Message", never the raw XML).
// It wraps minio-go, which appears in no exported API of the packages
// above.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// A Config says how to reach an S3 endpoint.
type Config struct {
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
	// (bucket.s3.amazonaws.com) where the endpoint allows it, minio-go's
	// automatic lookup; by default buckets are always addressed by path
	// (endpoint/bucket/key), as presigned URLs are.
	VirtualHost bool
}

// ConfigFromEnv returns a config for endpoint with the credentials and
// region of the usual AWS environment variables: AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION or
// AWS_DEFAULT_REGION.
func ConfigFromEnv(endpoint string) Config {
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	return Config{
		Endpoint:     endpoint,
		Region:       region,
		AccessKey:    os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretKey:    os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: os.Getenv("AWS_SESSION_TOKEN"),
	}
}

// SigningRegion returns the region requests are signed for: Region, or
// us-east-1.
func (c *Config) SigningRegion() string {
	if c.Region == "" {
		return "us-east-1"
	}
	return c.Region
}

// EndpointURL parses Endpoint, which must be an http or https URL with a
// host.
func (c *Config) EndpointURL() (*url.URL, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("s3: endpoint %q is not an http(s) URL", c.Endpoint)
	}
	return u, nil
}

// A Client sends S3 requests to one endpoint with one set of credentials.
// It is safe for concurrent use.
type Client struct {
	cfg Config
	mc  *minio.Client
}

// New returns a client for cfg. Empty credentials make anonymous requests.
func New(cfg Config) (*Client, error) {
	u, err := cfg.EndpointURL()
	if err != nil {
		return nil, err
	}
	creds := credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	if cfg.SigV2 {
		creds = credentials.NewStaticV2(cfg.AccessKey, cfg.SecretKey, cfg.SessionToken)
	}
	lookup := minio.BucketLookupPath
	if cfg.VirtualHost {
		lookup = minio.BucketLookupAuto
	}
	mc, err := minio.New(u.Host, &minio.Options{
		Creds:        creds,
		Secure:       u.Scheme == "https",
		Region:       cfg.SigningRegion(),
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	return &Client{cfg: cfg, mc: mc}, nil
}

// Config returns the client's configuration.
func (c *Client) Config() Config { return c.cfg }

// BucketExists reports whether bucket exists (and the credentials may
// see it).
func (c *Client) BucketExists(ctx context.Context, bucket string) (bool, error) {
	ok, err := c.mc.BucketExists(ctx, bucket)
	return ok, Parse(err)
}

// EnsureBucket creates bucket in the client's region unless it exists.
func (c *Client) EnsureBucket(ctx context.Context, bucket string) error {
	ok, err := c.mc.BucketExists(ctx, bucket)
	if err != nil {
		return Parse(err)
	}
	if ok {
		return nil
	}
	err = c.mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: c.cfg.SigningRegion()})
	if HasCode(err, "BucketAlreadyOwnedByYou") {
		return nil
	}
	return Parse(err)
}

// An ObjectInfo is what S3 says about a stored object.
type ObjectInfo struct {
	// Size is the object's length in bytes (of the range asked for, for a
	// ranged Get).
	Size int64
	// ETag is the object's entity tag without its quotes: the hex MD5 of
	// an object stored in one PUT.
	ETag string
	// Metadata is the object's user metadata (x-amz-meta-*), by the
	// canonical header name without the prefix ("Diskport-Sha256").
	Metadata map[string]string
}

func info(oi minio.ObjectInfo) ObjectInfo {
	return ObjectInfo{Size: oi.Size, ETag: trimQuotes(oi.ETag), Metadata: oi.UserMetadata}
}

func trimQuotes(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// Stat returns what S3 says about bucket/key. A missing object is an
// *Error with the code NoSuchKey.
func (c *Client) Stat(ctx context.Context, bucket, key string) (ObjectInfo, error) {
	oi, err := c.mc.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, Parse(err)
	}
	return info(oi), nil
}

// Get opens bucket/key for reading: n bytes from off, or the whole object
// when n is 0. The response's headers have been read when it returns (the
// info describes them), the body is read through the reader.
func (c *Client) Get(ctx context.Context, bucket, key string, off, n int64) (io.ReadCloser, ObjectInfo, error) {
	opts := minio.GetObjectOptions{}
	if n > 0 {
		if err := opts.SetRange(off, off+n-1); err != nil {
			return nil, ObjectInfo{}, fmt.Errorf("s3: %w", err)
		}
	}
	obj, err := c.mc.GetObject(ctx, bucket, key, opts)
	if err != nil {
		return nil, ObjectInfo{}, Parse(err)
	}
	oi, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, ObjectInfo{}, Parse(err)
	}
	return obj, info(oi), nil
}

// Put stores data as bucket/key in one PUT with its Content-MD5 (so the
// server checks the bytes), the content type and user metadata (names
// without the x-amz-meta- prefix).
func (c *Client) Put(ctx context.Context, bucket, key string, data []byte, contentType string, meta map[string]string) error {
	_, err := c.mc.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType:      contentType,
		UserMetadata:     meta,
		SendContentMd5:   true,
		DisableMultipart: true,
	})
	return Parse(err)
}

// PutStream stores what r yields as bucket/key with a multipart upload
// of partSize-byte parts, threads of them in flight at once (each a
// buffer of partSize), reading r to its end: size is its length, or -1
// when unknown. A failure aborts the upload, so no part is left behind.
// It returns the bytes stored.
func (c *Client) PutStream(ctx context.Context, bucket, key string, r io.Reader, size, partSize int64, threads int) (int64, error) {
	info, err := c.mc.PutObject(ctx, bucket, key, r, size, minio.PutObjectOptions{
		PartSize:              uint64(partSize),
		NumThreads:            uint(max(threads, 1)),
		ConcurrentStreamParts: threads > 1,
		ContentType:           "application/octet-stream",
	})
	if err != nil {
		return 0, Parse(err)
	}
	return info.Size, nil
}

// AbortUploads aborts the multipart uploads of bucket/key left
// incomplete (by a process killed mid-upload), removing their parts.
func (c *Client) AbortUploads(ctx context.Context, bucket, key string) error {
	return Parse(c.mc.RemoveIncompleteUpload(ctx, bucket, key))
}

// Remove deletes bucket/key.
func (c *Client) Remove(ctx context.Context, bucket, key string) error {
	return Parse(c.mc.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{}))
}

// Presign returns a URL that lets anyone holding it send method (GET, HEAD,
// DELETE) for bucket/key until now+expires: signature version 4 (at most 7
// days), or version 2 with Config.SigV2 ([PresignV2]; zero now means
// time.Now()).
func (c *Client) Presign(ctx context.Context, method, bucket, key string, expires time.Duration, now time.Time) (string, error) {
	if c.cfg.SigV2 {
		u, err := c.cfg.EndpointURL()
		if err != nil {
			return "", err
		}
		if now.IsZero() {
			now = time.Now()
		}
		return PresignV2(method, u, bucket, key, c.cfg.AccessKey, c.cfg.SecretKey, now.Add(expires)), nil
	}
	u, err := c.mc.Presign(ctx, method, bucket, key, expires, nil)
	if err != nil {
		return "", fmt.Errorf("s3: presigning %s %s/%s: %w", method, bucket, key, err)
	}
	return u.String(), nil
}

// errorResponse is minio-go's parsed error, for errors.As.
type errorResponse = minio.ErrorResponse

// Parse returns err as an *Error when it is an S3 server's error response
// as minio-go reports it; any other error (nil included) unchanged.
func Parse(err error) error {
	var er errorResponse
	if err == nil || !errors.As(err, &er) {
		return err
	}
	return &Error{Status: er.StatusCode, Code: er.Code, Message: er.Message}
}
