//go:build linux && !portable

package volume

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/diskport/diskport/disk"
)

// copyRange copies n bytes of src at srcOff to the volume at off with
// copy_file_range, under the writers' lock, and returns how many it
// copied. It returns 0 and no error when the kernel refuses to copy
// between these files at all (another file system), and from then on
// CopyFrom writes from its buffer.
func (w *Writer) copyRange(src disk.OSStorage, srcOff, off, n int64) (int64, error) {
	w.writing.Lock()
	defer w.writing.Unlock()
	done := int64(0)
	for done < n {
		so, do := srcOff+done, off+done
		k, err := unix.CopyFileRange(int(src.File().Fd()), &so, int(w.f.Fd()), &do, int(n-done), 0)
		if k > 0 {
			done += int64(k)
			w.written.Add(int64(k))
		}
		switch {
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue
		case err != nil && done == 0 && refused(err):
			w.noCopy.Store(true)
			return 0, nil
		case err != nil:
			return done, fmt.Errorf("volume: copying %s at %d into %s at %d: %w", src.Name(), srcOff+done, w.dst, off+done, err)
		case k == 0:
			return done, fmt.Errorf("volume: copying %s at %d into %s: the source ends %d bytes early (it shrank while it was being copied)", src.Name(), srcOff+done, w.dst, n-done)
		}
	}
	return done, nil
}

// refused reports whether err says the kernel cannot copy between the two
// files at all (rather than that the copy failed).
func refused(err error) bool {
	for _, e := range []error{unix.EXDEV, unix.EINVAL, unix.EOPNOTSUPP, unix.ENOSYS, unix.EBADF, unix.ETXTBSY} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
