package diskport

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/vhd"
	"github.com/diskport/diskport/vmdk"
	"golang.org/x/sys/unix"
)

// openFormat opens the non-RAW formats: s parsed as f, with the parents
// opts lists opened first (farthest first) and each handed to its child.
func openFormat(f Format, s disk.Storage, path string, opts Options) (disk.Image, error) {
	if f != VMDK && f != VHD {
		return nil, unsupported(f)
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
			return fail(disk.Errorf(string(f), disk.ErrFormatMismatch, "parent %s is %s, not %s like its child", p, describe(pf), f))
		}
		img, err := openOne(f, h, p, opts, parent)
		if err != nil {
			return fail(fmt.Errorf("parent %s: %w", p, err))
		}
		closers = append(closers, img)
		parent = img
	}
	img, err := openOne(f, s, path, opts, parent)
	if err != nil {
		return fail(err)
	}
	if path != "" {
		if c, ok := s.(io.Closer); ok {
			closers = append([]io.Closer{c}, closers...)
		}
	}
	return &chain{Image: img, closers: closers}, nil
}

// openOne opens one image of a chain, with its parent already open.
func openOne(f Format, s disk.Storage, path string, opts Options, parent disk.Image) (disk.Image, error) {
	switch f {
	case VHD:
		img, err := vhd.Open(s, vhd.Options{Parent: parent, MaxVirtualSize: opts.MaxVirtualSize})
		if err != nil {
			return nil, err
		}
		return img, nil
	default:
		vo := vmdk.Options{MaxVirtualSize: opts.MaxVirtualSize, OpenExtent: extentOpener(path, opts), Parent: parent}
		img, err := vmdk.Open(s, vo)
		if err != nil {
			return nil, err
		}
		return img, nil
	}
}

// extentOpener resolves the extent files a VMDK descriptor names: through
// opts.ExtentFiles when given, else inside the descriptor's directory.
func extentOpener(path string, opts Options) func(string) (disk.Storage, error) {
	if opts.ExtentFiles != nil {
		return func(name string) (disk.Storage, error) {
			p, ok := opts.ExtentFiles[name]
			if !ok {
				return nil, disk.Errorf("vmdk", disk.ErrUnsafe, "extent file %q is not among the files supplied", name)
			}
			return openRegular(p, func() (*os.File, error) { return os.Open(p) })
		}
	}
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	return func(name string) (disk.Storage, error) {
		return openRegular(filepath.Join(dir, name), func() (*os.File, error) { return openBeneath(dir, name) })
	}
}

// openBeneath opens name inside dir and nowhere else: no "..", no
// absolute paths, no symbolic or magic links on the way.
func openBeneath(dir, name string) (*os.File, error) {
	d, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(d)
	fd, err := unix.Openat2(d, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) {
			return nil, disk.Errorf("vmdk", disk.ErrUnsafe, "extent file %q escapes the descriptor's directory %s or is a symbolic link", name, dir)
		}
		return nil, &os.PathError{Op: "open", Path: filepath.Join(dir, name), Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, name)), nil
}

// openRegular opens an extent file and refuses anything but a regular file.
func openRegular(name string, open func() (*os.File, error)) (disk.Storage, error) {
	f, err := open()
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, disk.Errorf("vmdk", disk.ErrUnsafe, "extent file %s is not a regular file (%s)", name, st.Mode().Type())
	}
	h, err := disk.NewHostFile(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return h, nil
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
