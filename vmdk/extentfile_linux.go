//go:build linux && !portable

package vmdk

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/diskport/diskport/disk"
	"golang.org/x/sys/unix"
)

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
