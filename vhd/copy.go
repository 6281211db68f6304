package vhd

import (
	"fmt"
	"os"
	"sync/atomic"

	"github.com/diskport/diskport/disk"
)

// probePiece is how much of a run the zero test reads at a time when the
// run's bytes can be copied inside the kernel: the test stops at the
// first piece holding a non-zero byte, which for real data is the first,
// so the process reads a few KiB of each block instead of all of it.
const probePiece = 64 << 10

// A kernelCopy copies runs stored verbatim in a host file (a raw image,
// say) into the output file with copy_file_range, so their bytes never
// pass through the process: one copy in the kernel instead of two, and
// on file systems that share extents none at all.
type kernelCopy struct {
	dst     *os.File    // nil: the output is not a file; nothing is copied
	refused atomic.Bool // the kernel refused once: copy no more
}

// newKernelCopy returns a kernelCopy into w when w is a regular file.
func newKernelCopy(w any) *kernelCopy {
	k := &kernelCopy{}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			k.dst = f
		}
	}
	return k
}

// usable reports whether t's bytes may be copied.
func (k *kernelCopy) usable(t *task) bool {
	return k.dst != nil && t.file != nil && t.hi > t.lo && !k.refused.Load()
}

// copy copies t's bytes [off+lo, off+hi) to at in the output. It returns
// false, having copied nothing, when the kernel refuses to copy between
// the two files (another file system, a special file): the caller then
// writes the bytes itself.
func (k *kernelCopy) copy(t *task, at int64) (bool, error) {
	n := t.hi - t.lo
	done, refused, err := copyFile(k.dst, at, t.file, t.fileOff, n)
	if refused && done == 0 {
		k.refused.Store(true)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("vhd: copying source bytes %d-%d (%s at byte %d) to byte %d of %s: %w", t.off+t.lo+done, t.off+t.hi, t.file.Name(), t.fileOff+done, at+done, k.dst.Name(), err)
	}
	if done < n {
		return false, fmt.Errorf("vhd: copying source bytes %d-%d from %s: the file ends %d bytes early", t.off+t.lo, t.off+t.hi, t.file.Name(), n-done)
	}
	return true, nil
}

// probeZero reports whether the n = len(buf) bytes of src at off are all
// zeros, reading them probePiece bytes at a time into buf and stopping at
// the first piece that is not.
func probeZero(src disk.Image, buf []byte, off int64) (bool, error) {
	for i := 0; i < len(buf); i += probePiece {
		p := buf[i:min(i+probePiece, len(buf))]
		if err := readSource(src, p, off+int64(i)); err != nil {
			return false, err
		}
		if !disk.IsZero(p) {
			return false, nil
		}
	}
	return true, nil
}
