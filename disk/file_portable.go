//go:build !linux || portable

package disk

import (
	"os"
	"path/filepath"
)

// The portable side of [OpenFile] and [HostFile], for every OS (and for
// Linux built with the portable tag): no openat2, no fadvise.
// Block devices are refused; holes are found where the OS can seek to
// them (sparse_posix.go).

// blockDevices says this build reads block devices.
const blockDevices = false

// OpenFile opens the named file read-only without ever blocking on it: it
// stats the path first (Lstat when o.NoFollow) and refuses anything but a
// regular file with a [*FileKindError] before opening, so a FIFO, socket
// or device is never opened; it opens with O_NONBLOCK where the OS has it,
// in case the path was replaced in between, and checks that the file
// opened is a regular file and the one stat saw ([os.SameFile]). Block
// devices are refused even with o.BlockDevice: only the Linux build
// reads them. Every open of a file a user or a document names goes
// through OpenFile.
func OpenFile(path string, o FileOptions) (*os.File, error) {
	stat := os.Stat
	if o.NoFollow {
		stat = os.Lstat
	}
	return openChecked(path, o, stat, func(flag int) (*os.File, error) {
		return os.OpenFile(path, flag, 0)
	})
}

// OpenInRoot is [OpenFile] with o.NoFollow for name inside root, the
// portable build's counterpart of openat2 and [AdoptFile]: the Lstat and
// the open both go through root, so no step of either lookup leaves
// root's directory, whatever is renamed or linked meanwhile (os.Root
// refuses ".." and symbolic links that climb out of it), and a symbolic
// link as name's last component is refused. The path in errors and in
// the file's name is root's name joined with name.
func OpenInRoot(root *os.Root, name string, o FileOptions) (*os.File, error) {
	o.NoFollow = true
	path := filepath.Join(root.Name(), name)
	return openChecked(path, o, func(string) (os.FileInfo, error) { return root.Lstat(name) },
		func(flag int) (*os.File, error) { return root.OpenFile(name, flag, 0) })
}

// openChecked is [OpenFile] and [OpenInRoot]: stat (for path), check,
// open(flag), check again.
func openChecked(path string, o FileOptions, stat func(string) (os.FileInfo, error), open func(flag int) (*os.File, error)) (*os.File, error) {
	before, err := stat(path)
	if err != nil {
		return nil, err
	}
	if kind := kindOf(before.Mode(), o); kind != "" {
		return nil, &FileKindError{Path: path, Kind: kind, Want: o.want()}
	}
	f, err := open(os.O_RDONLY | openNonblock)
	if err != nil {
		return nil, err
	}
	// The readers expect a blocking file.
	if err := clearNonblock(f); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	after, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if kind := kindOf(after.Mode(), o); kind != "" {
		f.Close()
		return nil, &FileKindError{Path: path, Kind: kind, Want: o.want()}
	}
	if !os.SameFile(before, after) {
		f.Close()
		return nil, Errorf("disk", ErrUnsafe, "%s was replaced while it was opened", path)
	}
	return f, nil
}

// Advise does nothing: the portable build has no fadvise.
func (h *HostFile) Advise(off, n int64, advice int) {}

// NextData returns the next data run at or after off: with SEEK_DATA and
// SEEK_HOLE where the OS has them, else the rest of the file.
func (h *HostFile) NextData(off int64) (start, end int64, err error) {
	if off >= h.size {
		return h.size, h.size, nil
	}
	return nextData(h, off)
}

// kindOf names a file mode [OpenFile] refuses, or returns "" for one it
// accepts under o.
func kindOf(mode os.FileMode, o FileOptions) string {
	switch {
	case mode.IsRegular():
		return ""
	case mode&os.ModeDevice != 0 && mode&os.ModeCharDevice == 0:
		if o.BlockDevice && blockDevices {
			return ""
		}
		return "a block device"
	case mode&os.ModeNamedPipe != 0:
		return "a FIFO"
	case mode&os.ModeSocket != 0:
		return "a socket"
	case mode&os.ModeCharDevice != 0:
		return "a character device"
	case mode.IsDir():
		return "a directory"
	case mode&os.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "a special file"
}
