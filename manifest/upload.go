package manifest

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/diskport/diskport/internal/s3"
)

// UploadOptions say how [Upload] cuts, stores and signs an image.
type UploadOptions struct {
	SplitOptions
	// Bucket receives the parts and the manifest; it is created when it
	// does not exist, unless RequireBucket.
	Bucket string
	// RequireBucket refuses a Bucket that does not exist (ErrNoBucket)
	// instead of creating it: a mistyped name is not a new bucket.
	RequireBucket bool
	// Prefix goes before every object key (a "/" is added when missing).
	Prefix string
	// Parallel is how many parts are uploaded at once; 0 means 4. It is
	// lowered for large parts so their buffers stay within 1 GiB.
	Parallel int
	// Expires is how long the presigned URLs stay valid; 0 means 7 days
	// (the SigV4 maximum) or 30 days with SigV2.
	Expires time.Duration
	// Now is the signing time for SigV2 URLs; zero means time.Now().
	Now time.Time
}

// An UploadResult describes a finished upload.
type UploadResult struct {
	// Manifest is the manifest stored in the bucket.
	Manifest *Manifest
	// ManifestKey is the manifest's object key.
	ManifestKey string
	// ManifestURL is the presigned GET URL of the manifest: the
	// ImportManifestUrl of ImportVolume and ImportInstance.
	ManifestURL string
	// Uploaded and Skipped count the parts sent and the parts already
	// present with the right checksum (a resumed upload).
	Uploaded, Skipped int
}

// ErrNoBucket is the error of an Upload with RequireBucket into a bucket
// that does not exist.
var ErrNoBucket = errors.New("bucket does not exist")

// uploadMemory bounds the part buffers of an upload: fewer parts go at once
// when parts are large.
const uploadMemory = 1 << 30

// metaSHA256 is the user metadata under which a part's SHA-256 is stored
// (x-amz-meta-diskport-sha256), so a resumed upload can tell which parts
// are already in place.
const metaSHA256 = "Diskport-Sha256"

