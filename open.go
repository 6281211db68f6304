package diskport

import (
	"errors"
	"fmt"
	"io"

	"github.com/diskport/diskport/disk"
)

// Options say how an image may be opened.
type Options struct {
	// Format is the declared format, any name [ParseFormat] takes ("RAW",
	// "vmdk", "vpc", "VHDX", ...; "" to detect it). The image is parsed as this
	// format only.
	Format string
	// TrustFormat reads the image as the declared Format even when its
	// bytes look like another format. Without it such a mismatch is an
	// ErrFormatMismatch error.
	TrustFormat bool
	// Parents lists the parent images of a delta image (a VMDK delta link
	// or a differencing VHD or VHDX), nearest parent first. Parents are never
	// opened unless listed here; each is checked against its child's
	// parent id.
	Parents []string
	// ExtentFiles maps the extent file names a VMDK text descriptor may
	// reference to paths. When nil, Open resolves bare names inside the
	// descriptor's directory only (no slashes, no "..", no symbolic links,
	// regular files only); OpenStorage refuses any reference.
	ExtentFiles map[string]string
	// SingleFile refuses an image whose data lives in other files (a VMDK
	// text descriptor) with ErrUnsupported: an import manifest carries one
	// file.
	SingleFile bool
	// MaxVirtualSize caps the virtual size of a sparse image (0: the
	// readers' defaults: 64 TiB for VMDK and VHDX, 2040 GiB for VHD).
	MaxVirtualSize int64
}

// Open opens the VMDK, VHD, VHDX or RAW image at path (a regular file or
// block device, opened without blocking: a FIFO, socket or character
// device is refused with disk.ErrUnsafe) and returns it; closing the
// image closes the files Open opened. An OVA appliance's disks are opened
// by package ova.
func Open(path string, opts Options) (disk.Image, error) {
	h, err := disk.OpenHostFile(path)
	if err != nil {
		return nil, err
	}
	img, err := open(h, path, opts)
	if err != nil {
		h.Close()
		return nil, err
	}
	return img, nil
}

// OpenStorage opens the image stored in s (parts of a manifest, memory).
// A VMDK descriptor read this way may reference other files only through
// opts.ExtentFiles. Closing the image does not close s.
func OpenStorage(s disk.Storage, opts Options) (disk.Image, error) {
	return open(s, "", opts)
}

// FormatOf returns the format [Open] and [OpenStorage] parse s as: the
// detected one ([Detect]) when opts.Format is "", else the declared one,
// which is authoritative: bytes of another format are a [*MismatchError]
// (disk.ErrFormatMismatch) unless opts.TrustFormat. A format that is
// recognised but not read is disk.ErrUnsupported. Writers of manifests
// apply the same rule through FormatOf. A declared RAW reads an archive or
// a compressed stream (a tar, gzip, ...) as RAW: their signatures are too
// short to contradict the caller.
func FormatOf(s disk.Storage, opts Options) (Format, error) {
	var declared Format
	if opts.Format != "" {
		f, err := ParseFormat(opts.Format)
		if err != nil {
			return "", err
		}
		declared = f
	}
	found, err := Detect(s)
	var de *disk.Error
	switch {
	case err != nil && declared != "" && opts.TrustFormat && errors.As(err, &de):
		return declared, nil // the caller vouches for the format
	case err != nil:
		return "", err
	case declared == "":
		if !found.Readable() {
			return "", unsupported(found, s.Name())
		}
		return found, nil
	case declared == Raw && entry(found).container:
		return Raw, nil // an archive or compressed stream the caller says is a raw disk
	case found != declared && !opts.TrustFormat:
		return "", &MismatchError{Name: s.Name(), Declared: declared, Found: found}
	}
	return declared, nil
}

// open parses s; when path is set, s was opened from that path and the
// returned image owns s. The parents opts lists are opened first
// (farthest first), checked to be of the child's format, and each handed
// to its child.
func open(s disk.Storage, path string, opts Options) (disk.Image, error) {
	f, err := FormatOf(s, opts)
	if err != nil {
		return nil, err
	}
	e := entry(f)
	if len(opts.Parents) > 0 && !e.parents {
		return nil, disk.Errorf(string(f), disk.ErrUnsafe, "%s: %s has no parent image, but %d were given", s.Name(), describe(f), len(opts.Parents))
	}
	var (
		parent  disk.Image
		closers []io.Closer // what the returned image closes, nearest last
	)
	fail := func(err error) (disk.Image, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i].Close()
		}
		return nil, err
	}
	for i := len(opts.Parents) - 1; i >= 0; i-- {
		p := opts.Parents[i]
		h, err := disk.OpenHostFile(p)
		if err != nil {
			return fail(fmt.Errorf("parent %s: %w", p, err))
		}
		closers = append(closers, h)
		pf, err := Detect(h)
		if err != nil {
			return fail(err)
		}
		if pf != f {
			return fail(disk.Errorf(string(f), disk.ErrFormatMismatch, "parent %s is %s, not %s like its child", p, describe(pf), describe(f)))
		}
		img, err := e.open(h, p, opts, parent)
		if err != nil {
			return fail(fmt.Errorf("parent %s: %w", p, err))
		}
		closers = append(closers, img)
		parent = img
	}
	img, err := e.open(s, path, opts, parent)
	if err != nil {
		return fail(err)
	}
	if path != "" {
		if c, ok := s.(io.Closer); ok {
			closers = append([]io.Closer{c}, closers...)
		}
	}
	if len(closers) == 0 {
		return img, nil
	}
	return &chain{Image: img, closers: closers}, nil
}

// chain is an image with the files and parents it closes.
type chain struct {
	disk.Image
	closers []io.Closer
}

// Close closes the image, then its parents nearest first, then the files.
func (c *chain) Close() error {
	err := c.Image.Close()
	for i := len(c.closers) - 1; i >= 0; i-- {
		err = errors.Join(err, c.closers[i].Close())
	}
	return err
}
