package vhdx

import (
	"maps"
	"slices"

	"github.com/diskport/diskport/disk"
)

// Info describes the image. Specific carries the creator, the header and
// region table used, the log ("log_replayed", and what the replay wrote),
// the file parameters, the sector sizes, the payload blocks by state and,
// for a differencing disk, the parent locator.
func (m *Image) Info() disk.Info {
	md := m.md
	sp := map[string]any{
		"creator":                m.creator,
		"header":                 m.headerNote,
		"header_sequence":        int64(m.h.sequence),
		"file_write_guid":        m.h.fileWriteGUID.String(),
		"data_write_guid":        m.h.dataWriteGUID.String(),
		"log_guid":               m.h.logGUID.String(),
		"log_offset":             int64(m.h.logOffset),
		"log_length":             int64(m.h.logLength),
		"log_replayed":           m.rep.replayed,
		"log":                    m.rep.note,
		"regions":                slices.Clone(m.regs),
		"block_size":             m.blockSize,
		"logical_sector_size":    m.sectorSize,
		"leave_blocks_allocated": md.leaveAllocated,
		"has_parent":             md.hasParent,
		"chunk_ratio":            m.chunkRatio,
		"blocks":                 maps.Clone(m.bat.counts),
	}
	if m.regionNote != "" {
		sp["region_table"] = m.regionNote
	}
	if md.physicalSectorSize != 0 {
		sp["physical_sector_size"] = int64(md.physicalSectorSize)
	}
	if md.hasDiskID {
		sp["virtual_disk_id"] = md.virtualDiskID.String()
	}
	if md.userItems > 0 {
		sp["user_metadata_items"] = md.userItems
	}
	if m.rep.replayed {
		sp["replayed_file_size"] = m.rep.newSize
	}
	if loc := m.Locator(); loc != nil {
		sp["parent_locator_type"] = loc.Type.String()
		sp["parent_locator"] = loc.Entries
	}
	return disk.Info{
		Format:         "vhdx",
		Subformat:      m.subformat(),
		VirtualSize:    m.size,
		FileSize:       m.s.Size(),
		AllocatedBytes: m.allocated,
		ClusterSize:    m.blockSize,
		Specific:       sp,
	}
}