// Upload splits the image into parts, uploads them concurrently to the
// bucket (created if missing) with their SHA-256 in object metadata and
// Content-MD5 checked by the server, and stores a manifest whose URLs are
// presigned (SigV4, or SigV2 when cfg.SigV2). A part already in the bucket
// with the same size, SHA-256 metadata and MD5 ETag is not sent again, so
// running Upload again after an interruption resumes it. Keys are
// [PREFIX/]NAME.partN and [PREFIX/]NAME.manifest.xml.
func Upload(ctx context.Context, cfg S3Config, image string, opts UploadOptions) (*UploadResult, error) {
	if opts.Bucket == "" {
		return nil, errors.New("manifest: no bucket")
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	expires, err := presignLifetime(opts.Expires, cfg.SigV2)
	if err != nil {
		return nil, err
	}
	f, done, err := opts.source(image)
	if err != nil {
		return nil, err
	}
	defer done()
	name := opts.Name
	if name == "" {
		name = filepath.Base(image)
	}
	prefix := strings.Trim(opts.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	opts.KeyPrefix = prefix
	m, err := describe(f, name, &opts.SplitOptions)
	if err != nil {
		return nil, err
	}
	if err := prepareBucket(ctx, client, opts.Bucket, opts.RequireBucket); err != nil {
		return nil, err
	}
	res := &UploadResult{Manifest: m}
	if err := uploadParts(ctx, client, f, res, &opts); err != nil {
		return res, err
	}
	if opts.Verify != nil {
		if err := opts.Verify(); err != nil {
			return res, err
		}
	}
	res.ManifestKey = prefix + ManifestName(name)
	sign := func(method, key string) (string, error) {
		return client.Presign(ctx, method, opts.Bucket, key, expires, opts.Now)
	}
	if err := signURLs(res, sign); err != nil {
		return res, err
	}
	if err := client.Put(ctx, opts.Bucket, res.ManifestKey, m.Marshal(), "application/xml", nil); err != nil {
		return res, fmt.Errorf("manifest: storing s3://%s/%s: %w", opts.Bucket, res.ManifestKey, err)
	}
	return res, nil
}

// presignLifetime returns how long the presigned URLs live: the caller's
// choice, else a week (SigV4's limit) or for SigV2 thirty days.
func presignLifetime(expires time.Duration, sigV2 bool) (time.Duration, error) {
	if expires == 0 {
		expires = 7 * 24 * time.Hour
		if sigV2 {
			expires = 30 * 24 * time.Hour
		}
	}
	if !sigV2 && expires > 7*24*time.Hour {
		return 0, fmt.Errorf("manifest: SigV4 presigned URLs live at most 7 days, not %v", expires)
	}
	return expires, nil
}

// prepareBucket creates the bucket if it is missing, or with mustExist
// checks that it is there.
func prepareBucket(ctx context.Context, client *s3.Client, bucket string, mustExist bool) error {
	if !mustExist {
		if err := client.EnsureBucket(ctx, bucket); err != nil {
			return fmt.Errorf("manifest: bucket %s: %w", bucket, err)
		}
		return nil
	}
	ok, err := client.BucketExists(ctx, bucket)
	if err != nil {
		return fmt.Errorf("manifest: bucket %s: %w", bucket, err)
	}
	if !ok {
		return fmt.Errorf("manifest: bucket %s: %w", bucket, ErrNoBucket)
	}
	return nil
}

// uploadParts hashes the parts of res.Manifest from f in order and
// uploads them with opts.Parallel workers, counting in res the parts sent
// and those already in place. The first failure stops the rest; an
// interruption (ctx done) is reported as such, and the parts stored so
// far are kept for a resumed run.
func uploadParts(ctx context.Context, client *s3.Client, f io.ReaderAt, res *UploadResult, opts *UploadOptions) error {
	m := res.Manifest
	par := opts.Parallel
	if par <= 0 {
		par = 4
	}
	// Keep the part buffers within uploadMemory.
	par = max(1, min(par, int(uploadMemory/opts.partSize())-1))
	progress := progressCounter(opts.Progress, m.FileSize())
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type job struct {
		p    *Part
		data []byte
	}
	jobs := make(chan job)
	pool := make(chan []byte, par+1)
	for i := 0; i < par+1; i++ {
		pool <- nil
	}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A failed worker goes on taking jobs, so that every buffer
			// returns to the pool and the hashing never waits for one.
			for j := range jobs {
				sent, err := putPart(ctx, client, opts.Bucket, j.p, j.data)
				pool <- j.data
				if err != nil {
					fail(&PartError{Part: *j.p, Where: "s3://" + opts.Bucket + "/" + j.p.Key, Err: err})
					continue
				}
				mu.Lock()
				if sent {
					res.Uploaded++
				} else {
					res.Skipped++
				}
				if progress != nil {
					progress(j.p.Length)
				}
				mu.Unlock()
			}
		}()
	}
	ps := opts.partSize()
	err := hashParts(ctx, f, m, func() []byte {
		b := <-pool
		if b == nil {
			b = make([]byte, ps)
		}
		return b
	}, func(p *Part, data []byte) error {
		select {
		case jobs <- job{p, data}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(jobs)
	wg.Wait()
	if err := parent.Err(); err != nil {
		return err
	}
	if firstErr != nil {
		return firstErr
	}
	return err
}

// signURLs presigns every part's HEAD, GET and DELETE URLs and the
// manifest's GET and DELETE (self-destruct) URLs, with sign.
func signURLs(res *UploadResult, sign func(method, key string) (string, error)) error {
	m := res.Manifest
	var err error
	for i := range m.Parts {
		p := &m.Parts[i]
		if p.HeadURL, err = sign("HEAD", p.Key); err != nil {
			return err
		}
		if p.GetURL, err = sign("GET", p.Key); err != nil {
			return err
		}
		if p.DeleteURL, err = sign("DELETE", p.Key); err != nil {
			return err
		}
	}
	if m.SelfDestructURL, err = sign("DELETE", res.ManifestKey); err != nil {
		return err
	}
	res.ManifestURL, err = sign("GET", res.ManifestKey)
	return err
}

// putPart uploads one part unless an object with the same size, SHA-256
// metadata and MD5 is already there; it reports whether it sent the part.
func putPart(ctx context.Context, client *s3.Client, bucket string, p *Part, data []byte) (bool, error) {
	sum := md5.Sum(data)
	md5hex := hex.EncodeToString(sum[:])
	info, err := client.Stat(ctx, bucket, p.Key)
	if err == nil && info.Size == p.Length && info.Metadata[metaSHA256] == p.SHA256 && info.ETag == md5hex {
		return false, nil
	}
	var er *s3.Error
	if err != nil && !(errors.As(err, &er) && (er.Code == "NoSuchKey" || er.Status == 404)) {
		return false, err
	}
	if err := client.Put(ctx, bucket, p.Key, data, "application/octet-stream", map[string]string{metaSHA256: p.SHA256}); err != nil {
		return false, s3Error(err)
	}
	return true, nil
}
