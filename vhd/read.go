package vhd

import (
	"fmt"
	"io"
	"iter"

	"github.com/diskport/diskport/disk"
)

// A blockBits is a block's sector bitmap, summarised: all sectors present,
// none, or the bits (MSB first: bit 7 of byte 0 is the block's first
// sector).
type blockBits struct {
	full, empty bool
	bits        []byte
}

// present reports whether sector i of the block is stored in the block.
func (bb *blockBits) present(i int64) bool {
	return bb.bits[i/8]>>(7-i%8)&1 != 0
}

var (
	allPresent = &blockBits{full: true}
	allAbsent  = &blockBits{empty: true}
)

// blockMap returns block b's sector bitmap, reading it on first use. Only
// the bits of sectors inside the disk count: the rest of the last block's
// bitmap is ignored.
func (m *Image) blockMap(b int64) (*blockBits, error) {
	if bb := m.bitmaps[b].Load(); bb != nil {
		return bb, nil
	}
	secs := (min(m.blockSize, m.dataSize-b*m.blockSize) + disk.SectorSize - 1) / disk.SectorSize
	raw := make([]byte, (secs+7)/8)
	at := int64(m.bat[b]) * disk.SectorSize
	if err := disk.ReadFull(m.s, "vhd", fmt.Sprintf("sector bitmap of block %d", b), raw, at); err != nil {
		return nil, err
	}
	// Ignore the bits past the disk's last sector.
	if r := secs % 8; r != 0 {
		raw[len(raw)-1] &= 0xFF << (8 - r)
	}
	ones := 0
	for _, c := range raw {
		for ; c != 0; c &= c - 1 {
			ones++
		}
	}
	bb := &blockBits{bits: raw}
	switch int64(ones) {
	case secs:
		bb = allPresent
	case 0:
		bb = allAbsent
	}
	m.bitmaps[b].CompareAndSwap(nil, bb)
	return m.bitmaps[b].Load(), nil
}

// What a segment of the virtual disk reads from.
const (
	segZero   = iota // zeros
	segData          // the file, at segment.at
	segParent        // the parent, at the same virtual offset
)

// A segment is a run [off, off+n) of the virtual disk read from one place.
type segment struct {
	off, n int64
	kind   int
	at     int64 // segData: file offset of the run's first byte
}

// walk calls yield with the segments covering [off, end), a range inside
// [0, Size), in order, until yield returns false. It returns the error of
// reading a sector bitmap.
func (m *Image) walk(off, end int64, yield func(segment) bool) error {
	dataEnd := min(end, m.dataSize)
	if off < dataEnd {
		if m.f.diskType == TypeFixed {
			if !yield(segment{off, dataEnd - off, segData, off}) {
				return nil
			}
		} else if stop, err := m.walkBlocks(off, dataEnd, yield); stop || err != nil {
			return err
		}
	}
	if z := max(off, m.dataSize); z < end {
		yield(segment{z, end - z, segZero, 0})
	}
	return nil
}

// walkBlocks walks [off, end) of a dynamic or differencing disk block by
// block, and within a partly present block sector run by sector run. It
// reports whether yield asked to stop.
func (m *Image) walkBlocks(off, end int64, yield func(segment) bool) (bool, error) {
	absent := segZero
	if m.f.diskType == TypeDifferencing {
		absent = segParent
	}
	bs := m.blockSize
	for pos := off; pos < end; {
		b := pos / bs
		bStart := b * bs
		bEnd := min(bStart+bs, end)
		e := m.bat[b]
		if e == unallocated {
			if !yield(segment{pos, bEnd - pos, absent, 0}) {
				return true, nil
			}
			pos = bEnd
			continue
		}
		bb, err := m.blockMap(b)
		if err != nil {
			return true, err
		}
		dataAt := int64(e)*disk.SectorSize + m.bitmapLen - bStart // file offset of virtual byte 0 of this block's run
		switch {
		case bb.full:
			if !yield(segment{pos, bEnd - pos, segData, dataAt + pos}) {
				return true, nil
			}
			pos = bEnd
		case bb.empty:
			if !yield(segment{pos, bEnd - pos, absent, 0}) {
				return true, nil
			}
			pos = bEnd
		default:
			nsec := int64(len(bb.bits)) * 8
			for pos < bEnd {
				sec := (pos - bStart) / disk.SectorSize
				in := bb.present(sec)
				j := sec + 1
				for j < nsec && bb.present(j) == in {
					j++
				}
				runEnd := min(bStart+j*disk.SectorSize, bEnd)
				sg := segment{pos, runEnd - pos, absent, 0}
				if in {
					sg.kind, sg.at = segData, dataAt+pos
				}
				if !yield(sg) {
					return true, nil
				}
				pos = runEnd
			}
		}
	}
	return false, nil
}

