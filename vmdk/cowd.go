package vmdk

import (
	"encoding/binary"

	"github.com/diskport/diskport/disk"
)

// COWD (VMDK3, ESX vmfsSparse) header: 2048 bytes, little-endian.
const (
	cowdHeaderSize = 2048
	cowdGTEs       = 4096 // entries per grain table, fixed
)

// openCOWD opens a COWD extent: capacity, grain size, grain directory at a
// sector with a given number of entries; GTs of 4096 u32 sector offsets,
// 0 unallocated. COWD has no zeroed grains and no compression.
func openCOWD(s disk.Storage, cache *gtCache) (*sparseExtent, error) {
	name := s.Name()
	var b [cowdHeaderSize]byte
	if err := disk.ReadFull(s, formatName, "COWD header", b[:], 0); err != nil {
		return nil, err
	}
	if string(b[:4]) != magicCOWD {
		return nil, disk.Errorf(formatName, disk.ErrFormatMismatch, "%s: no COWD magic at offset 0", name)
	}
	le := binary.LittleEndian
	version := le.Uint32(b[4:])
	capacity := uint64(le.Uint32(b[12:]))
	grain := uint64(le.Uint32(b[16:]))
	gdOff := uint64(le.Uint32(b[20:]))
	gdEntries := uint64(le.Uint32(b[24:]))
	if version != 1 {
		return nil, disk.Errorf(formatName, disk.ErrUnsupported, "%s: COWD version %d (want 1)", name, version)
	}
	if grain < 1 || grain > maxGrainSectors || grain&(grain-1) != 0 {
		return nil, disk.Errorf(formatName, disk.ErrUnsupported, "%s: COWD grain size %d sectors (want a power of 2 up to %d)", name, grain, maxGrainSectors)
	}
	if capacity == 0 {
		return nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: COWD capacity 0", name)
	}
	cover := cowdGTEs * grain
	if need := (capacity + cover - 1) / cover; gdEntries < need {
		return nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: COWD grain directory of %d entries, capacity %d sectors needs %d", name, gdEntries, capacity, need)
	} else {
		gdEntries = need // entries past the capacity are never used
	}
	x := &sparseExtent{
		s:          s,
		cache:      cache,
		kind:       magicCOWD,
		capacity:   int64(capacity) * disk.SectorSize,
		grainSecs:  grain,
		grainBytes: int64(grain) * disk.SectorSize,
		gtes:       cowdGTEs,
		gtSecs:     cowdGTEs * 4 / disk.SectorSize,
		fileSecs:   uint64(s.Size()) / disk.SectorSize,
		overHead:   cowdHeaderSize / disk.SectorSize,
		meta:       []span{{0, cowdHeaderSize / disk.SectorSize, "COWD header"}},
		hdr:        sparseHeader{Version: version, Flags: le.Uint32(b[8:]), Capacity: capacity, GrainSize: grain, GDOffset: gdOff, NumGTEsPerGT: cowdGTEs},
	}
	if err := x.loadGD(gdOff, gdEntries, "COWD grain directory"); err != nil {
		return nil, err
	}
	return x, nil
}
