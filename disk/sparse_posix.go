//go:build (linux && portable) || darwin || freebsd

package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// openNonblock keeps an open of a FIFO swapped in after the stat from
// blocking.
const openNonblock = syscall.O_NONBLOCK

// clearNonblock clears the O_NONBLOCK the file was opened with. (Fd alone
// does not when the runtime did not take the file into its poller.)
func clearNonblock(f *os.File) error { return syscall.SetNonblock(int(f.Fd()), false) }

// nextData finds the data run at or after off (< h.size) with SEEK_DATA
// and SEEK_HOLE, which Linux, macOS (APFS) and FreeBSD (ZFS, UFS) have; a
// file system without them reports the rest of the file as data.
func nextData(h *HostFile, off int64) (start, end int64, err error) {
	fd := int(h.f.Fd())
	start, err = unix.Seek(fd, off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO):
		return h.size, h.size, nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOTSUP):
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
