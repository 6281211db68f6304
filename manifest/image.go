package manifest

import (
	"context"
	"fmt"
	"net/http"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
)

// ImageOptions configure [OpenImage].
type ImageOptions struct {
	// Client fetches the manifest and its parts over HTTP; nil means
	// http.DefaultClient.
	Client *http.Client
	// Store, when set, is where the parts are read from instead of the
	// one [Open] picks (an [S3Store] when the presigned URLs expired).
	Store PartStore
	// S3 is the endpoint and credentials an s3://bucket/key manifest is
	// read with ([OpenS3]); nil refuses such a name.
	S3 *S3Config
	// Storage tunes the parts' cache and read-ahead.
	Storage StorageOptions
	// Image are the options the image is opened with. Format is the
	// manifest's file-format and must be empty.
	Image diskport.Options
}

// An Image is the disk image an import manifest's parts hold, read from
// them: a disk.Image that owns its storage (Close closes both).
type Image struct {
	disk.Image
	s *Storage
}

// OpenImage opens the image a manifest's parts hold, from a manifest path,
// a directory holding one manifest, an http(s) URL (an ImportManifestUrl)
// or, with opts.S3, s3://bucket/key: one call for [Open], [OpenStorage] and
// diskport.OpenStorage, with the manifest's file-format checked against
// the bytes (a *diskport.MismatchError when they contradict it). It lives
// here rather than in package diskport, which this package imports.
func OpenImage(ctx context.Context, pathOrURL string, opts ImageOptions) (*Image, error) {
	var m *Manifest
	var store PartStore
	var err error
	switch {
	case IsS3URL(pathOrURL) && opts.S3 != nil:
		m, store, err = OpenS3(ctx, *opts.S3, pathOrURL)
	case IsS3URL(pathOrURL):
		err = fmt.Errorf("manifest: %s: an s3:// manifest is read with S3 credentials (ImageOptions.S3)", pathOrURL)
	default:
		m, store, err = Open(ctx, pathOrURL, opts.Client)
	}
	if err != nil {
		return nil, err
	}
	if m.Format() == diskport.Tar {
		return nil, errorf(disk.ErrUnsupported, "%s is the manifest of a whole OVA appliance, not of a disk image: read its bytes with OpenStorage and package ova", pathOrURL)
	}
	if opts.Store != nil {
		store = opts.Store
	}
	so := opts.Storage
	if so.Name == "" {
		so.Name = pathOrURL
	}
	s, err := OpenStorage(ctx, m, store, so)
	if err != nil {
		return nil, err
	}
	io := opts.Image
	io.Format = m.FileFormat
	img, err := diskport.OpenStorage(s, io)
	if err != nil {
		s.Close()
		return nil, err
	}
	return &Image{img, s}, nil
}

// Manifest returns the manifest the image is read from.
func (i *Image) Manifest() *Manifest { return i.s.Manifest() }

// CheckFile checks the SHA-256 of the whole file against the manifest's,
// once every byte has been read ([Storage.CheckFile]).
func (i *Image) CheckFile() error { return i.s.CheckFile() }

// Close closes the image and its storage.
func (i *Image) Close() error {
	err := i.Image.Close()
	if err2 := i.s.Close(); err == nil {
		err = err2
	}
	return err
}
