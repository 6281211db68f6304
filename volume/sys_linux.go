//go:build linux && !portable

package volume

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The Linux side of the writer: block devices, hole punching and
// fdatasync. copy_linux.go (copy_file_range) and writeback.go (sync_file_range)
// are Linux-only too.

// blockDevices says this build writes block devices.
const blockDevices = true

// punchesHoles says Zero leaves holes in a file rather than writing zeros.
const punchesHoles = true

// zeroRange asks the kernel to zero [off, off+n): a hole in a file
// (fallocate PUNCH_HOLE), BLKZEROOUT on a device. An error means the
// caller writes zeros.
func (w *Writer) zeroRange(off, n int64) error {
	if w.device {
		r := [2]uint64{uint64(off), uint64(n)}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, w.f.Fd(), unix.BLKZEROOUT, uintptr(unsafe.Pointer(&r[0]))); errno != 0 {
			return errno
		}
		return nil
	}
	return unix.Fallocate(int(w.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
}

// datasync flushes f's data (not its times) to stable storage.
func datasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

// SetSparse does nothing on Linux: a file is sparse wherever it is not
// written.
func SetSparse(*os.File) error { return nil }
