//go:build linux && !portable

package disk

import (
	"os"

	"golang.org/x/sys/unix"
)

// blockDevices says this build reads block devices.
const blockDevices = true

// OpenFile opens the named file read-only, and never blocks doing so: it
// opens with O_NONBLOCK (so a FIFO without a writer returns at once),
// checks the open file with fstat, refuses anything but a regular file
// (or a block device when o.BlockDevice) with a [*FileKindError], and
// then clears O_NONBLOCK. Every open of a file a user or a document
// names goes through OpenFile or [AdoptFile].
func OpenFile(path string, o FileOptions) (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC
	if o.NoFollow {
		flags |= unix.O_NOFOLLOW
	}
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, flags, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, OpenError(path, err, o)
	}
	return AdoptFile(fd, path, o)
}

// AdoptFile takes fd, a descriptor just opened read-only with O_NONBLOCK
// (by openat2, say), checks it as [OpenFile] does and returns it as an
// *os.File named path with O_NONBLOCK cleared. It closes fd on refusal.
func AdoptFile(fd int, path string, o FileOptions) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	kind := ""
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFBLK:
		if !o.BlockDevice {
			kind = "a block device"
		}
	case unix.S_IFIFO:
		kind = "a FIFO"
	case unix.S_IFSOCK:
		kind = "a socket"
	case unix.S_IFCHR:
		kind = "a character device"
	case unix.S_IFDIR:
		kind = "a directory"
	default:
		kind = "a special file"
	}
	if kind != "" {
		unix.Close(fd)
		return nil, &FileKindError{Path: path, Kind: kind, Want: o.want()}
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// OpenError returns the error for a failed open of path (by open or
// openat2 with the flags [OpenFile] uses): an *os.PathError, except that
// a unix socket, which Linux refuses with ENXIO, is a [*FileKindError].
func OpenError(path string, err error, o FileOptions) error {
	var st unix.Stat_t
	if err == unix.ENXIO && unix.Stat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
		return &FileKindError{Path: path, Kind: "a socket", Want: o.want()}
	}
	return &os.PathError{Op: "open", Path: path, Err: err}
}
