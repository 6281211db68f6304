package volume

import (
	"fmt"
	"io"

	"github.com/diskport/diskport/disk"
)

// CopyFrom reads len(b) bytes of src at srcOff into b and fills [off,
// off+len(b)), a range not written since Create (or made zero by Zero
// since), with them, as Fill(b, off) would: zero blocks are skipped where
// the volume's unwritten space reads as zeros. b holds the bytes read
// when it returns.
//
// The runs of data blocks go into a file volume by copy_file_range from
// src, on Linux: the kernel copies them from src's page cache to the
// volume's, which costs less system time than writing them from b (a write
// from user memory), and on a file system that shares extents (XFS, Btrfs)
// is no copy at all. So the bytes are copied once by read and once by the
// kernel, and never mapped (the faults of a mapping cost more than the
// read's copy). Where the kernel refuses (another file system, a block
// device), and on other systems, they are written from b.
func (w *Writer) CopyFrom(src disk.OSStorage, srcOff int64, b []byte, off int64) error {
	n := int64(len(b))
	if off < 0 || off+n > w.size {
		return fmt.Errorf("volume: copying %d bytes at %d past the end of %s (%d bytes)", n, off, w.dst, w.size)
	}
	if err := readSource(src, b, srcOff); err != nil {
		return err
	}
	if !w.fresh || w.device || w.noCopy.Load() {
		return w.Fill(b, off)
	}
	for p := int64(0); p < n; {
		p += int64(zeroPrefix(b[p:], off+p, true))
		d := int64(zeroPrefix(b[p:], off+p, false))
		if d > 0 {
			if err := w.copyRun(src, srcOff+p, b[p:p+d], off+p); err != nil {
				return err
			}
		}
		p += d
	}
	return nil
}

// copyRun puts the data run b, read from src at srcOff, into the volume
// at off: copied by the kernel where it can, the rest written from b.
func (w *Writer) copyRun(src disk.OSStorage, srcOff int64, b []byte, off int64) error {
	if !w.noCopy.Load() {
		k, err := w.copyRange(src, srcOff, off, int64(len(b)))
		if err != nil {
			return err
		}
		b, off = b[k:], off+k
	}
	if len(b) == 0 {
		return nil
	}
	_, err := w.WriteAt(b, off)
	return err
}

// readSource reads all of b from src at off.
func readSource(src disk.Storage, b []byte, off int64) error {
	n, err := src.ReadAt(b, off)
	switch {
	case n == len(b):
		return nil
	case err == nil || err == io.EOF:
		return fmt.Errorf("volume: reading %d bytes of %s at %d: the file ends after %d of them (it shrank while it was being copied)", len(b), src.Name(), off, n)
	}
	return fmt.Errorf("volume: reading %s at %d: %w", src.Name(), off, err)
}
