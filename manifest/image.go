package manifest

import (
	"context"
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
// a directory holding one manifest, or an http(s) URL (an
// ImportManifestUrl): one call for [Open], [OpenStorage] and
// diskport.OpenStorage, with the manifest's file-format checked against
// the bytes (a *diskport.MismatchError when they contradict it). It lives
// here rather than in package diskport, which this package imports.
func OpenImage(ctx context.Context, pathOrURL string, opts ImageOptions) (*Image, error) {
	m, store, err := Open(ctx, pathOrURL, opts.Client)
	if err != nil {
		return nil, err
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