// ReadAt reads len(p) bytes of the virtual disk at off. Unallocated blocks
// and sectors whose bitmap bit is clear read as zeros (dynamic) or from the
// parent (differencing); bytes past the footer's current size read as
// zeros.
func (m *Image) ReadAt(p []byte, off int64) (int, error) {
	if m.closed.Load() {
		return 0, fmt.Errorf("vhd: %s: read after Close", m.s.Name())
	}
	if off < 0 {
		return 0, fmt.Errorf("vhd: %s: negative offset %d", m.s.Name(), off)
	}
	if off >= m.size {
		return 0, io.EOF
	}
	end := off + min(int64(len(p)), m.size-off)
	var rerr error
	err := m.walk(off, end, func(sg segment) bool {
		q := p[sg.off-off : sg.off-off+sg.n]
		switch sg.kind {
		case segZero:
			clear(q)
		case segData:
			rerr = disk.ReadFull(m.s, "vhd", "block data", q, sg.at)
		case segParent:
			rerr = m.readParent(q, sg.off)
		}
		return rerr == nil
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, err
	}
	if n := end - off; n < int64(len(p)) {
		return int(n), io.EOF
	}
	return len(p), nil
}

// readParent reads len(q) bytes at off from the parent; bytes past the
// parent's size read as zeros (a child may be larger than its parent).
func (m *Image) readParent(q []byte, off int64) error {
	ps := m.parent.Size()
	k := int64(0)
	if off < ps {
		k = min(int64(len(q)), ps-off)
		n, err := m.parent.ReadAt(q[:k], off)
		if int64(n) < k {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("vhd: reading parent at byte %d: %w", off, err)
		}
	}
	clear(q[k:])
	return nil
}

// Extents yields the runs of [off, off+n) clipped to the disk: Zero for
// unallocated blocks and clear bitmap bits of a dynamic disk and for bytes
// past the current size; Data stored verbatim in the file (Stored set) for
// present sectors and all of a fixed disk; and for a differencing disk,
// the parent's extents where the child holds no data.
func (m *Image) Extents(off, n int64) iter.Seq2[disk.Extent, error] {
	start, end := disk.ClipRange(off, n, m.size)
	seq := func(yield func(disk.Extent, error) bool) {
		if start >= end {
			return
		}
		if m.closed.Load() {
			yield(disk.Extent{}, fmt.Errorf("vhd: %s: Extents after Close", m.s.Name()))
			return
		}
		stopped := false
		err := m.walk(start, end, func(sg segment) bool {
			switch sg.kind {
			case segZero:
				stopped = !yield(disk.Extent{Offset: sg.off, Length: sg.n, Kind: disk.Zero}, nil)
			case segData:
				stopped = !yield(disk.Extent{Offset: sg.off, Length: sg.n, Kind: disk.Data, Stored: m.s, StoredOffset: sg.at}, nil)
			case segParent:
				stopped = !m.parentExtents(sg, yield)
			}
			return !stopped
		})
		if err != nil && !stopped {
			yield(disk.Extent{}, err)
		}
	}
	return disk.Coalesce(seq, start, end-start)
}

// parentExtents yields the parent's extents for segment sg, and Zero for
// the part past the parent's size. It reports whether to go on.
func (m *Image) parentExtents(sg segment, yield func(disk.Extent, error) bool) bool {
	end := sg.off + sg.n
	pe := min(end, m.parent.Size())
	if sg.off < pe {
		for e, err := range m.parent.Extents(sg.off, pe-sg.off) {
			if err != nil {
				yield(disk.Extent{}, err)
				return false
			}
			if !yield(e, nil) {
				return false
			}
		}
	}
	if z := max(sg.off, pe); z < end {
		return yield(disk.Extent{Offset: z, Length: end - z, Kind: disk.Zero}, nil)
	}
	return true
}
