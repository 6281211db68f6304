package disk

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// FileOptions say which files [OpenFile] and [AdoptFile] accept.
type FileOptions struct {
	// BlockDevice accepts a block device besides a regular file.
	BlockDevice bool
	// NoFollow refuses a symbolic link as the last component of the path
	// (O_NOFOLLOW).
	NoFollow bool
}

// want names the files o accepts.
func (o FileOptions) want() string {
	if o.BlockDevice {
		return "a regular file or block device"
	}
	return "a regular file"
}

// A FileKindError is the error for a named file of a kind the opener
// refuses: a FIFO, socket, character device, directory, or a block device
// where only regular files are taken. It matches [ErrUnsafe]: such a file
// can block a reader forever or stand for something it is not.
type FileKindError struct {
	Path string // the path as given
	Kind string // "a FIFO", "a socket", ...
	Want string // "a regular file" or "a regular file or block device"
}

// Error returns "PATH is KIND, not WANT".
func (e *FileKindError) Error() string {
	return e.Path + " is " + e.Kind + ", not " + e.Want
}

// Unwrap returns ErrUnsafe.
func (e *FileKindError) Unwrap() error { return ErrUnsafe }

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

// ReadSmallFile reads the whole named regular file, opened with
// [OpenFile], refusing one over limit bytes (keys, manifests).
func ReadSmallFile(path string, limit int64) ([]byte, error) {
	f, err := OpenFile(path, FileOptions{})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, Errorf("disk", ErrTooLarge, "%s is over the %d-byte limit", path, limit)
	}
	return b, nil
}
