package vhd

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/diskport/diskport/disk"
)

// batOffset is where WriteDynamic puts the BAT: right after the footer
// copy and the dynamic header, as qemu does.
const batOffset = footerSize + headerSize

// dataAlign aligns every block's data in the file: each bitmap ends on a
// 4 KiB boundary, the zeros before it filling the rest of the page. A
// guest's 4 KiB reads and writes then fall on whole host pages and file
// system blocks, and a file system that shares extents (XFS, Btrfs) can
// share the blocks copy_file_range copies, which it can only do for
// aligned ranges. It costs 3.5 KiB per 2 MiB block.
const dataAlign = 4096

// WriteDynamic writes src as a dynamic VHD to w, starting at offset 0, and
// returns the size of the file written.
//
// The file holds a copy of the footer at 0, the dynamic header at 512,
// the block allocation table at 1536 (padded to a whole sector with
// unallocated entries), as qemu writes them, then the allocated 2 MiB
// blocks in block order, each a 512-byte sector bitmap with every bit set
// followed by the block's data, then the footer. Unlike qemu's, each
// block's data starts on a 4 KiB boundary, 3.5 KiB of zeros before each
// bitmap but the first (see the package documentation). A
// block whose 2 MiB read as zeros is left unallocated: the source's
// extent map skips its holes without reading them, and the data it
// reports is tested block by block. The last block is stored whole,
// zero-padded past the virtual size.
//
// The virtual size (the footer's current and original size) is the
// source's size rounded up to 512 bytes; the geometry is the
// specification's, and the creator fields are those qemu, Hyper-V, Azure
// and VirtualBox all read the exact current size from (not the smaller
// CHS size). A source larger than MaxWriteSize is refused with
// disk.ErrTooLarge before anything is written.
//
// Blocks are read and tested by opts.Workers goroutines and written with
// concurrent WriteAt calls; the BAT, the dynamic header and the footers
// are written after every block, so an interrupted write leaves either no
// header and footer at all or every block in place. Blocks a raw source
// stores verbatim in a host file are copied with copy_file_range when w is
// a file. w should be new or empty: every byte of the result is written,
// and when w is an *os.File holding a longer file it is truncated to the
// result.
func WriteDynamic(ctx context.Context, w io.WriterAt, src disk.Image, opts WriteOptions) (int64, error) {
	size, err := checkSource(src, "dynamic")
	if err != nil {
		return 0, err
	}
	f, err := newFooter(size, TypeDynamic, footerSize, &opts)
	if err != nil {
		return 0, err
	}
	const bs = writeBlockSize
	nblocks := (size + bs - 1) / bs
	batBytes := (4*nblocks + disk.SectorSize - 1) / disk.SectorSize * disk.SectorSize
	h := &header{
		tableOffset:     batOffset,
		version:         formatVersion,
		maxTableEntries: uint32(nblocks),
		blockSize:       bs,
	}
	bitmap := int64(h.bitmapBytes())
	pad := dataAlign - bitmap // zeros between a block's data and the next bitmap
	bat := make([]uint32, batBytes/4)
	for i := range bat {
		bat[i] = unallocated
	}
	batEnd := batOffset + batBytes
	firstBitmap := (batEnd+bitmap+dataAlign-1)/dataAlign*dataAlign - bitmap

	end := batEnd // the end of the last block placed: the footer goes there
	prog := progress{fn: opts.Progress, total: size}
	kc := newKernelCopy(w)
	p := pipeline{
		workers: opts.workers(),
		newBuf: func() []byte {
			// One buffer holds a block as stored, with the zeros that
			// precede it: pad, the bitmap (every sector present), the
			// data; so a block is one write, of whole pages.
			b := make([]byte, pad+bitmap+bs)
			for i := range bitmap {
				b[pad+i] = 0xFF
			}
			return b
		},
		load: func(t *task, buf []byte) error {
			data := buf[pad+bitmap:]
			if kc.usable(t) {
				zero, err := probeZero(src, data[t.lo:t.hi], t.off+t.lo)
				t.zero, t.copy = zero, !zero
				return err
			}
			clear(data[:t.lo])
			if err := readSource(src, data[t.lo:t.hi], t.off+t.lo); err != nil {
				return err
			}
			clear(data[t.hi:])
			t.zero = disk.IsZero(data[t.lo:t.hi])
			return nil
		},
		commit: func(t *task, _ []byte) error {
			if !t.zero {
				t.at = firstBitmap
				if end > batEnd {
					t.at = end + pad
				}
				bat[t.off/bs] = uint32(t.at / disk.SectorSize)
				end = t.at + bitmap + bs
			}
			prog.report(t.off + t.n)
			return nil
		},
		finish: func(t *task, buf []byte) error {
			if t.zero {
				return nil
			}
			// The zeros before the bitmap, but for the first block,
			// whose are written with the metadata.
			head := pad
			if t.at == firstBitmap {
				head = 0
			}
			blk := buf[pad-head:]
			at := t.at - head
			if t.copy {
				if done, err := copyBlock(kc, w, t, blk, at, head+bitmap); done || err != nil {
					return err
				}
				// The kernel refused: read the block after all.
				if err := readSource(src, buf[pad+bitmap+t.lo:pad+bitmap+t.hi], t.off+t.lo); err != nil {
					return err
				}
			}
			if _, err := w.WriteAt(blk, at); err != nil {
				return fmt.Errorf("vhd: writing block %d at byte %d: %w", t.off/bs, t.at, err)
			}
			return nil
		},
	}
	if err := p.run(ctx, func(emit func(task) bool) error { return blockTasks(src, size, emit) }); err != nil {
		return 0, err
	}

	// The metadata, now that the BAT is known: table, header, footers.
	metaEnd := batEnd
	if end > batEnd {
		metaEnd = firstBitmap // and the zeros up to the first block
	}
	meta := make([]byte, metaEnd)
	f.marshal(meta)
	h.marshal(meta[footerSize:])
	for i, e := range bat {
		binary.BigEndian.PutUint32(meta[batOffset+4*i:], e)
	}
	if _, err := w.WriteAt(meta, 0); err != nil {
		return 0, fmt.Errorf("vhd: writing the footer copy, dynamic header and BAT at byte 0: %w", err)
	}
	if _, err := w.WriteAt(meta[:footerSize], end); err != nil {
		return 0, fmt.Errorf("vhd: writing the footer at byte %d: %w", end, err)
	}
	total := end + footerSize
	if err := truncateFile(w, total); err != nil {
		return 0, err
	}
	prog.report(size)
	return total, nil
}

