package vmdk

import (
	"encoding/binary"
	"slices"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/mapped"
)

// maxGDEntries caps a grain directory (qemu: "L1 size too big" above 32 Mi
// entries).
const maxGDEntries = 1 << 25

// gtCacheSize is how many grain tables an image keeps in memory, shared
// by its extents (at most 2 KiB each: 64 tables cover 2 GiB of 64 KiB
// grains).
const gtCacheSize = 64

// A span is a range of sectors [start, end) of an extent file holding
// metadata.
type span struct {
	start, end uint64
	what       string
}

func (s span) overlaps(start, end uint64) bool { return start < s.end && s.start < end }

// A sparseExtent is a grain-directory addressed extent: a hosted sparse
// (KDMV) extent, possibly compressed (streamOptimized), or a COWD extent.
type sparseExtent struct {
	s           disk.Storage
	capacity    int64  // bytes
	grainBytes  int64  // bytes per grain
	grainSecs   uint64 // sectors per grain
	gtes        uint64 // entries per grain table
	gtSecs      uint64 // sectors a grain table occupies
	gd          []uint32
	overHead    uint64   // first sector grains may use
	fileSecs    uint64   // whole sectors in the file
	zeroed      bool     // GTE 1 means a zeroed grain
	compressed  bool     // grains are compressed with markers
	gtBelowOver bool     // grain tables must lie below overHead
	meta        []span   // header, descriptor, GD, RGD, footer
	gtStarts    []uint64 // sorted sectors of the grain tables

	hdr    sparseHeader // the effective header (the footer's for GD_AT_END)
	footer bool         // the header came from a stream footer
	kind   string       // "KDMV" or "COWD"

	cache *gtCache // shared by the extents of an image
}

// A gtCache holds recently used grain tables of an image's extents.
// Cached tables are never written after insertion.
type gtCache = mapped.Cache[gtKey, []uint32]

// A gtKey names grain table gdi of extent ext.
type gtKey struct {
	ext *sparseExtent
	gdi uint64
}

// newGTCache returns an empty cache of gtCacheSize tables.
func newGTCache() *gtCache { return mapped.NewCache[gtKey, []uint32](gtCacheSize) }

// newSparseGeometry fills the geometry fields and checks that the grain
// directory fits the file: gdOff is its sector, the GD is read from s.
func (x *sparseExtent) loadGD(gdOff uint64, entries uint64, entryName string) error {
	name := x.s.Name()
	if entries > maxGDEntries {
		return disk.Errorf(formatName, disk.ErrTooLarge, "%s: grain directory of %d entries exceeds %d", name, entries, maxGDEntries)
	}
	gdBytes := entries * 4
	gdSecs := (gdBytes + disk.SectorSize - 1) / disk.SectorSize
	end, ok := addSectors(gdOff, gdSecs)
	if gdOff == 0 {
		return disk.Errorf(formatName, disk.ErrCorrupt, "%s: %s at sector 0, on the header", name, entryName)
	}
	if !ok || gdOff*disk.SectorSize+gdBytes > uint64(x.s.Size()) {
		return disk.Errorf(formatName, disk.ErrCorrupt, "%s: %s at sector %d (%d entries) past end of file (size %d bytes)", name, entryName, gdOff, entries, x.s.Size())
	}
	if err := x.addMeta(span{gdOff, end, entryName}); err != nil {
		return err
	}
	if x.gtBelowOver && end > x.overHead {
		return disk.Errorf(formatName, disk.ErrCorrupt, "%s: %s at sectors %d-%d overlaps the grain area starting at sector %d", name, entryName, gdOff, end, x.overHead)
	}
	buf := make([]byte, gdBytes)
	if err := disk.ReadFull(x.s, formatName, entryName, buf, int64(gdOff)*disk.SectorSize); err != nil {
		return err
	}
	x.gd = make([]uint32, entries)
	for i := range x.gd {
		x.gd[i] = binary.LittleEndian.Uint32(buf[4*i:])
	}
	return x.checkGTs()
}

