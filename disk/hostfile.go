package disk

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// A HostFile is a read-only host file or block device. It implements
// [OSStorage] and [SparseStorage].
//
// Reads use pread, and the file is never mapped: a mapping costs a page
// fault per few pages on first touch (per page where the page cache holds
// small folios, as it does for a file just written), which measured dearer
// than pread's copy into a buffer (bench/RESULTS.md), and a mapped file that
// another process truncates faults the program.
type HostFile struct {
	f      *os.File
	name   string
	size   int64
	device bool

	close sync.Once
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

// Advice for [HostFile.Advise], numbered as posix_fadvise numbers it.
const (
	AdviseSequential = 2 // POSIX_FADV_SEQUENTIAL: read once, in order
	AdviseWillNeed   = 3 // POSIX_FADV_WILLNEED: read soon
)

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

// Close closes the file. It is safe to call more than once.
func (h *HostFile) Close() error {
	var err error
	h.close.Do(func() { err = h.f.Close() })
	return err
}
