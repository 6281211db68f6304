package vhdx

import (
	"fmt"
	"slices"
	"strings"

	"github.com/diskport/diskport/disk"
)

// Limits of the metadata region (MS-VHDX 2.6).
const (
	metadataTableSize = 64 << 10
	maxMetadataItems  = 2047
	maxItemLength     = 1 << 20
	minBlockSize      = 1 << 20
	maxBlockSize      = 256 << 20
	// MaxVirtualSize is the largest virtual size the format allows, 64 TiB.
	MaxVirtualSize = 64 << 40
)

// File parameter flags (MS-VHDX 2.6.2.1).
const (
	flagLeaveBlocksAllocated = 1
	flagHasParent            = 2
)

// metadata is what the metadata region says about the disk.
type metadata struct {
	blockSize          uint32
	leaveAllocated     bool
	hasParent          bool
	virtualSize        uint64
	virtualDiskID      GUID
	hasDiskID          bool
	logicalSectorSize  uint32
	physicalSectorSize uint32
	locator            *ParentLocator
	userItems          int // items with IsUser set, reported in Info
	present            map[GUID]bool
}

// A ParentLocator is a differencing disk's parent locator (MS-VHDX
// 2.6.2.6): the parent's type and key/value pairs such as parent_linkage
// (the parent's data write GUID), relative_path and absolute_win32_path.
// diskport reports it and never opens a file it names.
type ParentLocator struct {
	Type    GUID              `json:"type"`
	Entries map[string]string `json:"entries"`
}

// readMetadata reads and checks the metadata table and the items it needs
// from the metadata region r of s.
func readMetadata(s disk.Storage, r Region) (*metadata, error) {
	if r.Length < metadataTableSize {
		return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "metadata region at byte %d is %d bytes, shorter than its %d-byte table", r.Offset, r.Length, metadataTableSize)
	}
	b := make([]byte, metadataTableSize)
	if err := disk.ReadFull(s, "vhdx", "metadata table", b, r.Offset); err != nil {
		return nil, err
	}
	if string(b[:8]) != "metadata" {
		return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "metadata table at byte %d: signature %q, want \"metadata\"", r.Offset, string(b[:8]))
	}
	n := int(le.Uint16(b[10:]))
	if n > maxMetadataItems {
		return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "metadata table at byte %d: %d entries, at most %d allowed", r.Offset, n, maxMetadataItems)
	}
	type entry struct {
		id       GUID
		off, n   uint32
		user     bool
		required bool
	}
	var ents []entry
	md := &metadata{present: map[GUID]bool{}}
	for i := range n {
		e := b[32+32*i:]
		en := entry{id: guidAt(e, 0), off: le.Uint32(e[16:]), n: le.Uint32(e[20:]), user: le.Uint32(e[24:])&1 != 0, required: le.Uint32(e[24:])&4 != 0}
		where := fmt.Sprintf("metadata entry %d (%s)", i, en.id)
		switch {
		case en.n > maxItemLength:
			return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "%s: length %d exceeds 1 MiB", where, en.n)
		case en.n == 0 && en.off != 0:
			return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "%s: empty item at offset %d, want 0", where, en.off)
		case en.n != 0 && en.off < metadataTableSize:
			return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "%s: offset %d inside the metadata table", where, en.off)
		case uint64(en.off)+uint64(en.n) > uint64(r.Length):
			return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "%s: %d bytes at offset %d past the end of the %d-byte metadata region", where, en.n, en.off, r.Length)
		}
		for _, q := range ents {
			if q.id == en.id && q.user == en.user {
				return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "%s appears twice", where)
			}
			if en.n != 0 && q.n != 0 && en.off < q.off+q.n && q.off < en.off+en.n {
				return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "%s at offset %d overlaps item %s at offset %d", where, en.off, q.id, q.off)
			}
		}
		ents = append(ents, en)
		known := !en.user && slices.Contains([]GUID{itemFileParameters, itemVirtualDiskSize, itemVirtualDiskID, itemLogicalSectorSize, itemPhysicalSectorSize, itemParentLocator}, en.id)
		if !known && en.required {
			return nil, disk.Errorf("vhdx", disk.ErrUnsupported, "%s: unknown metadata item marked required", where)
		}
		if en.user {
			md.userItems++
		}
		if !known {
			continue
		}
		item := make([]byte, en.n)
		if err := disk.ReadFull(s, "vhdx", where, item, r.Offset+int64(en.off)); err != nil {
			return nil, err
		}
		if err := md.decode(en.id, item, where); err != nil {
			return nil, err
		}
	}
	return md, md.check()
}

