//go:build windows

package volume

import (
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// NTFS allocates a file written past its end, and fills the gap with
// zeros, unless the file is marked sparse; marked, the zero runs Fill
// skips stay unallocated and Zero can deallocate a range.

// punchesHoles says Zero leaves holes in a file rather than writing zeros.
const punchesHoles = true

// SetSparse marks f, an image or volume file just created, sparse
// (FSCTL_SET_SPARSE), so the ranges left unwritten take no space. A file
// system without sparse files (FAT) refuses, and the file is written
// whole.
func SetSparse(f *os.File) error {
	var n uint32
	return windows.DeviceIoControl(windows.Handle(f.Fd()), windows.FSCTL_SET_SPARSE, nil, 0, nil, 0, &n, nil)
}

// punchHole makes [off, off+n) of f read as zeros with FSCTL_SET_ZERO_DATA,
// which deallocates the range of a sparse file (and writes zeros into one
// that is not). An error means the caller writes zeros.
func punchHole(f *os.File, off, n int64) error {
	// FILE_ZERO_DATA_INFORMATION
	r := [2]int64{off, off + n}
	var done uint32
	return windows.DeviceIoControl(windows.Handle(f.Fd()), windows.FSCTL_SET_ZERO_DATA,
		(*byte)(unsafe.Pointer(&r[0])), uint32(unsafe.Sizeof(r)), nil, 0, &done, nil)
}
