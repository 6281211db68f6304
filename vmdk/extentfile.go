package vmdk

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/diskport/diskport/disk"
	"golang.org/x/sys/unix"
)

// DirExtents returns an [Options.OpenExtent] that resolves extent file
// names inside dir and nowhere else: openat2 with RESOLVE_BENEATH,
// RESOLVE_NO_SYMLINKS and RESOLVE_NO_MAGICLINKS (no "..", no absolute
// paths, no symbolic or magic links on the way), O_NOFOLLOW and
// O_NONBLOCK, regular files only ([disk.AdoptFile]): a FIFO, socket or
// device named by a descriptor is refused with disk.ErrUnsafe without
// blocking.
func DirExtents(dir string) func(name string) (disk.Storage, error) {
	return func(name string) (disk.Storage, error) {
		f, err := openBeneath(dir, name)
		if err != nil {
			return nil, err
		}
		return extentStorage(f)
	}
}

// MapExtents returns an [Options.OpenExtent] that resolves extent file
// names through files (name to path) only, regular files only, opened
// with [disk.OpenFile]; a name not in files is refused with
// disk.ErrUnsafe.
func MapExtents(files map[string]string) func(name string) (disk.Storage, error) {
	return func(name string) (disk.Storage, error) {
		p, ok := files[name]
		if !ok {
			return nil, disk.Errorf(formatName, disk.ErrUnsafe, "extent file %q is not among the files supplied", name)
		}
		f, err := disk.OpenFile(p, disk.FileOptions{})
		if err != nil {
			return nil, err
		}
		return extentStorage(f)
	}
}

// openBeneath opens name inside dir and nowhere else.
func openBeneath(dir, name string) (*os.File, error) {
	d, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(d)
	path := filepath.Join(dir, name)
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	var fd int
	for {
		fd, err = unix.Openat2(d, name, how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) {
			return nil, disk.Errorf(formatName, disk.ErrUnsafe, "extent file %q escapes the descriptor's directory %s or is a symbolic link", name, dir)
		}
		return nil, disk.OpenError(path, err, disk.FileOptions{})
	}
	return disk.AdoptFile(fd, path, disk.FileOptions{})
}

// extentStorage wraps an opened extent file.
func extentStorage(f *os.File) (disk.Storage, error) {
	h, err := disk.NewHostFile(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return h, nil
}
