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

// WriteDynamic writes src as a dynamic VHD to w, starting at offset 0, and
// returns the size of the file written.
//
// The file is laid out as qemu and Hyper-V lay theirs out: a copy of the
// footer at 0, the dynamic header at 512, the block allocation table at
// 1536 (padded to a whole sector with unallocated entries), then the
// allocated 2 MiB blocks in block order, each a 512-byte sector bitmap
// with every bit set followed by the block's data, then the footer. A
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
// are written last, so an interrupted write leaves no valid VHD behind. w
// should be new or empty: every byte of the result is written, and when w
// is an *os.File holding a longer file it is truncated to the result.
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
	stride := bitmap + bs
	bat := make([]uint32, batBytes/4)
	for i := range bat {
		bat[i] = unallocated
	}

	next := int64(batOffset) + batBytes // where the next allocated block goes
	prog := progress{fn: opts.Progress, total: size}
	p := pipeline{
		workers: opts.workers(),
		newBuf: func() []byte {
			// One buffer holds a block as stored: the bitmap, every
			// sector present, then the data, so a block is one write.
			b := make([]byte, stride)
			for i := range bitmap {
				b[i] = 0xFF
			}
			return b
		},
		load: func(t *task, buf []byte) error {
			data := buf[bitmap:]
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
				t.at = next
				bat[t.off/bs] = uint32(next / disk.SectorSize)
				next += stride
			}
			prog.report(t.off + t.n)
			return nil
		},
		finish: func(t *task, buf []byte) error {
			if t.zero {
				return nil
			}
			if _, err := w.WriteAt(buf, t.at); err != nil {
				return fmt.Errorf("vhd: writing block %d at byte %d: %w", t.off/bs, t.at, err)
			}
			return nil
		},
	}
	if err := p.run(ctx, func(emit func(task) bool) error { return blockTasks(src, size, emit) }); err != nil {
		return 0, err
	}

	// The metadata, now that the BAT is known: table, header, footers.
	meta := make([]byte, batOffset+batBytes)
	f.marshal(meta)
	h.marshal(meta[footerSize:])
	for i, e := range bat {
		binary.BigEndian.PutUint32(meta[batOffset+4*i:], e)
	}
	if _, err := w.WriteAt(meta, 0); err != nil {
		return 0, fmt.Errorf("vhd: writing the footer copy, dynamic header and BAT at byte 0: %w", err)
	}
	if _, err := w.WriteAt(meta[:footerSize], next); err != nil {
		return 0, fmt.Errorf("vhd: writing the footer at byte %d: %w", next, err)
	}
	total := next + footerSize
	if err := truncateFile(w, total); err != nil {
		return 0, err
	}
	prog.report(size)
	return total, nil
}

// blockTasks emits a task for each block of [0, size) that the source's
// extent map says holds data, bounding the bytes to read to those the
// data runs cover in the block.
func blockTasks(src disk.Image, size int64, emit func(task) bool) error {
	const bs = writeBlockSize
	var t task
	have, ok := false, true
	err := sourceRuns(src, size, func(off, n int64, data bool) bool {
		if !data {
			return true
		}
		for end := off + n; off < end; {
			start := off / bs * bs
			stop := min(end, start+bs)
			if !have || t.off != start {
				if have && !emit(t) {
					ok = false
					return false
				}
				t = task{off: start, n: min(bs, size-start), lo: off - start}
				have = true
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
