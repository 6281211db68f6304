package vhdx

import (
	"fmt"
	"iter"
	"math/bits"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/mapped"
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
		raw[len(raw)-1] &= 0xFF >> (8 - r) // the bits past the disk's end
	}
	m.bits[b].CompareAndSwap(nil, summarise(raw, secs))
	return m.bits[b].Load(), nil
}

// summarise returns the blockBits of a block's raw bits for secs sectors:
// allPresent or allAbsent when every bit agrees.
func summarise(raw []byte, secs int64) *blockBits {
	var ones int64
	for _, c := range raw {
		ones += int64(bits.OnesCount8(c))
	}
	if ones == secs {
		return allPresent
	}
	if ones == 0 {
		return allAbsent
	}
	return &blockBits{bits: raw}
}

// A runMap is an Image seen as the mapped.Mapper of its virtual disk.
type runMap Image

// Runs yields the runs covering [off, end), a range inside [0, Size), in
// order, block by block, and inside a partially present block sector run
// by sector run: Stored for fully present blocks and present sectors (in
// the file itself, or in the replayed file where the log wrote); Hole for
// blocks not present and clear bitmap bits (the parent's bytes in a
// differencing disk, zeros otherwise); Zero for blocks undefined, zero or
// unmapped. It returns the error of reading a sector bitmap.
func (rm *runMap) Runs(off, end int64, yield func(mapped.Run) bool) error {
	m := (*Image)(rm)
	bs := m.blockSize
	for pos := off; pos < end; {
		b := pos / bs
		bStart := b * bs
		bEnd := min(bStart+bs, end)
		e := m.bat.payload[b]
		dataAt := int64(e&entryOffsetMask) - bStart // file offset of virtual byte 0 for this block
		st := m.blockStorage(int64(e&entryOffsetMask), min(bs, m.size-bStart))
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
			if !yield(mapped.Run{Off: pos, Len: bEnd - pos, Kind: mapped.Zero}) {
				return nil
			}
			pos = bEnd
			continue
		}
		switch {
		case bb.full:
			if !yield(mapped.Run{Off: pos, Len: bEnd - pos, Kind: mapped.Stored, Storage: st, At: dataAt + pos}) {
				return nil
			}
			pos = bEnd
		case bb.empty:
			if !yield(mapped.Run{Off: pos, Len: bEnd - pos, Kind: mapped.Hole}) {
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
				r := mapped.Run{Off: pos, Len: runEnd - pos, Kind: mapped.Hole}
				if in {
					r = mapped.Run{Off: pos, Len: runEnd - pos, Kind: mapped.Stored, Storage: st, At: dataAt + pos}
				}
				if !yield(r) {
					return nil
				}
				pos = runEnd
			}
		}
	}
	return nil
}

// blockStorage returns the storage of the block of n bytes at file offset
// at: the file itself, unless the log wrote into the block (or extended
// the file past it), then the replayed file. The choice is the whole
// block's, so that every request maps the block to the same storage.
func (m *Image) blockStorage(at, n int64) disk.Storage {
	if m.ov != nil && m.ov.touches(at, n) {
		return m.ov
	}
	return m.s
}

// ReadAt reads len(p) bytes of the virtual disk at off. Blocks not
// present read as zeros, or from the parent in a differencing disk, as do
// its sectors whose bitmap bit is clear; blocks undefined, zero or
// unmapped read as zeros.
func (m *Image) ReadAt(p []byte, off int64) (int, error) { return m.core.ReadAt(p, off) }

// Extents yields the runs of [off, off+n) clipped to the disk: Zero for
// what reads as zeros; Data stored verbatim (Stored set) for present
// blocks and sectors, contiguous blocks coalesced into one run; and for a
// differencing disk, the parent's extents where the child holds no data.
// Runs the log rewrote are stored in the replayed file, an in-memory
// overlay of the file.
func (m *Image) Extents(off, n int64) iter.Seq2[disk.Extent, error] { return m.core.Extents(off, n) }
