//go:build linux && !portable

package volume

import (
	"errors"
	"fmt"
	"runtime/debug"

	"golang.org/x/sys/unix"

	"github.com/diskport/diskport/disk"
)

// copyChunk is the most one copy_file_range call is asked to copy, so a
// cancelled conversion stops within a few milliseconds and the other
// workers get the file's lock between calls.
const copyChunk = 8 << 20

// CopyFrom fills [off, off+n), a range not written since Create (or made
// zero by Zero since), with the n bytes of src at srcOff, copied inside the
// kernel with copy_file_range: the bytes never pass through this process,
// which saves the copy into and out of a buffer that Fill costs, and on a
// file system that shares extents (XFS, Btrfs) the kernel may share them
// instead of copying. Zero blocks are skipped as Fill skips them, found by
// scanning src's mapping, so the volume is as sparse as Fill would make it.
//
// It returns how many bytes it filled. Fewer than n with a nil error means
// the kernel cannot copy between these files (another file system, a
// block device, no mapping of src): the caller writes the rest with Fill.
// Once the kernel has refused, later calls return 0 at once.
func (w *Writer) CopyFrom(src disk.OSStorage, srcOff, off, n int64) (done int64, err error) {
	if off < 0 || n < 0 || off+n > w.size {
		return 0, fmt.Errorf("volume: copying %d bytes at %d past the end of %s (%d bytes)", n, off, w.dst, w.size)
	}
	if w.noCopy.Load() || w.device || !w.fresh {
		return 0, nil
	}
	b, ok := src.Bytes(srcOff, n)
	if !ok {
		return 0, nil
	}
	// The zero scan reads src's mapping: a source truncated under it
	// faults, which must be an error, not a crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if _, fault := r.(interface{ Addr() uintptr }); !fault {
				panic(r)
			}
			err = fmt.Errorf("volume: reading %d bytes of %s at %d: the file shrank while it was being copied", n, src.Name(), srcOff)
		}
	}()
	for done < n {
		done += int64(zeroPrefix(b[done:], off+done, true))
		d := int64(zeroPrefix(b[done:], off+done, false))
		for d > 0 {
			k, err := w.copyRange(src, srcOff+done, off+done, min(d, copyChunk))
			done, d = done+k, d-k
			if err != nil || k == 0 {
				return done, err
			}
		}
	}
	return done, nil
}

// copyRange copies up to n bytes with copy_file_range, under the writers'
// lock. It returns 0 and no error when the kernel refuses the copy.
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
			return done, fmt.Errorf("volume: copying %s at %d into %s: the source ends %d bytes early", src.Name(), srcOff+done, w.dst, n-done)
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
