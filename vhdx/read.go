package vhdx

import (
	"fmt"
	"io"
	"iter"
	"math/bits"

	"github.com/diskport/diskport/disk"
)

// A blockBits is a partially present block's part of its chunk's sector
// bitmap, summarised: all sectors present, none, or the bits (LSB first:
// bit 0 of byte 0 is the block's first sector).
type blockBits struct {
	full, empty bool
	bits        []byte
}

// present reports whether sector i of the block is stored in the file.
func (bb *blockBits) present(i int64) bool { return bb.bits[i/8]>>(i%8)&1 != 0 }

var (
	allPresent = &blockBits{full: true}
	allAbsent  = &blockBits{empty: true}
)

// blockMap returns block b's sector bits, reading them from its chunk's
// sector bitmap block on first use. Bits of sectors past the disk's end
// are ignored.
func (m *Image) blockMap(b int64) (*blockBits, error) {
	if bb := m.bits[b].Load(); bb != nil {
		return bb, nil
	}
	spb := m.blockSize / m.sectorSize // sectors per block, a multiple of 8
	secs := min(spb, (m.size-b*m.blockSize)/m.sectorSize)
	raw := make([]byte, (secs+7)/8)
	e := m.bat.bitmaps[b/m.chunkRatio]
	at := int64(e&entryOffsetMask) + (b%m.chunkRatio)*spb/8
	if err := disk.ReadFull(m.file, "vhdx", fmt.Sprintf("sector bitmap of block %d", b), raw, at); err != nil {
		return nil, err
	}
	if r := secs % 8; r != 0 {
		raw[len(raw)-1] &= 0xFF >> (8 - r)
	}
	ones := int64(0)
	for _, c := range raw {
		ones += int64(bits.OnesCount8(c))
	}
	bb := &blockBits{bits: raw}
	switch ones {
	case secs:
		bb = allPresent
	case 0:
		bb = allAbsent
	}
	m.bits[b].CompareAndSwap(nil, bb)
	return m.bits[b].Load(), nil
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
	at     int64 // segData: offset in the (replayed) file of the run's first byte
}

// walk calls yield with the segments covering [off, end), a range inside
// [0, Size), in order, until yield returns false: block by block, and
// inside a partially present block sector run by sector run. It returns
// the error of reading a sector bitmap.
func (m *Image) walk(off, end int64, yield func(segment) bool) error {
	absent := segZero
	if m.md.hasParent {
		absent = segParent
	}
	bs := m.blockSize
	for pos := off; pos < end; {
		b := pos / bs
		bStart := b * bs
		bEnd := min(bStart+bs, end)
		e := m.bat.payload[b]
		dataAt := int64(e&entryOffsetMask) - bStart // file offset of virtual byte 0 for this block
		var bb *blockBits
		switch e & 7 {
		case stateFullyPresent:
			bb = allPresent
		case statePartiallyPresent:
			var err error
			if bb, err = m.blockMap(b); err != nil {
				return err
			}
		case stateNotPresent:
			bb = allAbsent
		default: // undefined, zero, unmapped: zeros, in every kind of disk
			if !yield(segment{pos, bEnd - pos, segZero, 0}) {
				return nil
			}
			pos = bEnd
			continue
		}
		switch {
		case bb.full:
			if !yield(segment{pos, bEnd - pos, segData, dataAt + pos}) {
				return nil
			}
			pos = bEnd
		case bb.empty:
			if !yield(segment{pos, bEnd - pos, absent, 0}) {
				return nil
			}
			pos = bEnd
		default:
			nsec := int64(len(bb.bits)) * 8
			ss := m.sectorSize
			for pos < bEnd {
				sec := (pos - bStart) / ss
				in := bb.present(sec)
				j := sec + 1
				for j < nsec && bb.present(j) == in {
					j++
				}
				runEnd := min(bStart+j*ss, bEnd)
				sg := segment{pos, runEnd - pos, absent, 0}
				if in {
					sg.kind, sg.at = segData, dataAt+pos
				}
				if !yield(sg) {
					return nil
				}
				pos = runEnd
			}
		}
	}
	return nil
}

// storageFor returns the storage to read [at, at+n) of the replayed file
// from: the file itself, unless the log wrote there.
func (m *Image) storageFor(at, n int64) disk.Storage {
	if m.ov != nil && m.ov.touches(at, n) {
		return m.ov
	}
	return m.s
}

// ReadAt reads len(p) bytes of the virtual disk at off. Blocks not
// present, undefined, zero or unmapped read as zeros, except that in a
// differencing disk blocks not present and sectors whose bitmap bit is
// clear read from the parent.
func (m *Image) ReadAt(p []byte, off int64) (int, error) {
	if m.closed.Load() {
		return 0, fmt.Errorf("vhdx: %s: read after Close", m.s.Name())
	}
	if off < 0 {
		return 0, fmt.Errorf("vhdx: %s: negative offset %d", m.s.Name(), off)
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
			rerr = disk.ReadFull(m.storageFor(sg.at, sg.n), "vhdx", "block data", q, sg.at)
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
			return fmt.Errorf("vhdx: reading parent at byte %d: %w", off, err)
		}
	}
	clear(q[k:])
	return nil
}

// Extents yields the runs of [off, off+n) clipped to the disk: Zero for
// blocks and sectors that read as zeros; Data stored verbatim (Stored set)
// for present blocks and sectors, contiguous blocks coalesced into one
// run; and for a differencing disk, the parent's extents where the child
// holds no data. Runs the log rewrote are stored in the replayed file.
func (m *Image) Extents(off, n int64) iter.Seq2[disk.Extent, error] {
	start, end := disk.ClipRange(off, n, m.size)
	seq := func(yield func(disk.Extent, error) bool) {
		if start >= end {
			return
		}
		if m.closed.Load() {
			yield(disk.Extent{}, fmt.Errorf("vhdx: %s: Extents after Close", m.s.Name()))
			return
		}
		stopped := false
		err := m.walk(start, end, func(sg segment) bool {
			switch sg.kind {
			case segZero:
				stopped = !yield(disk.Extent{Offset: sg.off, Length: sg.n, Kind: disk.Zero}, nil)
			case segData:
				stopped = !yield(disk.Extent{Offset: sg.off, Length: sg.n, Kind: disk.Data, Stored: m.storageFor(sg.at, sg.n), StoredOffset: sg.at}, nil)
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
