package vhd

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/diskport/diskport/disk"
)

// batChunk is how many BAT entries loadBAT reads at a time.
const batChunk = 16 << 10

// A region is a range of the file holding metadata, which no block may
// overlap.
type region struct {
	what       string
	start, end uint64
}

// A layout is what loadBAT needs to know of the file.
type layout struct {
	fileSize   uint64
	limit      uint64 // where the trailing footer starts: blocks end at or before it
	dataOffset uint64 // the dynamic header's offset
	dataSize   uint64 // the footer's current size: the bytes blocks must cover
	locators   []Locator
}

// loadBAT checks the block allocation table described by h against the
// file and returns its first ceil(dataSize/blockSize) entries (the rest
// cover no byte of the disk) and the bytes the allocated blocks occupy.
//
// The whole table of maxTableEntries entries must lie inside the file,
// outside the footers and the header; the table may have more entries than
// the disk needs but not fewer. Every allocated block — its bitmap and the
// part of its data inside the disk — must lie inside the file before the
// trailing footer, outside the metadata, and overlap no other block.
func loadBAT(s disk.Storage, h *header, l layout) (bat []uint32, blockBytes uint64, err error) {
	bs := uint64(h.blockSize)
	nblocks := (l.dataSize + bs - 1) / bs // dataSize ≤ MaxVirtualSize, no overflow
	if uint64(h.maxTableEntries) < nblocks {
		return nil, 0, disk.Errorf("vhd", disk.ErrCorrupt, "BAT has %d entries, a disk of %d bytes in blocks of %d needs %d", h.maxTableEntries, l.dataSize, bs, nblocks)
	}
	tableBytes := 4 * uint64(h.maxTableEntries)
	if h.tableOffset > l.limit || tableBytes > l.limit-h.tableOffset {
		return nil, 0, disk.Errorf("vhd", disk.ErrCorrupt, "BAT at byte %d (%d entries, %d bytes) past end of file (footer at byte %d)", h.tableOffset, h.maxTableEntries, tableBytes, l.limit)
	}
	tableEnd := h.tableOffset + (tableBytes+disk.SectorSize-1)/disk.SectorSize*disk.SectorSize
	meta := []region{
		{"footer copy", 0, footerSize},
		{"dynamic header", l.dataOffset, l.dataOffset + headerSize},
		{"BAT", h.tableOffset, tableEnd},
		{"footer", l.limit, l.fileSize},
	}
	for _, m := range meta[:2] {
		if overlaps(h.tableOffset, h.tableOffset+tableBytes, m) {
			return nil, 0, disk.Errorf("vhd", disk.ErrCorrupt, "BAT at byte %d (%d bytes) overlaps the %s at byte %d", h.tableOffset, tableBytes, m.what, m.start)
		}
	}
	for i, loc := range l.locators {
		meta = append(meta, region{fmt.Sprintf("parent locator %d (%s)", i, loc.Platform), uint64(loc.Offset), uint64(loc.Offset + loc.Length)})
	}

	bat = make([]uint32, nblocks) // 4*nblocks ≤ tableBytes ≤ file size
	raw := make([]byte, 4*min(nblocks, batChunk))
	for i := uint64(0); i < nblocks; i += batChunk {
		b := raw[:4*min(batChunk, nblocks-i)]
		if err := disk.ReadFull(s, "vhd", "BAT", b, int64(h.tableOffset+4*i)); err != nil {
			return nil, 0, err
		}
		for k := range len(b) / 4 {
			bat[i+uint64(k)] = binary.BigEndian.Uint32(b[4*k:])
		}
	}
	var order []uint32 // allocated block numbers
	bitmap := h.bitmapBytes()
	for i, e := range bat {
		if e == unallocated {
			continue
		}
		start := uint64(e) * disk.SectorSize
		end := start + bitmap + min(bs, l.dataSize-uint64(i)*bs)
		if end > l.limit {
			return nil, 0, disk.Errorf("vhd", disk.ErrCorrupt, "block %d at sector %d (%d bytes) past end of file data (footer at byte %d)", i, e, end-start, l.limit)
		}
		for _, m := range meta {
			if overlaps(start, end, m) {
				return nil, 0, disk.Errorf("vhd", disk.ErrCorrupt, "block %d at byte %d (%d bytes) overlaps the %s at byte %d", i, start, end-start, m.what, m.start)
			}
		}
		blockBytes += end - start
		order = append(order, uint32(i))
	}
	slices.SortFunc(order, func(a, b uint32) int {
		if bat[a] < bat[b] {
			return -1
		}
		if bat[a] > bat[b] {
			return 1
		}
		return 0
	})
	for k := 1; k < len(order); k++ {
		a, b := order[k-1], order[k]
		aEnd := uint64(bat[a])*disk.SectorSize + bitmap + min(bs, l.dataSize-uint64(a)*bs)
		if aEnd > uint64(bat[b])*disk.SectorSize {
			return nil, 0, disk.Errorf("vhd", disk.ErrCorrupt, "blocks %d (sector %d) and %d (sector %d) overlap", a, bat[a], b, bat[b])
		}
	}
	return bat, blockBytes, nil
}

// overlaps reports whether [start, end) and a non-empty m intersect.
func overlaps(start, end uint64, m region) bool {
	return m.start < m.end && start < m.end && m.start < end
}
