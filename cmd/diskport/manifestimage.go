package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/manifest/parts"
)

// openManifestImage opens the image a manifest's parts hold (convert, info
// and map --manifest): the declared file-format is checked against the
// bytes. Closing the returned image also drops the parts cache.
func openManifestImage(ctx context.Context, pathOrURL string, progress func(done, total int64)) (*manifest.Image, error) {
	return openManifestImageAt(ctx, pathOrURL, "", progress)
}

// openManifestImageAt is openManifestImage with the S3 endpoint an
// s3://bucket/key manifest is read from ("": the region's).
func openManifestImageAt(ctx context.Context, pathOrURL, endpoint string, progress func(done, total int64)) (*manifest.Image, error) {
	opts := manifest.ImageOptions{Storage: parts.StorageOptions{Progress: progress}}
	if manifest.IsS3URL(pathOrURL) {
		cfg := s3Config(endpoint, "", false)
		opts.S3 = &cfg
	}
	img, err := manifest.OpenImage(ctx, manifest.Source{Manifest: pathOrURL}, opts)
	var me *diskport.MismatchError
	if errors.As(err, &me) {
		return nil, &hinted{fmt.Sprintf("%s (the manifest's file-format is wrong: EC2 would import these bytes as %s; write the manifest again with the right --format)", me.Reason(), me.Declared.EC2Name()), err}
	}
	return img, err
}

// openManifest reads a manifest from a path, a directory holding one, a
// URL, or s3://bucket/key with the AWS environment's credentials at
// endpoint ("": the region's), and the store its parts are read from.
func openManifest(ctx context.Context, pathOrURL, endpoint string) (*manifest.Manifest, parts.Store, error) {
	if manifest.IsS3URL(pathOrURL) {
		return manifest.OpenS3(ctx, s3Config(endpoint, "", false), pathOrURL)
	}
	return manifest.Open(ctx, pathOrURL, nil)
}