// decode stores the known system item id.
func (md *metadata) decode(id GUID, item []byte, where string) error {
	need := map[GUID]int{itemFileParameters: 8, itemVirtualDiskSize: 8, itemVirtualDiskID: 16, itemLogicalSectorSize: 4, itemPhysicalSectorSize: 4}[id]
	if len(item) < need {
		return disk.Errorf("vhdx", disk.ErrCorrupt, "%s: %d bytes, want %d", where, len(item), need)
	}
	switch id {
	case itemFileParameters:
		md.blockSize = le.Uint32(item)
		flags := le.Uint32(item[4:])
		md.leaveAllocated, md.hasParent = flags&flagLeaveBlocksAllocated != 0, flags&flagHasParent != 0
	case itemVirtualDiskSize:
		md.virtualSize = le.Uint64(item)
	case itemVirtualDiskID:
		md.virtualDiskID, md.hasDiskID = guidAt(item, 0), true
	case itemLogicalSectorSize:
		md.logicalSectorSize = le.Uint32(item)
	case itemPhysicalSectorSize:
		md.physicalSectorSize = le.Uint32(item)
	case itemParentLocator:
		loc, err := parseLocator(item, where)
		if err != nil {
			return err
		}
		md.locator = loc
	}
	md.present[id] = true
	return nil
}

// check applies the rules of MS-VHDX 2.6.2 and CVE-2014-0148's bounds to
// the items read.
func (md *metadata) check() error {
	switch {
	case !md.present[itemFileParameters]:
		return disk.Errorf("vhdx", disk.ErrCorrupt, "metadata has no file parameters item")
	case !md.present[itemVirtualDiskSize]:
		return disk.Errorf("vhdx", disk.ErrCorrupt, "metadata has no virtual disk size item")
	case !md.present[itemLogicalSectorSize]:
		return disk.Errorf("vhdx", disk.ErrCorrupt, "metadata has no logical sector size item")
	case md.blockSize < minBlockSize || md.blockSize > maxBlockSize || md.blockSize&(md.blockSize-1) != 0:
		return disk.Errorf("vhdx", disk.ErrCorrupt, "block size %d is not a power of two from 1 MiB to 256 MiB (CVE-2014-0148)", md.blockSize)
	case md.logicalSectorSize != 512 && md.logicalSectorSize != 4096:
		return disk.Errorf("vhdx", disk.ErrCorrupt, "logical sector size %d, want 512 or 4096 (CVE-2014-0148)", md.logicalSectorSize)
	case md.physicalSectorSize != 0 && md.physicalSectorSize != 512 && md.physicalSectorSize != 4096:
		return disk.Errorf("vhdx", disk.ErrCorrupt, "physical sector size %d, want 512 or 4096", md.physicalSectorSize)
	case md.virtualSize%uint64(md.logicalSectorSize) != 0:
		return disk.Errorf("vhdx", disk.ErrCorrupt, "virtual size %d is not a multiple of the %d-byte logical sector", md.virtualSize, md.logicalSectorSize)
	case md.virtualSize > MaxVirtualSize:
		return disk.Errorf("vhdx", disk.ErrTooLarge, "virtual size %d exceeds the format's 64 TiB", md.virtualSize)
	case md.hasParent && md.locator == nil:
		return disk.Errorf("vhdx", disk.ErrCorrupt, "differencing disk (HasParent) without a parent locator")
	}
	return nil
}

// chunkRatio is the number of payload blocks one sector bitmap block
// covers: 2^23 sectors divided by the sectors of a block.
func (md *metadata) chunkRatio() uint64 {
	return (1 << 23) * uint64(md.logicalSectorSize) / uint64(md.blockSize)
}

// parseLocator decodes a parent locator item (MS-VHDX 2.6.2.6).
func parseLocator(item []byte, where string) (*ParentLocator, error) {
	if len(item) < 20 {
		return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "%s: parent locator of %d bytes, shorter than its 20-byte header", where, len(item))
	}
	loc := &ParentLocator{Type: guidAt(item, 0), Entries: map[string]string{}}
	n := int(le.Uint16(item[18:]))
	if 20+12*n > len(item) {
		return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "%s: %d key/value entries do not fit in %d bytes", where, n, len(item))
	}
	str := func(off uint32, n uint16, what string, i int) (string, error) {
		if off == 0 || n == 0 || n%2 != 0 || uint64(off)+uint64(n) > uint64(len(item)) {
			return "", disk.Errorf("vhdx", disk.ErrCorrupt, "%s: parent locator entry %d: %s of %d bytes at offset %d outside the %d-byte item", where, i, what, n, off, len(item))
		}
		return disk.DecodeUTF16(item[off:off+uint32(n)], le), nil
	}
	for i := range n {
		e := item[20+12*i:]
		k, err := str(le.Uint32(e), le.Uint16(e[8:]), "key", i)
		if err != nil {
			return nil, err
		}
		v, err := str(le.Uint32(e[4:]), le.Uint16(e[10:]), "value", i)
		if err != nil {
			return nil, err
		}
		if _, dup := loc.Entries[k]; dup {
			return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "%s: parent locator key %q appears twice", where, k)
		}
		loc.Entries[k] = v
	}
	return loc, nil
}

// describe renders the locator's paths for a message.
func (loc *ParentLocator) describe() string {
	var parts []string
	for _, k := range []string{"parent_linkage", "parent_linkage2", "relative_path", "volume_path", "absolute_win32_path"} {
		if v, ok := loc.Entries[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %q", k, v))
		}
	}
	if len(parts) == 0 {
		return "no known locator entries"
	}
	return strings.Join(parts, ", ")
}
