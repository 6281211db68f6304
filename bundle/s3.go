package bundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/s3"
)

// A PostSink stores a bundle with S3 POST Object form uploads under an
// upload policy: each object is a multipart/form-data POST to the bucket
// with the fields key, AWSAccessKeyId, acl, policy, signature and file —
// exactly what BundleInstance's Storage.S3 parameters allow, no secret key.
// Check the policy with CheckPolicy before storing: the server refuses
// what the policy does not grant, but only after the bytes are sent.
type PostSink struct {
	// Endpoint is the S3 endpoint URL (http://127.0.0.1:9000,
	// https://s3.amazonaws.com); objects are posted path-style to
	// Endpoint/Bucket/.
	Endpoint string
	// Bucket, AccessKeyID, Policy and Signature are Storage.S3.Bucket,
	// .AWSAccessKeyId, .UploadPolicy and .UploadPolicySignature.
	Bucket, AccessKeyID, Policy, Signature string
	// Client sends the requests; nil means a client with a 5-minute
	// timeout.
	Client *http.Client
	// Remover, if set, deletes stored objects when a task is cancelled (the
	// policy grants no deletion: it needs credentials of its own).
	Remover Remover
	// Attempts is how many times a post is tried on a network error or a
	// 5xx answer; 0 means 3.
	Attempts int
}

// An S3Error is an S3 server's refusal: the HTTP status and the Code and
// Message of its error document.
type S3Error = s3.Error

var defaultClient = &http.Client{Timeout: 5 * time.Minute}

// Put posts data as the object name.
func (s *PostSink) Put(ctx context.Context, name string, data []byte) error {
	u, err := url.Parse(strings.TrimSuffix(s.Endpoint, "/") + "/" + url.PathEscape(s.Bucket) + "/")
	if err != nil || u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("bundle: bad S3 endpoint %q", s.Endpoint)
	}
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	for _, f := range [][2]string{
		{"key", name}, {"AWSAccessKeyId", s.AccessKeyID}, {"acl", BundleACL},
		{"policy", s.Policy}, {"signature", s.Signature},
	} {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return err
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, name[strings.LastIndex(name, "/")+1:]))
	h.Set("Content-Type", "application/octet-stream")
	if _, err := mw.CreatePart(h); err != nil {
		return err
	}
	tail := "\r\n--" + mw.Boundary() + "--\r\n"
	client := s.Client
	if client == nil {
		client = defaultClient
	}
	attempts := s.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	for try := 1; ; try++ {
		body := io.MultiReader(bytes.NewReader(head.Bytes()), bytes.NewReader(data), strings.NewReader(tail))
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), body)
		if err != nil {
			return err
		}
		req.ContentLength = int64(head.Len() + len(data) + len(tail))
		req.Header.Set("Content-Type", mw.FormDataContentType())
		err = doPost(client, req)
		var se *S3Error
		retry := err != nil && ctx.Err() == nil && (!errors.As(err, &se) || se.Status >= 500)
		if !retry || try >= attempts {
			return err
		}
		select {
		case <-time.After(time.Duration(try) * time.Second):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

func doPost(c *http.Client, req *http.Request) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
		return nil
	}
	return s3.ReadError(resp)
}

// Remove deletes name through s.Remover.
func (s *PostSink) Remove(ctx context.Context, name string) error {
	if s.Remover == nil {
		return errors.New("bundle: no credentials to delete stored objects with (the upload policy grants no deletion)")
	}
	return s.Remover.Remove(ctx, name)
}

// S3 reads and deletes bundle objects in a bucket with an access key and
// secret: a Source and a Remover.
type S3 struct {
	client *s3.Client
	// Bucket is the bucket the objects are in.
	Bucket string
}

// NewS3 connects to the S3 endpoint URL (http:// or https://) with static
// credentials, signing with SigV4 for region (empty: us-east-1).
func NewS3(endpoint, bucket, accessKey, secretKey, region string) (*S3, error) {
	c, err := s3.New(s3.Config{Endpoint: endpoint, Region: region, AccessKey: accessKey, SecretKey: secretKey, VirtualHost: true})
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return &S3{client: c, Bucket: bucket}, nil
}

// Get returns the object name, refusing one over limit bytes.
func (s *S3) Get(ctx context.Context, name string, limit int64) ([]byte, error) {
	o, st, err := s.client.Get(ctx, s.Bucket, name, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("bundle: s3://%s/%s: %w", s.Bucket, name, err)
	}
	defer o.Close()
	if st.Size > limit {
		return nil, disk.Errorf("bundle", disk.ErrTooLarge, "s3://%s/%s is %d bytes, over the %d-byte limit", s.Bucket, name, st.Size, limit)
	}
	data, err := io.ReadAll(io.LimitReader(o, limit+1))
	if err != nil {
		return nil, fmt.Errorf("bundle: s3://%s/%s: %w", s.Bucket, name, err)
	}
	if int64(len(data)) != st.Size {
		return nil, fmt.Errorf("bundle: s3://%s/%s: read %d bytes of %d", s.Bucket, name, len(data), st.Size)
	}
	return data, nil
}

// Remove deletes the object name.
func (s *S3) Remove(ctx context.Context, name string) error {
	return s.client.Remove(ctx, s.Bucket, name)
}
