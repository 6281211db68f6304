package diskport

import (
	"errors"
	"io"
	"strings"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/raw"
)

// Options say how an image may be opened.
type Options struct {
	// Format is the declared format ("RAW", "VMDK", "VHD", any case; "" to
	// detect it). The image is parsed as this format only.
	Format string
	// TrustFormat reads the image as the declared Format even when its
	// bytes look like another format. Without it such a mismatch is an
	// ErrFormatMismatch error.
	TrustFormat bool
	// Parents lists the parent images of a delta image (a VMDK delta link
	// or a differencing VHD), nearest parent first. Parents are never
	// opened unless listed here; each is checked against its child's
	// parent id.
	Parents []string
	// ExtentFiles maps the extent file names a VMDK text descriptor may
	// reference to paths. When nil, Open resolves bare names inside the
	// descriptor's directory only (no slashes, no "..", no symbolic links,
	// regular files only); OpenStorage refuses any reference.
	ExtentFiles map[string]string
	// MaxVirtualSize caps the virtual size of a sparse image (0: the
	// readers' defaults, 64 TiB for VMDK, 2040 GiB for VHD).
	MaxVirtualSize int64
}

// Open opens the image at path (a file or block device) and returns it;
// closing the image closes the files Open opened.
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

// formatOf returns the format to parse s as: the declared one, checked
// against the bytes, or the detected one.
func formatOf(s disk.Storage, opts Options) (Format, error) {
	found, err := Detect(s)
	if err != nil {
		return "", err
	}
	if opts.Format == "" {
		return found, nil
	}
	declared, err := ParseFormat(opts.Format)
	if err != nil {
		return "", err
	}
	if found != declared && !opts.TrustFormat {
		return "", mismatch(declared, found, s.Name())
	}
	return declared, nil
}

// open parses s; when path is set, s was opened from that path and the
// returned image owns s.
func open(s disk.Storage, path string, opts Options) (disk.Image, error) {
	f, err := formatOf(s, opts)
	if err != nil {
		return nil, err
	}
	switch f {
	case Raw:
		if len(opts.Parents) > 0 {
			return nil, disk.Errorf("raw", disk.ErrUnsupported, "a RAW image has no parent (%d parents given)", len(opts.Parents))
		}
		img, err := raw.Open(s)
		if err != nil {
			return nil, err
		}
		return owned(img, s, path), nil
	default:
		return openFormat(f, s, path, opts)
	}
}

// owned wraps img so that closing it closes s when Open opened s.
func owned(img disk.Image, s disk.Storage, path string) disk.Image {
	if path == "" {
		return img
	}
	return &owner{img, s}
}

type owner struct {
	disk.Image
	s disk.Storage
}

func (o *owner) Close() error {
	err := o.Image.Close()
	if c, ok := o.s.(io.Closer); ok {
		err = errors.Join(err, c.Close())
	}
	return err
}

func unsupported(f Format) error {
	return disk.Errorf(string(f), disk.ErrUnsupported, "%s images are not supported yet", strings.ToUpper(string(f)))
}
