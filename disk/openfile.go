package disk

import (
	"io"
)

// FileOptions say which files [OpenFile] and [AdoptFile] accept.
type FileOptions struct {
	// BlockDevice accepts a block device besides a regular file. Only
	// the Linux build reads block devices; elsewhere they are refused.
	BlockDevice bool
	// NoFollow refuses a symbolic link as the last component of the path
	// (O_NOFOLLOW).
	NoFollow bool
}

// want names the files o accepts. Only Linux builds read block devices.
func (o FileOptions) want() string {
	if o.BlockDevice && blockDevices {
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
