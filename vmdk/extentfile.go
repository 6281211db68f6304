package vmdk

import (
	"os"

	"github.com/diskport/diskport/disk"
)

// DirExtents returns an [Options.OpenExtent] that resolves extent file
// names inside dir and nowhere else: no ".." out of dir, no absolute
// paths, no symbolic links on the way, regular files only. A FIFO, socket
// or device named by a descriptor is refused with disk.ErrUnsafe without
// blocking. On Linux this is openat2 with RESOLVE_BENEATH,
// RESOLVE_NO_SYMLINKS and RESOLVE_NO_MAGICLINKS (extentfile_linux.go);
// elsewhere, and with the portable build tag, the same refusals are made
// in Go (extentfile_portable.go).
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

// extentStorage wraps an opened extent file.
func extentStorage(f *os.File) (disk.Storage, error) {
	h, err := disk.NewHostFile(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return h, nil
}
