//go:build !linux && !darwin && !freebsd

package disk

import (
	"io/fs"
	"os"
)

// openNonblock is 0: Windows has no FIFOs in the file system for an open
// to block on, and OpenFile's stat refuses anything but a regular file.
const openNonblock = 0

// clearNonblock has nothing to clear.
func clearNonblock(*os.File) error { return nil }

// nextData reports the rest of the file as data: without SEEK_DATA the
// holes cannot be found cheaply, and the converters skip zero blocks in
// data runs anyway, so the output stays sparse.
func nextData(h *HostFile, off int64) (start, end int64, err error) {
	return off, h.size, nil
}

// AllocatedBytes reports that the allocation of fi's file is unknown.
func AllocatedBytes(fs.FileInfo) (int64, bool) { return 0, false }
