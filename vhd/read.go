package vhd

import (
	"fmt"
	"iter"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/mapped"
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

// A runMap is an Image seen as the mapped.Mapper of its virtual disk.
type runMap Image

// Runs yields the runs covering [off, end), a range inside [0, Size), in
// order: a fixed disk's data stored at the same offset; a dynamic or
// differencing disk's blocks (holes where unallocated, sector runs by the
// bitmap where partly present); zeros past the footer's current size. It
// returns the error of reading a sector bitmap.
func (rm *runMap) Runs(off, end int64, yield func(mapped.Run) bool) error {
	m := (*Image)(rm)
	dataEnd := min(end, m.dataSize)
	if off < dataEnd {
		if m.f.diskType == TypeFixed {
			if !yield(mapped.Run{Off: off, Len: dataEnd - off, Kind: mapped.Stored, Storage: m.s, At: off}) {
				return nil
			}
		} else if stop, err := m.blockRuns(off, dataEnd, yield); stop || err != nil {
			return err
		}
	}
	if z := max(off, m.dataSize); z < end {
		yield(mapped.Run{Off: z, Len: end - z, Kind: mapped.Zero})
	}
	return nil
}

// blockRuns walks [off, end) of a dynamic or differencing disk block by
// block, and within a partly present block sector run by sector run.
// Absent sectors are holes: the parent's bytes for a differencing disk,
// zeros for a dynamic one (which has no parent). It reports whether yield
// asked to stop.
func (m *Image) blockRuns(off, end int64, yield func(mapped.Run) bool) (bool, error) {
	bs := m.blockSize
	for pos := off; pos < end; {
		b := pos / bs
		bStart := b * bs
		bEnd := min(bStart+bs, end)
		e := m.bat[b]
		if e == unallocated {
			if !yield(mapped.Run{Off: pos, Len: bEnd - pos, Kind: mapped.Hole}) {
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
			if !yield(mapped.Run{Off: pos, Len: bEnd - pos, Kind: mapped.Stored, Storage: m.s, At: dataAt + pos}) {
				return true, nil
			}
			pos = bEnd
		case bb.empty:
			if !yield(mapped.Run{Off: pos, Len: bEnd - pos, Kind: mapped.Hole}) {
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
				r := mapped.Run{Off: pos, Len: runEnd - pos, Kind: mapped.Hole}
				if in {
					r.Kind, r.Storage, r.At = mapped.Stored, m.s, dataAt+pos
				}
				if !yield(r) {
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
// parent (differencing; zeros past the parent's size); bytes past the
// footer's current size read as zeros.
func (m *Image) ReadAt(p []byte, off int64) (int, error) { return m.core.ReadAt(p, off) }

// Extents yields the runs of [off, off+n) clipped to the disk: Zero for
// unallocated blocks and clear bitmap bits of a dynamic disk and for bytes
// past the current size; Data stored verbatim in the file (Stored set) for
// present sectors and all of a fixed disk; and for a differencing disk,
// the parent's extents where the child holds no data.
func (m *Image) Extents(off, n int64) iter.Seq2[disk.Extent, error] { return m.core.Extents(off, n) }