// blockTasks emits a task for each block of [0, size) that the source's
// extent map says holds data, bounding the bytes to read to those the
// data runs cover in the block. A block whose data is one run stored
// verbatim in a host file (with no zero run inside it) records the file.
func blockTasks(src disk.Image, size int64, emit func(task) bool) error {
	const bs = writeBlockSize
	var t task
	have, ok := false, true
	err := sourceRuns(src, size, func(e disk.Extent) bool {
		if e.Kind != disk.Data {
			return true
		}
		file, fileOff := storedFile(e)
		for off, end := e.Offset, e.End(); off < end; {
			start := off / bs * bs
			stop := min(end, start+bs)
			at := fileOff + (off - e.Offset) // in file, when non-nil
			switch {
			case !have || t.off != start:
				if have && !emit(t) {
					ok = false
					return false
				}
				t = task{off: start, n: min(bs, size-start), lo: off - start, file: file, fileOff: at}
				have = true
			case t.file != nil && (file != t.file || t.off+t.hi != off || t.fileOff+(t.hi-t.lo) != at):
				t.file = nil // two runs in this block: read it
			}
			t.hi = stop - start
			off = stop
		}
		return true
	})
	if err != nil || !ok || !have {
		return err
	}
	emit(t)
	return nil
}

// copyBlock writes the block of t, its data copied inside the kernel.
// blk is the block as stored from byte at of the file: head bytes (zeros
// before the bitmap, and the bitmap), then the data. The head and the
// zeros before the data go in one write, the data with kc, the zeros after
// it in another write. It reports false, having written nothing, when the
// kernel refuses to copy; blk's data is then zeros outside [t.lo, t.hi),
// ready for the bytes to be read into it.
func copyBlock(kc *kernelCopy, w io.WriterAt, t *task, blk []byte, at, head int64) (bool, error) {
	data := blk[head:]
	clear(data[:t.lo])
	clear(data[t.hi:])
	if ok, err := kc.copy(t, at+head+t.lo); !ok || err != nil {
		return false, err
	}
	if _, err := w.WriteAt(blk[:head+t.lo], at); err != nil {
		return false, fmt.Errorf("vhd: writing the bitmap of block %d at byte %d: %w", t.off/writeBlockSize, t.at, err)
	}
	if tail := data[t.hi:]; len(tail) > 0 {
		tailAt := at + head + t.hi
		if _, err := w.WriteAt(tail, tailAt); err != nil {
			return false, fmt.Errorf("vhd: writing block %d at byte %d: %w", t.off/writeBlockSize, tailAt, err)
		}
	}
	return true, nil
}

// truncateFile cuts w to size when it is a regular file that is longer,
// so that the footer is the file's last 512 bytes.
func truncateFile(w any, size int64) error {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() <= size {
		return nil
	}
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("vhd: truncating %s to %d bytes: %w", f.Name(), size, err)
	}
	return nil
}

// progress reports to a WriteOptions.Progress function, never the same
// figure twice.
type progress struct {
	fn          func(done, total int64)
	total, done int64
	called      bool
}

// report reports done bytes of total.
func (p *progress) report(done int64) {
	if p.fn == nil || (p.called && done <= p.done) {
		return
	}
	p.done, p.called = done, true
	p.fn(done, p.total)
}
