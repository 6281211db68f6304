package manifest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/diskport/diskport/manifest/parts"
)

// UploadOptions say how [Upload] cuts, stores and signs an image.
type UploadOptions struct {
	SplitOptions
	// Bucket receives the parts and the manifest; it is created when it
	// does not exist, unless RequireBucket.
	Bucket string
	// RequireBucket refuses a Bucket that does not exist
	// ([parts.ErrNoBucket]) instead of creating it: a mistyped name is
	// not a new bucket.
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

// Upload splits the image into parts, uploads them to the bucket
// ([parts.S3Store.Upload]: concurrently, each with its SHA-256, resuming
// an interrupted upload) and stores a manifest whose URLs are presigned
// (SigV4, or SigV2 when cfg.SigV2). Keys are [PREFIX/]NAME.partN and
// [PREFIX/]NAME.manifest.xml.
func Upload(ctx context.Context, cfg parts.S3Config, image string, opts UploadOptions) (*UploadResult, error) {
	if opts.Bucket == "" {
		return nil, errors.New("manifest: no bucket")
	}
	store, err := parts.NewS3Store(cfg, opts.Bucket)
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
	res := &UploadResult{Manifest: m}
	file := m.File()
	res.Uploaded, res.Skipped, err = store.Upload(ctx, f, &file, parts.UploadOptions{
		RequireBucket: opts.RequireBucket, Parallel: opts.Parallel,
		Expires: opts.Expires, Now: opts.Now, Progress: opts.Progress})
	if err != nil {
		return res, err
	}
	m.SHA256 = file.SHA256
	if opts.Verify != nil {
		if err := opts.Verify(); err != nil {
			return res, err
		}
	}
	res.ManifestKey = prefix + ManifestName(name)
	if m.SelfDestructURL, err = store.Presign(ctx, "DELETE", res.ManifestKey, opts.Expires, opts.Now); err != nil {
		return res, err
	}
	if res.ManifestURL, err = store.Presign(ctx, "GET", res.ManifestKey, opts.Expires, opts.Now); err != nil {
		return res, err
	}
	if err := store.Put(ctx, res.ManifestKey, m.Marshal(), "application/xml"); err != nil {
		return res, fmt.Errorf("manifest: storing s3://%s/%s: %w", opts.Bucket, res.ManifestKey, err)
	}
	return res, nil
}
