//go:build linux && !portable

package vhd

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// copyChunk bounds one copy_file_range call, so a cancelled write stops
// soon and no call holds the file for long.
const copyChunk = 8 << 20

// copyFile copies n bytes of src at srcOff to dst at dstOff with
// copy_file_range. refused reports that the kernel cannot copy between
// the two files at all (rather than that the copy failed); done counts
// the bytes copied.
func copyFile(dst *os.File, dstOff int64, src *os.File, srcOff, n int64) (done int64, refused bool, err error) {
	for done < n {
		so, do := srcOff+done, dstOff+done
		k, err := unix.CopyFileRange(int(src.Fd()), &so, int(dst.Fd()), &do, int(min(n-done, copyChunk)), 0)
		if k > 0 {
			done += int64(k)
		}
		switch {
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue
		case err != nil:
			return done, isRefusal(err), err
		case k == 0:
			return done, false, nil // the source ended
		}
	}
	return done, false, nil
}

// isRefusal reports whether err says copy_file_range cannot copy between
// these files.
func isRefusal(err error) bool {
	for _, e := range []error{unix.EXDEV, unix.EINVAL, unix.EOPNOTSUPP, unix.ENOSYS, unix.EBADF, unix.ETXTBSY} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
