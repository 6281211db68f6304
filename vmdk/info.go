package vmdk

import (
	"fmt"

	"github.com/diskport/diskport/disk"
)

// Info describes the image: createType as Subformat, grain size as
// ClusterSize, and in Specific the version, CID, parent CID and hint,
// adapter type, hardware version and one entry per extent.
func (img *Image) Info() disk.Info {
	fileSize := img.src.Size()
	for _, s := range img.opened {
		fileSize += s.Size()
	}
	sp := map[string]any{
		"create_type": img.createType,
		"version":     img.version,
		"cid":         fmt.Sprintf("%08x", img.CID()),
		"parent_cid":  fmt.Sprintf("%08x", img.ParentCID()),
	}
	if d := img.desc; d != nil {
		if d.hasParentHint {
			sp["parent_file_name_hint"] = d.ParentFileNameHint
		}
		if v, ok := d.DDB["adaptertype"]; ok {
			sp["adapter_type"] = v
		}
		if v, ok := d.DDB["virtualhwversion"]; ok {
			sp["hardware_version"] = v
		}
		if d.Encoding != "" {
			sp["encoding"] = d.Encoding
		}
	}
	var cluster int64
	var exts []map[string]any
	for _, e := range img.exts {
		m := map[string]any{
			"access":  e.line.Access,
			"type":    e.line.Type,
			"sectors": e.n / disk.SectorSize,
		}
		if e.line.File != "" {
			m["file"] = e.line.File
		}
		if e.line.HasOffset {
			m["offset"] = e.line.Offset
		}
		if e.se != nil {
			cluster = max(cluster, seGrainSecs*disk.SectorSize)
			m["grain_size"] = seGrainSecs * disk.SectorSize
		}
		if x := e.sp; x != nil {
			cluster = max(cluster, x.grainBytes)
			m["grain_size"] = x.grainBytes
			m["version"] = x.hdr.Version
			m["flags"] = fmt.Sprintf("%#x", x.hdr.Flags)
			m["compressed"] = x.compressed
			if x.kind == magicKDMV {
				m["zeroed_grains"] = x.zeroed
				m["gd_at_end"] = x.footer
			}
			if len(img.exts) == 1 {
				sp["flags"] = fmt.Sprintf("%#x", x.hdr.Flags)
			}
		}
		exts = append(exts, m)
	}
	sp["extents"] = exts
	return disk.Info{
		Format:         formatName,
		Subformat:      img.createType,
		VirtualSize:    img.size,
		FileSize:       fileSize,
		AllocatedBytes: fileSize,
		ClusterSize:    cluster,
		Specific:       sp,
	}
}
