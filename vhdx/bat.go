package vhdx

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/diskport/diskport/disk"
)

// Payload block states (MS-VHDX 2.5.1.1). State 5 is UNMAPPED in the 0.95
// draft of the specification, which qemu also accepts.
const (
	stateNotPresent       = 0
	stateUndefined        = 1
	stateZero             = 2
	stateUnmapped         = 3
	stateUnmappedDraft    = 5
	stateFullyPresent     = 6
	statePartiallyPresent = 7
	// Sector bitmap blocks are present (6) or not (0).
	bitmapPresent = 6

	entryOffsetMask = 0xFFFFFFFFFFF00000 // bits 20-63: file offset in MiB
	bitmapBlockSize = 1 << 20
	batChunk        = 16 << 10 // entries read at a time
)

// stateName names a payload block state, for messages and Info.
func stateName(st uint64) string {
	switch st {
	case stateNotPresent:
		return "not_present"
	case stateUndefined:
		return "undefined"
	case stateZero:
		return "zero"
	case stateUnmapped, stateUnmappedDraft:
		return "unmapped"
	case stateFullyPresent:
		return "fully_present"
	case statePartiallyPresent:
		return "partially_present"
	}
	return fmt.Sprintf("state %d", st)
}

// A span is a range of the file holding one structure, which nothing else
// may overlap.
type span struct {
	what       string
	idx        int64 // block or chunk number; -1 for metadata
	start, end int64
}

// name renders the span for a message.
func (u span) name() string {
	if u.idx < 0 {
		return u.what
	}
	return fmt.Sprintf("%s %d", u.what, u.idx)
}

// A batTable is the BAT as the reader keeps it: the payload entries, one
// per block of the disk, and for a differencing disk the sector bitmap
// entries, one per chunk.
type batTable struct {
	payload    []uint64
	bitmaps    []uint64
	counts     map[string]int64 // payload blocks by state
	blockBytes int64            // file bytes the present blocks and bitmaps use
}

// batLayout is what loadBAT needs to know.
type batLayout struct {
	region      Region
	blockSize   int64
	virtualSize int64
	chunkRatio  int64
	diff        bool
	fileSize    int64  // of the file as replayed
	meta        []span // header section, log, regions
}

// loadBAT reads and checks the BAT. The region must hold every entry the
// disk needs (payload and sector bitmap entries interleaved, one bitmap
// entry after every chunkRatio payload entries). Every fully or partially
// present block, and every present sector bitmap of a differencing disk,
// must lie inside the file, past the header section, outside the log, the
// BAT, the metadata and any other region, and overlap no other block.
func loadBAT(s disk.Storage, l batLayout) (*batTable, error) {
	bs := l.blockSize
	nblocks := (l.virtualSize + bs - 1) / bs
	nchunks := (nblocks + l.chunkRatio - 1) / l.chunkRatio
	var entries int64
	if l.diff {
		entries = nchunks * (l.chunkRatio + 1)
	} else if nblocks > 0 {
		entries = nblocks + (nblocks-1)/l.chunkRatio
	}
	if entries*8 > l.region.Length {
		return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "BAT region at byte %d holds %d entries, the disk needs %d", l.region.Offset, l.region.Length/8, entries)
	}
	t := &batTable{payload: make([]uint64, nblocks), counts: map[string]int64{}}
	if l.diff {
		t.bitmaps = make([]uint64, nchunks)
	}
	raw := make([]byte, 8*min(entries, batChunk))
	for i := int64(0); i < entries; i += batChunk {
		b := raw[:8*min(batChunk, entries-i)]
		if err := disk.ReadFull(s, "vhdx", "BAT", b, l.region.Offset+8*i); err != nil {
			return nil, err
		}
		for k := range int64(len(b) / 8) {
			idx := i + k
			e := le.Uint64(b[8*k:])
			if idx%(l.chunkRatio+1) == l.chunkRatio {
				if l.diff {
					t.bitmaps[idx/(l.chunkRatio+1)] = e
				}
				continue // a dynamic or fixed disk's bitmap entries are ignored (qemu wrote garbage there before 2023)
			}
			if p := idx - idx/(l.chunkRatio+1); p < nblocks { // a differencing disk's last chunk may have spare entries
				t.payload[p] = e
			}
		}
	}
	var used []span
	for i, e := range t.payload {
		st := e & 7
		t.counts[stateName(st)]++
		switch st {
		case stateNotPresent, stateUndefined, stateZero, stateUnmapped, stateUnmappedDraft:
			continue
		case stateFullyPresent:
		case statePartiallyPresent:
			if !l.diff {
				return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "block %d is partially present in a disk without a parent", i)
			}
			if t.bitmaps[int64(i)/l.chunkRatio]&7 != bitmapPresent {
				return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "block %d is partially present but the sector bitmap of chunk %d is not", i, int64(i)/l.chunkRatio)
			}
		default:
			return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "BAT entry of block %d has reserved state %d", i, st)
		}
		start := int64(e & entryOffsetMask)
		n := min(bs, l.virtualSize-int64(i)*bs)
		used = append(used, span{"block", int64(i), start, start + n})
	}
	for c, e := range t.bitmaps {
		switch e & 7 {
		case 0:
			continue
		case bitmapPresent:
		default:
			return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "sector bitmap entry of chunk %d has reserved state %d", c, e&7)
		}
		start := int64(e & entryOffsetMask)
		used = append(used, span{"sector bitmap of chunk", int64(c), start, start + bitmapBlockSize})
	}
	if err := checkSpans(used, l.meta, l.fileSize); err != nil {
		return nil, err
	}
	for _, u := range used {
		t.blockBytes += u.end - u.start
	}
	return t, nil
}

// checkSpans checks that every block span lies in the file past the
// header section, overlaps none of the metadata spans, and no other block.
func checkSpans(used, meta []span, fileSize int64) error {
	for _, u := range used {
		if u.start < headerSection {
			return disk.Errorf("vhdx", disk.ErrCorrupt, "%s at byte %d is inside the header section", u.name(), u.start)
		}
		if u.start > fileSize || u.end > fileSize {
			return disk.Errorf("vhdx", disk.ErrCorrupt, "%s at byte %d (%d bytes) past end of file (size %d)", u.name(), u.start, u.end-u.start, fileSize)
		}
		for _, m := range meta {
			if u.start < m.end && m.start < u.end {
				return disk.Errorf("vhdx", disk.ErrCorrupt, "%s at byte %d (%d bytes) overlaps the %s at byte %d", u.name(), u.start, u.end-u.start, m.name(), m.start)
			}
		}
	}
	slices.SortFunc(used, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for k := 1; k < len(used); k++ {
		if used[k-1].end > used[k].start {
			return disk.Errorf("vhdx", disk.ErrCorrupt, "%s at byte %d and %s at byte %d overlap", used[k-1].name(), used[k-1].start, used[k].name(), used[k].start)
		}
	}
	return nil
}