// addMeta records a metadata span, refusing it if it overlaps another.
func (x *sparseExtent) addMeta(s span) error {
	for _, m := range x.meta {
		if m.overlaps(s.start, s.end) {
			return disk.Errorf(formatName, disk.ErrCorrupt, "%s: %s at sectors %d-%d overlaps the %s at sectors %d-%d", x.s.Name(), s.what, s.start, s.end, m.what, m.start, m.end)
		}
	}
	x.meta = append(x.meta, s)
	return nil
}

// checkGTs validates every grain directory entry: each grain table lies
// inside the file, outside the other metadata, and apart from every other
// grain table.
func (x *sparseExtent) checkGTs() error {
	name := x.s.Name()
	var starts []uint64
	for i, e := range x.gd {
		if e == 0 {
			continue
		}
		start := uint64(e)
		end := start + x.gtSecs
		if end > x.fileSecs {
			return disk.Errorf(formatName, disk.ErrCorrupt, "%s: grain table %d at sector %d past end of file (size %d sectors)", name, i, start, x.fileSecs)
		}
		if x.gtBelowOver && end > x.overHead {
			return disk.Errorf(formatName, disk.ErrCorrupt, "%s: grain table %d at sector %d overlaps the grain area starting at sector %d", name, i, start, x.overHead)
		}
		for _, m := range x.meta {
			if m.overlaps(start, end) {
				return disk.Errorf(formatName, disk.ErrCorrupt, "%s: grain table %d at sector %d overlaps the %s at sectors %d-%d", name, i, start, m.what, m.start, m.end)
			}
		}
		starts = append(starts, start)
	}
	slices.Sort(starts)
	for i := 1; i < len(starts); i++ {
		if starts[i] < starts[i-1]+x.gtSecs {
			return disk.Errorf(formatName, disk.ErrCorrupt, "%s: grain tables at sectors %d and %d overlap", name, starts[i-1], starts[i])
		}
	}
	x.gtStarts = starts
	return nil
}

// gtAt returns the start of a grain table overlapping sectors [start,
// end), if any.
func (x *sparseExtent) gtAt(start, end uint64) (uint64, bool) {
	i, _ := slices.BinarySearch(x.gtStarts, end) // first table starting at or after end
	if i > 0 && x.gtStarts[i-1]+x.gtSecs > start {
		return x.gtStarts[i-1], true
	}
	return 0, false
}

// table returns grain table gdi (whose GD entry is non-zero), validated,
// from the cache or the file.
func (x *sparseExtent) table(gdi uint64) ([]uint32, error) {
	return x.cache.Load(gtKey{x, gdi}, func() ([]uint32, error) { return x.readTable(gdi) })
}

// readTable reads and validates grain table gdi.
func (x *sparseExtent) readTable(gdi uint64) ([]uint32, error) {
	name := x.s.Name()
	sec := uint64(x.gd[gdi])
	buf := make([]byte, x.gtes*4)
	if err := disk.ReadFull(x.s, formatName, "grain table", buf, int64(sec)*disk.SectorSize); err != nil {
		return nil, err
	}
	gt := make([]uint32, x.gtes)
	first := int64(gdi) * int64(x.gtes) // grain index of entry 0
	for j := range gt {
		e := binary.LittleEndian.Uint32(buf[4*j:])
		start := (first + int64(j)) * x.grainBytes
		if start >= x.capacity {
			break // entries past the capacity are never used
		}
		gt[j] = e
		if e == 0 || e == gteZeroed && x.zeroed {
			continue
		}
		g := uint64(e)
		if g < x.overHead {
			return nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: grain table %d entry %d: grain at sector %d inside the metadata area (grains start at sector %d)", name, gdi, j, g, x.overHead)
		}
		if g >= sec && g < sec+x.gtSecs {
			return nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: grain table %d entry %d points into the grain table itself (sector %d)", name, gdi, j, g)
		}
		need := uint64(12) // a compressed grain's marker
		if !x.compressed {
			need = uint64(min(x.grainBytes, x.capacity-start))
		}
		if g*disk.SectorSize+need > uint64(x.s.Size()) {
			return nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: grain table %d entry %d: grain at sector %d past end of file (size %d sectors)", name, gdi, j, g, x.fileSecs)
		}
		gEnd := g + (need+disk.SectorSize-1)/disk.SectorSize
		for _, m := range x.meta {
			if m.overlaps(g, gEnd) {
				return nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: grain table %d entry %d: grain at sector %d inside the %s", name, gdi, j, g, m.what)
			}
		}
		if t, ok := x.gtAt(g, gEnd); ok {
			return nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: grain table %d entry %d: grain at sector %d overlaps the grain table at sector %d", name, gdi, j, g, t)
		}
	}
	return gt, nil
}

