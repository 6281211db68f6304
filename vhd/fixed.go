package vhd

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/diskport/diskport/disk"
)

// sparsePiece is the granularity at which WriteFixed leaves zeros
// unwritten in a sparse output file: the usual file system block, as
// qemu-img convert's default minimum sparse size.
const sparsePiece = 4 << 10

// WriteFixed writes src as a fixed VHD to w, front to back — the virtual
// disk's bytes, then the 512-byte footer — and returns the number of
// bytes the VHD occupies: the virtual size plus 512.
//
// The virtual size is the source's size rounded up to 512 bytes, and the
// footer is built as WriteDynamic's is (see there), with type fixed and no
// dynamic header. A source larger than MaxWriteSize is refused with
// disk.ErrTooLarge before anything is written.
//
// w may be a pipe or a network stream: it then receives every byte,
// zeros included, in order. When w is an *os.File open on a regular file
// that ends at the file's current offset (a new or truncated file, or
// output appended at its end) and not opened with O_APPEND, WriteFixed
// keeps the output sparse instead: it writes with WriteAt from the
// current offset, leaves the holes of the source and every all-zero 2 MiB
// chunk unwritten, lets the footer extend the file, and finally moves the
// file's offset past the footer, as sequential writes would have. Bytes a
// raw source stores verbatim in a host file are then copied with
// copy_file_range, after a zero test that stops at the first non-zero
// 64 KiB; other bytes pass through memory, and of those every all-zero
// 4 KiB is left unwritten too.
//
// opts.Workers goroutines read the source ahead of the writes; the source
// is read in 2 MiB chunks, and its holes (per its extent map) are not
// read at all.
func WriteFixed(ctx context.Context, w io.Writer, src disk.Image, opts WriteOptions) (int64, error) {
	size, err := checkSource(src, "fixed")
	if err != nil {
		return 0, err
	}
	f, err := newFooter(size, TypeFixed, noDataOffset, &opts)
	if err != nil {
		return 0, err
	}
	var foot [footerSize]byte
	f.marshal(foot[:])

	const chunk = writeBlockSize
	prog := progress{fn: opts.Progress, total: size}
	p := pipeline{
		workers: opts.workers(),
		newBuf:  func() []byte { return make([]byte, chunk) },
	}
	file, base := sparseFile(w)
	kc := newKernelCopy(file)
	p.load = func(t *task, buf []byte) error {
		switch {
		case t.lo == t.hi:
			t.zero = true
			return nil
		case file != nil && kc.usable(t):
			zero, err := probeZero(src, buf[:t.n], t.off)
			t.zero, t.copy = zero, !zero
			return err
		}
		return readSource(src, buf[:t.n], t.off)
	}
	if file != nil {
		p.commit = func(t *task, _ []byte) error {
			prog.report(t.off + t.n)
			return nil
		}
		p.finish = func(t *task, buf []byte) error {
			if t.zero {
				return nil
			}
			if t.copy {
				if ok, err := kc.copy(t, base+t.off); ok || err != nil {
					return err
				}
				// The kernel refused: read the chunk after all.
				if err := readSource(src, buf[:t.n], t.off); err != nil {
					return err
				}
			}
			return writeNonZero(file, buf[:t.n], base, t.off)
		}
	} else {
		var zeros []byte // allocated on the first zero run
		p.commit = func(t *task, buf []byte) error {
			if !t.zero {
				if _, err := w.Write(buf[:t.n]); err != nil {
					return fmt.Errorf("vhd: writing disk byte %d: %w", t.off, err)
				}
			} else {
				if zeros == nil {
					zeros = make([]byte, chunk)
				}
				for done := int64(0); done < t.n; {
					k := min(t.n-done, chunk)
					if _, err := w.Write(zeros[:k]); err != nil {
						return fmt.Errorf("vhd: writing zeros at disk byte %d: %w", t.off+done, err)
					}
					done += k
				}
			}
			prog.report(t.off + t.n)
			return nil
		}
	}
	if err := p.run(ctx, func(emit func(task) bool) error { return chunkTasks(src, size, chunk, emit) }); err != nil {
		return 0, err
	}

	if file != nil {
		if _, err := file.WriteAt(foot[:], base+size); err != nil {
			return 0, fmt.Errorf("vhd: writing the footer at byte %d of %s: %w", base+size, file.Name(), err)
		}
		if _, err := file.Seek(base+size+footerSize, io.SeekStart); err != nil {
			return 0, fmt.Errorf("vhd: moving past the footer of %s: %w", file.Name(), err)
		}
	} else if _, err := w.Write(foot[:]); err != nil {
		return 0, fmt.Errorf("vhd: writing the footer after disk byte %d: %w", size, err)
	}
	prog.report(size)
	return size + footerSize, nil
}

// chunkTasks emits the runs of [0, size) as tasks: data runs cut at
// multiples of chunk, zero runs whole and marked as nothing to read.
func chunkTasks(src disk.Image, size, chunk int64, emit func(task) bool) error {
	return sourceRuns(src, size, func(e disk.Extent) bool {
		if e.Kind != disk.Data {
			return emit(task{off: e.Offset, n: e.Length})
		}
		file, fileOff := storedFile(e)
		for off, end := e.Offset, e.End(); off < end; {
			stop := min(end, (off/chunk+1)*chunk)
			t := task{off: off, n: stop - off, lo: 0, hi: stop - off}
			if file != nil {
				t.file, t.fileOff = file, fileOff+(off-e.Offset)
			}
			if !emit(t) {
				return false
			}
			off = stop
		}
		return true
	})
}

// sparseFile returns w as a file WriteFixed may leave holes in, and the
// offset to write from; nil when w is not one. The file must be a regular
// file whose current offset is at or past its end (so every byte not
// written reads as zero) and not in append mode (where WriteAt fails).
func sparseFile(w io.Writer) (*os.File, int64) {
	f, ok := w.(*os.File)
	if !ok {
		return nil, 0
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil, 0
	}
	pos, err := f.Seek(0, io.SeekCurrent)
	if err != nil || st.Size() > pos {
		return nil, 0
	}
	if _, err := f.WriteAt(nil, pos); err != nil {
		return nil, 0
	}
	return f, pos
}

// writeNonZero writes the parts of b that are not all-zero sparsePiece
// runs to f at base+off+their offset in b.
func writeNonZero(f *os.File, b []byte, base, off int64) error {
	for i := 0; i < len(b); {
		for i < len(b) && disk.IsZero(b[i:min(i+sparsePiece, len(b))]) {
			i += sparsePiece
		}
		j := i
		for j < len(b) && !disk.IsZero(b[j:min(j+sparsePiece, len(b))]) {
			j += sparsePiece
		}
		j = min(j, len(b))
		if j > i {
			if _, err := f.WriteAt(b[i:j], base+off+int64(i)); err != nil {
				return fmt.Errorf("vhd: writing disk byte %d at byte %d of %s: %w", off+int64(i), base+off+int64(i), f.Name(), err)
			}
		}
		i = j
	}
	return nil
}
