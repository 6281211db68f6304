package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// A HostFile is a read-only host file or block device. It implements
// [OSStorage] and [SparseStorage].
//
// Reads use pread: on the machines diskport was measured on, copying from a
// memory mapping cost a page fault per page on first touch and ran several
// times slower than pread for a sequential conversion (bench/RESULTS.md).
// [HostFile.Bytes] maps the file on first use, for callers that want the
// bytes in place. A mapped file that another process truncates while it is
// read faults the program (SIGBUS); diskport reads images that are not being
// written.
type HostFile struct {
	f      *os.File
	name   string
	size   int64
	device bool

	mapOnce sync.Once
	data    []byte // the mapping; nil until Bytes maps it, or when it cannot
	close   sync.Once
}

// OpenHostFile opens path read-only with [OpenFile]. Regular files and
// block devices are accepted; anything else (directories, FIFOs, sockets,
// character devices) is refused with a [*FileKindError] without blocking.
// The size of a block device is read from the device.
func OpenHostFile(path string) (*HostFile, error) {
	f, err := OpenFile(path, FileOptions{BlockDevice: true})
	if err != nil {
		return nil, err
	}
	h, err := NewHostFile(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return h, nil
}

// NewHostFile wraps an open file; the HostFile owns it from then on.
func NewHostFile(f *os.File) (*HostFile, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	h := &HostFile{f: f, name: f.Name()}
	switch mode := st.Mode(); {
	case mode.IsRegular():
		h.size = st.Size()
	case mode&os.ModeDevice != 0 && mode&os.ModeCharDevice == 0:
		h.device = true
		end, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, fmt.Errorf("%s: size of block device: %w", h.name, err)
		}
		h.size = end
	default:
		return nil, &FileKindError{Path: h.name, Kind: "a " + mode.Type().String() + " file", Want: "a regular file or block device"}
	}
	return h, nil
}

// Name returns the path the file was opened with.
func (h *HostFile) Name() string { return h.name }

// Size returns the file's or device's size in bytes.
func (h *HostFile) Size() int64 { return h.size }

// File returns the open file.
func (h *HostFile) File() *os.File { return h.f }

// IsDevice reports whether the file is a block device.
func (h *HostFile) IsDevice() bool { return h.device }

// ReadAt reads with pread. It is safe for concurrent use.
func (h *HostFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", h.name, off)
	}
	return h.f.ReadAt(p, off)
}

// Bytes returns the bytes [off, off+n) of a read-only mapping of the file,
// mapping it on first use; ok is false when the file cannot be mapped or
// the range is outside it.
func (h *HostFile) Bytes(off, n int64) ([]byte, bool) {
	h.mapOnce.Do(func() {
		if h.size > 0 && int64(int(h.size)) == h.size {
			if b, err := unix.Mmap(int(h.f.Fd()), 0, int(h.size), unix.PROT_READ, unix.MAP_SHARED); err == nil {
				h.data = b
			}
		}
	})
	if h.data == nil || off < 0 || n < 0 || off > h.size || n > h.size-off {
		return nil, false
	}
	return h.data[off : off+n : off+n], true
}

// Advise tells the kernel how the byte range will be read
// (unix.FADV_SEQUENTIAL, unix.FADV_WILLNEED, ...). It is a hint; errors are
// ignored.
func (h *HostFile) Advise(off, n int64, advice int) {
	_ = unix.Fadvise(int(h.f.Fd()), off, n, advice)
}

// NextData returns the next data run at or after off with SEEK_DATA and
// SEEK_HOLE. Block devices and file systems without them report the rest of
// the file as data.
func (h *HostFile) NextData(off int64) (start, end int64, err error) {
	if off >= h.size {
		return h.size, h.size, nil
	}
	if h.device {
		return off, h.size, nil
	}
	fd := int(h.f.Fd())
	start, err = unix.Seek(fd, off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO):
		return h.size, h.size, nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EOPNOTSUPP):
		return off, h.size, nil
	case err != nil:
		return 0, 0, fmt.Errorf("%s: SEEK_DATA at %d: %w", h.name, off, err)
	}
	if start >= h.size {
		return h.size, h.size, nil
	}
	end, err = unix.Seek(fd, start, unix.SEEK_HOLE)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: SEEK_HOLE at %d: %w", h.name, start, err)
	}
	return start, min(end, h.size), nil
}

// Close unmaps and closes the file. It is safe to call more than once.
func (h *HostFile) Close() error {
	var err error
	h.close.Do(func() {
		h.mapOnce.Do(func() {}) // no mapping after Close
		if h.data != nil {
			err = unix.Munmap(h.data)
			h.data = nil
		}
		if cerr := h.f.Close(); err == nil {
			err = cerr
		}
	})
	return err
}
