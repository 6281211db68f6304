package manifest

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/manifest/parts"
	"github.com/diskport/diskport/ova"
)

// A Source names what an import reads: exactly one of
//   - Path, a disk image file, or an OVA (whose disk Disk is read);
//   - Manifest, an import manifest: a path, a directory holding one, an
//     http(s) URL (an ImportManifestUrl) or s3://bucket/key;
//   - Parts with Store, a manifest already read, its parts in Store (a
//     server that waited for the upload to finish).
//
// A manifest of a whole OVA (file-format OVA) reads the appliance's disk
// Disk, as a Path naming an OVA does.
type Source struct {
	Path     string
	Manifest string
	Parts    *Manifest
	Store    parts.Store
	// Disk is the disk of an OVA to read, by its number in boot order.
	Disk int
}

// name is how errors and the storage name the source.
func (s Source) name() string {
	switch {
	case s.Path != "":
		return s.Path
	case s.Manifest != "":
		return RedactURL(s.Manifest)
	}
	return "manifest"
}

// ImageOptions configure [OpenImage].
type ImageOptions struct {
	// Client fetches a manifest and its parts over HTTP; nil means
	// http.DefaultClient.
	Client *http.Client
	// Store, when set, is where a named manifest's parts are read from
	// instead of the one [Open] picks (a [parts.S3Store] when the
	// presigned URLs expired).
	Store parts.Store
	// S3 is the endpoint and credentials an s3://bucket/key manifest is
	// read with ([OpenS3]); nil refuses such a name.
	S3 *parts.S3Config
	// Storage tunes the parts' cache and read-ahead.
	Storage parts.StorageOptions
	// Image are the options a disk image is opened with. For a manifest,
	// Format is its file-format and must be empty, and there are no
	// Parents. For an OVA, only MaxVirtualSize applies.
	Image diskport.Options
	// NoVerifyManifest reads an OVA whose .mf is missing, lacks a disk or
	// lists a file the OVA lacks ([ova.Options]).
	NoVerifyManifest bool
}

// An Image is the disk image a [Source] names, opened through the format
// table, with every check its source carries: an import manifest's
// per-part SHA-256s (parts fetched whole are checked as they arrive,
// larger ones as they stream past) and its whole-file SHA-256, and an OVA
// disk's .mf checksum. The checks that need every byte are made by
// [Image.Verify], which convert.Convert and convert.Check call (it is a
// disk.Verifier) before they commit or pass the image. Close closes the
// image and everything it opened.
type Image struct {
	disk.Image
	m    *Manifest      // the manifest; nil for a file
	s    *parts.Storage // the manifest's parts; nil for a file
	app  *ova.Appliance // the OVA the disk is read from; nil otherwise
	disk *ova.Image     // the OVA disk, which Image is; nil otherwise
	n    int            // the OVA disk's number
	own  bool           // Close closes s and app (false for Image.Disk's)
}

