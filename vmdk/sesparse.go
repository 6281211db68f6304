package vmdk

import (
	"encoding/binary"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/mapped"
)

// seSparse (ESXi space-efficient sparse, SESPARSE extents): a 512-byte
// constant header of u64 fields, a volatile header, a grain directory of
// u64 entries pointing at grain tables of 4096 u64 entries, 4 KiB grains.
// qemu reads it with "strict checks - format not officially documented";
// so does this file, with the same checks plus bounds on every offset.
const (
	seMagic         = 0xCAFEBABE
	seVersion       = 0x0000000200000001
	seVolatileMagic = 0xCAFECAFE
	seGrainSecs     = 8  // sectors per grain
	seGTSecs        = 64 // sectors per grain table
	seGTEs          = seGTSecs * disk.SectorSize / 8
	seGDIndexFlag   = 0x10000000 // top 32 bits of an allocated GD entry
	seTableCache    = 8
)

// A seExtent is an opened SESPARSE extent.
type seExtent struct {
	s          disk.Storage
	capacity   int64 // bytes
	gd         []uint64
	gtOff      uint64 // first sector of the grain tables
	gtCount    uint64 // grain tables the region holds
	grainsOff  uint64 // first sector of the grains
	grainsSecs uint64 // sectors of the grain region

	tables *mapped.Cache[uint64, []uint64] // by GD index
}

// openSESparse validates the headers of the SESPARSE extent s and loads its
// grain directory.
func openSESparse(s disk.Storage) (*seExtent, error) {
	name := s.Name()
	var b [2 * disk.SectorSize]byte
	if err := disk.ReadFull(s, formatName, "seSparse header", b[:disk.SectorSize], 0); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	f := func(off int) uint64 { return le.Uint64(b[off:]) }
	switch {
	case f(0) != seMagic:
		return nil, disk.Errorf(formatName, disk.ErrFormatMismatch, "%s: no seSparse magic at offset 0", name)
	case f(8) != seVersion:
		return nil, disk.Errorf(formatName, disk.ErrUnsupported, "%s: seSparse version %#x", name, f(8))
	case f(24) != seGrainSecs || f(32) != seGTSecs:
		return nil, disk.Errorf(formatName, disk.ErrUnsupported, "%s: seSparse grain of %d sectors, grain table of %d sectors (want %d and %d)", name, f(24), f(32), seGrainSecs, seGTSecs)
	case f(40) != 0 || f(48)|f(56)|f(64)|f(72) != 0:
		return nil, disk.Errorf(formatName, disk.ErrUnsupported, "%s: seSparse flags %#x or reserved fields set", name, f(40))
	}
	for i := 208; i < disk.SectorSize; i++ {
		if b[i] != 0 {
			return nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: seSparse header padding not zero at byte %d", name, i)
		}
	}
	fileSecs := uint64(s.Size()) / disk.SectorSize
	region := func(off int, what string) (uint64, uint64, error) {
		start, size := f(off), f(off+8)
		end, ok := addSectors(start, size)
		if start == 0 || !ok || end > fileSecs {
			return 0, 0, disk.Errorf(formatName, disk.ErrCorrupt, "%s: seSparse %s at sector %d (%d sectors) outside the file (%d sectors)", name, what, start, size, fileSecs)
		}
		return start, size, nil
	}
	x := &seExtent{s: s, tables: mapped.NewCache[uint64, []uint64](seTableCache)}
	capacity := f(16)
	if capacity == 0 || capacity > maxCapacitySectors {
		return nil, disk.Errorf(formatName, disk.ErrTooLarge, "%s: seSparse capacity %d sectors", name, capacity)
	}
	x.capacity = int64(capacity) * disk.SectorSize
	volOff, _, err := region(80, "volatile header")
	if err != nil {
		return nil, err
	}
	gdOff, gdSecs, err := region(128, "grain directory")
	if err != nil {
		return nil, err
	}
	gtOff, gtSecs, err := region(144, "grain tables")
	if err != nil {
		return nil, err
	}
	grOff, grSecs, err := region(192, "grains")
	if err != nil {
		return nil, err
	}
	x.gtOff, x.gtCount, x.grainsOff, x.grainsSecs = gtOff, gtSecs/seGTSecs, grOff, grSecs
	spans := []span{{0, 1, "header"}, {volOff, volOff + 1, "volatile header"}, {gdOff, gdOff + gdSecs, "grain directory"}, {gtOff, gtOff + gtSecs, "grain tables"}, {grOff, grOff + grSecs, "grains"}}
	for i, a := range spans {
		for _, c := range spans[i+1:] {
			if a.overlaps(c.start, c.end) {
				return nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: seSparse %s overlaps the %s", name, a.what, c.what)
			}
		}
	}
	if err := disk.ReadFull(s, formatName, "seSparse volatile header", b[disk.SectorSize:], int64(volOff)*disk.SectorSize); err != nil {
		return nil, err
	}
	if le.Uint64(b[512:]) != seVolatileMagic {
		return nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: seSparse volatile header magic %#x", name, le.Uint64(b[512:]))
	}
	if le.Uint64(b[512+24:]) != 0 {
		return nil, disk.Errorf(formatName, disk.ErrUnsupported, "%s: seSparse journal needs replaying (image is dirty)", name)
	}
	cover := uint64(seGTEs * seGrainSecs)
	need := (capacity + cover - 1) / cover
	entries := gdSecs * disk.SectorSize / 8
	if entries < need {
		return nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: seSparse grain directory of %d entries, capacity %d sectors needs %d", name, entries, capacity, need)
	}
	if need > maxGDEntries {
		return nil, disk.Errorf(formatName, disk.ErrTooLarge, "%s: seSparse grain directory of %d entries exceeds %d", name, need, maxGDEntries)
	}
	buf := make([]byte, need*8)
	if err := disk.ReadFull(s, formatName, "seSparse grain directory", buf, int64(gdOff)*disk.SectorSize); err != nil {
		return nil, err
	}
	x.gd = make([]uint64, need)
	for i := range x.gd {
		e := le.Uint64(buf[8*i:])
		if e != 0 && (e>>32 != seGDIndexFlag || e&0xffffffff >= x.gtCount) {
			return nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: seSparse grain directory entry %d is %#x (want 0 or %#x<<32 | a table index below %d)", name, i, e, seGDIndexFlag, x.gtCount)
		}
		x.gd[i] = e
	}
	return x, nil
}

