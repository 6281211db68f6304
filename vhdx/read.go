package vhdx

import (
	"fmt"
	"iter"
	"math/bits"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/mapped"
)

// A sectorBits is a partially present block's part of its chunk's sector
// bitmap: bit i (LSB first: bit 0 of byte 0 is the block's first sector)
// says whether sector i is stored in the file; ones counts the set bits
// of the secs sectors inside the disk.
type sectorBits struct {
	bits       []byte
	ones, secs int64
}

// present reports whether sector i of the block is stored in the file.
func (sb *sectorBits) present(i int64) bool { return sb.bits[i/8]>>(i%8)&1 != 0 }

// sectorMap returns block b's sector bits, reading them from its chunk's
// sector bitmap block on first use. Bits of sectors past the disk's end
// are cleared.
func (m *Image) sectorMap(b int64) (*sectorBits, error) {
	if sb := m.bits[b].Load(); sb != nil {
		return sb, nil
	}
	spb := m.blockSize / m.sectorSize // sectors per block, a multiple of 8
	sb := &sectorBits{secs: min(spb, (m.size-b*m.blockSize)/m.sectorSize)}
	sb.bits = make([]byte, (sb.secs+7)/8)
	e := m.bat.bitmaps[b/m.chunkRatio]
	at := int64(e&entryOffsetMask) + (b%m.chunkRatio)*spb/8
	if err := disk.ReadFull(m.file, "vhdx", fmt.Sprintf("sector bitmap of block %d", b), sb.bits, at); err != nil {
		return nil, err
	}
	if r := sb.secs % 8; r != 0 {
		sb.bits[len(sb.bits)-1] &= 0xFF >> (8 - r)
	}
	for _, c := range sb.bits {
		sb.ones += int64(bits.OnesCount8(c))
	}
	m.bits[b].CompareAndSwap(nil, sb)
	return m.bits[b].Load(), nil
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
		blk := blockRun{
			dataAt: int64(e&entryOffsetMask) - bStart,
			st:     m.blockStorage(int64(e&entryOffsetMask), min(bs, m.size-bStart)),
		}
		kind := mapped.Zero // undefined, zero, unmapped: zeros, in every kind of disk
		switch e & 7 {
		case stateFullyPresent:
			kind = mapped.Stored
		case stateNotPresent:
			kind = mapped.Hole
		case statePartiallyPresent:
			sb, err := m.sectorMap(b)
			if err != nil {
				return err
			}
			switch sb.ones {
			case sb.secs:
				kind = mapped.Stored
			case 0:
				kind = mapped.Hole
			default:
				if !m.sectorRuns(sb, blk, pos, bStart, bEnd, yield) {
					return nil
				}
				pos = bEnd
				continue
			}
		}
		if !yield(blk.run(pos, bEnd, kind)) {
			return nil
		}
		pos = bEnd
	}
	return nil
}

// A blockRun says where a block's bytes are stored: in st, the block's
// virtual byte 0 at dataAt.
type blockRun struct {
	dataAt int64
	st     disk.Storage
}

// run returns the run [pos, end) of the block of the given kind.
func (br blockRun) run(pos, end int64, kind mapped.Kind) mapped.Run {
	r := mapped.Run{Off: pos, Len: end - pos, Kind: kind}
	if kind == mapped.Stored {
		r.Storage, r.At = br.st, br.dataAt+pos
	}
	return r
}

// sectorRuns yields the runs of [pos, bEnd) of a partially present block
// starting at bStart, one per stretch of equal bits. It reports whether
// to go on.
func (m *Image) sectorRuns(sb *sectorBits, blk blockRun, pos, bStart, bEnd int64, yield func(mapped.Run) bool) bool {
	nsec := int64(len(sb.bits)) * 8
	ss := m.sectorSize
	for pos < bEnd {
		sec := (pos - bStart) / ss
		in := sb.present(sec)
		j := sec + 1
		for j < nsec && sb.present(j) == in {
			j++
		}
		runEnd := min(bStart+j*ss, bEnd)
		kind := mapped.Hole
		if in {
			kind = mapped.Stored
		}
		if !yield(blk.run(pos, runEnd, kind)) {
			return false
		}
		pos = runEnd
	}
	return true
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