// OpenImage opens the disk image src names: one call for [Open] or
// [OpenS3], [parts.OpenStorage], package ova and
// diskport.Open/OpenStorage.
// A manifest's file-format is checked against the bytes (a
// *diskport.MismatchError when they contradict it); an OVA, named or
// declared by a manifest, is opened with its .mf required (unless
// opts.NoVerifyManifest) and its disk src.Disk read.
func OpenImage(ctx context.Context, src Source, opts ImageOptions) (*Image, error) {
	if src.Path != "" {
		return openFile(src, opts)
	}
	m, store := src.Parts, src.Store
	var err error
	switch {
	case m != nil:
		if store == nil {
			return nil, errors.New("manifest: Source.Parts needs Source.Store")
		}
	case IsS3URL(src.Manifest) && opts.S3 != nil:
		m, store, err = OpenS3(ctx, *opts.S3, src.Manifest)
	case IsS3URL(src.Manifest):
		err = fmt.Errorf("manifest: %s: an s3:// manifest is read with S3 credentials (ImageOptions.S3)", src.Manifest)
	case src.Manifest != "":
		m, store, err = Open(ctx, src.Manifest, opts.Client)
	default:
		err = errors.New("manifest: the Source names nothing to open")
	}
	if err != nil {
		return nil, err
	}
	if opts.Image.Format != "" || len(opts.Image.Parents) > 0 {
		return nil, errorf(disk.ErrUnsupported, "%s: a manifest's format is its file-format, and its image has no parents", src.name())
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if opts.Store != nil {
		store = opts.Store
	}
	so := opts.Storage
	if so.Name == "" {
		so.Name = src.name()
	}
	s, err := parts.OpenStorage(ctx, m.File(), store, so)
	if err != nil {
		return nil, err
	}
	var img *Image
	if m.Format() == diskport.Tar {
		img, err = openOVA(s, src.Disk, opts)
	} else {
		io := opts.Image
		io.Format = m.FileFormat
		var di disk.Image
		if di, err = diskport.OpenStorage(s, io); err == nil {
			img = &Image{Image: di}
		}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	img.m, img.s, img.own = m, s, true
	return img, nil
}

// openFile opens the image file src.Path, or disk src.Disk of it when it
// is an OVA and no other format was declared.
func openFile(src Source, opts ImageOptions) (*Image, error) {
	if isOVA(src.Path, opts.Image) {
		a, err := ova.OpenFile(src.Path, ovaOptions(opts))
		if err != nil {
			return nil, err
		}
		img, err := diskOf(a, src.Disk)
		if err != nil {
			return nil, err
		}
		img.own = true
		return img, nil
	}
	if src.Disk != 0 || opts.NoVerifyManifest {
		return nil, errorf(disk.ErrUnsupported, "%s is not an OVA: it has no disks to choose from and no .mf", src.Path)
	}
	di, err := diskport.Open(src.Path, opts.Image)
	if err != nil {
		return nil, err
	}
	return &Image{Image: di}, nil
}

// isOVA says whether the file at path is read as an OVA: a tar archive
// when no format is declared, or a declared OVA.
func isOVA(path string, o diskport.Options) bool {
	if len(o.Parents) > 0 {
		return false
	}
	if o.Format != "" {
		f, err := diskport.ParseFormat(o.Format)
		return err == nil && f == diskport.Tar
	}
	h, err := disk.OpenHostFile(path)
	if err != nil {
		return false // the open that follows says why
	}
	defer h.Close()
	f, err := diskport.Detect(h)
	return err == nil && f == diskport.Tar
}

// ovaOptions are the options an OVA is opened with.
func ovaOptions(opts ImageOptions) ova.Options {
	return ova.Options{NoVerifyManifest: opts.NoVerifyManifest, MaxVirtualSize: opts.Image.MaxVirtualSize}
}

// openOVA opens the OVA stored in s and its disk n.
func openOVA(s disk.Storage, n int, opts ImageOptions) (*Image, error) {
	a, err := ova.Open(s, ovaOptions(opts))
	if err != nil {
		return nil, err
	}
	return diskOf(a, n)
}

// diskOf opens disk n of a; on failure it closes a.
func diskOf(a *ova.Appliance, n int) (*Image, error) {
	d, err := a.OpenDisk(n)
	if err != nil {
		a.Close()
		return nil, err
	}
	return &Image{Image: d, app: a, disk: d, n: n}, nil
}

// Manifest returns the manifest the image is read from; nil for a file.
func (i *Image) Manifest() *Manifest { return i.m }

// Appliance returns the OVA the image is a disk of, and its number in
// boot order; nil for a disk image that is not in an OVA.
func (i *Image) Appliance() (*ova.Appliance, int) { return i.app, i.n }

// Sequential reports that the image must be read in ascending order, by
// one worker: a gzip-compressed OVA member, read as a stream.
func (i *Image) Sequential() bool { return i.disk != nil && i.disk.Sequential() }

// Disk opens another disk of the OVA the image is a disk of, sharing its
// appliance and parts (whose checks carry over: bytes hashed once for the
// whole file are not fetched again). Close it before i.
func (i *Image) Disk(n int) (*Image, error) {
	if i.app == nil {
		return nil, errorf(disk.ErrUnsupported, "the image is not a disk of an OVA")
	}
	d, err := i.app.OpenDisk(n)
	if err != nil {
		return nil, err
	}
	return &Image{Image: d, m: i.m, s: i.s, app: i.app, disk: d, n: n}, nil
}

// Fingerprint is the image's own resume fingerprint, when it has one (a
// gzip-compressed OVA member, which must not be sampled out of order):
// convert.Fingerprinter through the wrapper. "" means "sample me".
func (i *Image) Fingerprint() string {
	if f, ok := i.Image.(interface{ Fingerprint() string }); ok {
		return f.Fingerprint()
	}
	return ""
}

// Verify makes the checks that need every byte of the source, reading
// what the reads so far skipped: the OVA member's .mf checksum, then the
// manifest's per-part and whole-file SHA-256s. Its error says which
// checksum failed (the member, the part, or the whole file) and matches
// disk.ErrCorrupt on a mismatch. A file with no checksums passes.
func (i *Image) Verify() error {
	if i.disk != nil {
		if err := i.disk.Verify(); err != nil {
			return err
		}
	}
	if i.s != nil {
		return i.s.Verify()
	}
	return nil
}

// Close closes the image and, unless it came from [Image.Disk], the
// appliance and parts it read.
func (i *Image) Close() error {
	err := i.Image.Close()
	if !i.own {
		return err
	}
	if i.app != nil {
		if err2 := i.app.Close(); err == nil {
			err = err2
		}
	}
	if i.s != nil {
		if err2 := i.s.Close(); err == nil {
			err = err2
		}
	}
	return err
}