// table returns grain table gdi, whose GD entry is allocated.
func (x *seExtent) table(gdi uint64) ([]uint64, error) {
	return x.tables.Load(gdi, func() ([]uint64, error) { return x.readTable(gdi) })
}

// readTable reads and validates grain table gdi.
func (x *seExtent) readTable(gdi uint64) ([]uint64, error) {
	name := x.s.Name()
	sec := x.gtOff + (x.gd[gdi]&0xffffffff)*seGTSecs
	buf := make([]byte, seGTSecs*disk.SectorSize)
	if err := disk.ReadFull(x.s, formatName, "seSparse grain table", buf, int64(sec)*disk.SectorSize); err != nil {
		return nil, err
	}
	gt := make([]uint64, seGTEs)
	for j := range gt {
		e := binary.LittleEndian.Uint64(buf[8*j:])
		if int64(gdi*seGTEs+uint64(j))*seGrainSecs*disk.SectorSize >= x.capacity {
			break
		}
		switch e >> 60 {
		case 0:
			if e != 0 {
				return nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: seSparse grain table %d entry %d: %#x", name, gdi, j, e)
			}
		case 1, 2: // unmapped, zero
		case 3:
			if c := seCluster(e); c >= x.grainsSecs/seGrainSecs {
				return nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: seSparse grain table %d entry %d: grain %d outside the grain region (%d grains)", name, gdi, j, c, x.grainsSecs/seGrainSecs)
			}
		default:
			return nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: seSparse grain table %d entry %d: unknown type %d", name, gdi, j, e>>60)
		}
		gt[j] = e
	}
	return gt, nil
}

// seCluster returns the grain number of an allocated entry.
func seCluster(e uint64) uint64 {
	return (e&0x0fff000000000000)>>48 | (e&0x0000ffffffffffff)<<12
}

// geometry returns what walkGrains needs.
func (x *seExtent) geometry() (int64, uint64, []uint64) {
	return seGrainSecs * disk.SectorSize, seGTEs, x.gd
}

// entryRun decodes grain table entry e by its top four bits: 0 a hole,
// 1 (unmapped) and 2 (zero) zeros, 3 a grain in the grain region.
func (x *seExtent) entryRun(e uint64, gi, within int64) mapped.Run {
	switch e >> 60 {
	case 0:
		return mapped.Run{Kind: mapped.Hole}
	case 1, 2:
		return mapped.Run{Kind: mapped.Zero}
	default:
		return mapped.Run{Kind: mapped.Stored, Storage: x.s, At: int64(x.grainsOff+seCluster(e)*seGrainSecs)*disk.SectorSize + within}
	}
}