// grainTables is what walkGrains needs of a grain-directory addressed
// extent whose directory and table entries are of type E: hosted sparse
// and COWD extents (uint32), seSparse extents (uint64).
type grainTables[E uint32 | uint64] interface {
	// geometry returns the bytes per grain, the entries per grain table
	// and the grain directory (an entry of 0: no table, all holes).
	geometry() (grainBytes int64, gtes uint64, gd []E)
	// table returns grain table gdi, whose directory entry is not 0.
	table(gdi uint64) ([]E, error)
	// entryRun returns the run of grain gi whose table entry is e, its
	// Kind and where its bytes are; within is the offset of the run's
	// first byte in the grain.
	entryRun(e E, gi, within int64) mapped.Run
}

// walkGrains yields the runs of [off, end) of extent t (extent-relative
// bytes, end <= capacity) at virtual offsets base+off, one per grain (or
// per grain table without one). It reports whether yield wants more.
func walkGrains[E uint32 | uint64](t grainTables[E], base, off, end int64, yield func(mapped.Run) bool) (bool, error) {
	grainBytes, gtes, gd := t.geometry()
	cover := int64(gtes) * grainBytes
	for off < end {
		gdi := uint64(off / cover)
		tEnd := min(end, int64(gdi+1)*cover)
		if gd[gdi] == 0 {
			if !yield(mapped.Run{Off: base + off, Len: tEnd - off, Kind: mapped.Hole}) {
				return false, nil
			}
			off = tEnd
			continue
		}
		gt, err := t.table(gdi)
		if err != nil {
			return false, err
		}
		for off < tEnd {
			gi := off / grainBytes
			gEnd := min(tEnd, (gi+1)*grainBytes)
			r := t.entryRun(gt[uint64(gi)%gtes], gi, off-gi*grainBytes)
			r.Off, r.Len = base+off, gEnd-off
			if !yield(r) {
				return false, nil
			}
			off = gEnd
		}
	}
	return true, nil
}

// geometry returns what walkGrains needs.
func (x *sparseExtent) geometry() (int64, uint64, []uint32) { return x.grainBytes, x.gtes, x.gd }

// entryRun decodes grain table entry e of grain gi: 0 a hole, 1 a zeroed
// grain (when the header allows), else the sector of the grain or of a
// compressed grain's marker.
func (x *sparseExtent) entryRun(e uint32, gi, within int64) mapped.Run {
	switch {
	case e == 0:
		return mapped.Run{Kind: mapped.Hole}
	case e == gteZeroed && x.zeroed:
		return mapped.Run{Kind: mapped.Zero}
	case x.compressed:
		return mapped.Run{Kind: mapped.Compressed, Decoder: x, Unit: gi, At: int64(e) * disk.SectorSize, UnitLen: x.grainBytes, UnitOff: within}
	default:
		return mapped.Run{Kind: mapped.Stored, Storage: x.s, At: int64(e)*disk.SectorSize + within}
	}
}
