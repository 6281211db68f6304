//go:build linux && !portable

package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// The fast side of [HostFile]: fadvise, and holes found with SEEK_DATA and
// SEEK_HOLE.

// Advise tells the kernel how the byte range will be read
// ([AdviseSequential], [AdviseWillNeed]). It is a hint; errors are
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

// AllocatedBytes returns the space fi's file occupies on disk (st_blocks),
// and whether the file system reports it.
func AllocatedBytes(fi fs.FileInfo) (int64, bool) {
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return sys.Blocks * 512, true
}
