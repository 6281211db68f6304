package manifest

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
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
	expires := opts.Expires
	if expires == 0 {
		expires = 7 * 24 * time.Hour
		if cfg.SigV2 {
			expires = 30 * 24 * time.Hour
		}
	}
	if !cfg.SigV2 && expires > 7*24*time.Hour {
		return nil, fmt.Errorf("manifest: SigV4 presigned URLs live at most 7 days, not %v", expires)
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
	if opts.RequireBucket {
		ok, err := client.BucketExists(ctx, opts.Bucket)
		if err != nil {
			return nil, fmt.Errorf("manifest: bucket %s: %w", opts.Bucket, err)
		}
		if !ok {
			return nil, fmt.Errorf("manifest: bucket %s: %w", opts.Bucket, ErrNoBucket)
		}
	} else if err := client.EnsureBucket(ctx, opts.Bucket); err != nil {
		return nil, fmt.Errorf("manifest: bucket %s: %w", opts.Bucket, err)
	}

	par := opts.Parallel
	if par <= 0 {
		par = 4
	}
	// Keep the part buffers within uploadMemory.
	par = max(1, min(par, int(uploadMemory/opts.partSize())-1))
	res := &UploadResult{Manifest: m}
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
	err = hashParts(ctx, f, m, func() []byte {
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
		return res, err // interrupted: the parts stored so far are kept
	}
	if firstErr != nil {
		return res, firstErr
	}
	if err != nil {
		return res, err
	}
	if opts.Verify != nil {
		if err := opts.Verify(); err != nil {
			return res, err
		}
	}

	// Sign the URLs and store the manifest.
	res.ManifestKey = prefix + ManifestName(name)
	sign := func(method, key string) (string, error) {
		return client.Presign(ctx, method, opts.Bucket, key, expires, opts.Now)
	}
	for i := range m.Parts {
		p := &m.Parts[i]
		if p.HeadURL, err = sign("HEAD", p.Key); err != nil {
			return res, err
		}
		if p.GetURL, err = sign("GET", p.Key); err != nil {
			return res, err
		}
		if p.DeleteURL, err = sign("DELETE", p.Key); err != nil {
			return res, err
		}
	}
	if m.SelfDestructURL, err = sign("DELETE", res.ManifestKey); err != nil {
		return res, err
	}
	if res.ManifestURL, err = sign("GET", res.ManifestKey); err != nil {
		return res, err
	}
	if err := client.Put(ctx, opts.Bucket, res.ManifestKey, m.Marshal(), "application/xml", nil); err != nil {
		return res, fmt.Errorf("manifest: storing s3://%s/%s: %w", opts.Bucket, res.ManifestKey, err)
	}
	return res, nil
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
