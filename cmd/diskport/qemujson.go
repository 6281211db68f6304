package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/diskport/diskport/disk"
)

// qemuInfo is the JSON document of `diskport info --output=json`: the keys,
// JSON types and values of `qemu-img info --output=json`, so scripts
// written for qemu-img read it unchanged, with every field diskport adds
// under the one "diskport" key. The keys are in the order qemu-img writes
// them.
type qemuInfo struct {
	// BackingFilenameFormat, BackingFilename and FullBackingFilename name
	// a VMDK delta link's parent as qemu-img does: the descriptor's
	// parentFileNameHint, and the hint taken relative to the image's
	// directory. qemu-img reads them from the header without opening the
	// parent; so does diskport (it opens a parent only when --parent
	// names it).
	BackingFilenameFormat string `json:"backing-filename-format,omitempty"`
	VirtualSize           int64  `json:"virtual-size"`
	Filename              string `json:"filename"`
	ClusterSize           int64  `json:"cluster-size,omitempty"`
	// Format is qemu's name of the format: "vpc" for VHD.
	Format string `json:"format"`
	// ActualSize is the host storage the image's files take: st_blocks ×
	// 512 summed over the image file and every extent file it names.
	ActualSize          int64         `json:"actual-size"`
	FormatSpecific      *qemuSpecific `json:"format-specific,omitempty"`
	FullBackingFilename string        `json:"full-backing-filename,omitempty"`
	BackingFilename     string        `json:"backing-filename,omitempty"`
	DirtyFlag           bool          `json:"dirty-flag"`
	Diskport            infoExtras    `json:"diskport"`
}

// qemuSpecific is qemu-img's "format-specific" object, written for the
// formats qemu-img writes one for (VMDK): the format and qemu's fields, in
// qemu's types.
type qemuSpecific struct {
	Type string    `json:"type"`
	Data *qemuVMDK `json:"data"`
}

// qemuVMDK is the "data" of qemu-img's VMDK format-specific object.
type qemuVMDK struct {
	CID        uint32       `json:"cid"`
	ParentCID  uint32       `json:"parent-cid"`
	CreateType string       `json:"create-type"`
	Extents    []qemuExtent `json:"extents"`
}

// qemuExtent is one VMDK extent as qemu-img describes it.
type qemuExtent struct {
	// Compressed is written only when true, as qemu-img writes it.
	Compressed  bool   `json:"compressed,omitempty"`
	VirtualSize int64  `json:"virtual-size"`
	Filename    string `json:"filename"`
	// ClusterSize is the grain size of a sparse extent; absent for flat
	// extents.
	ClusterSize int64 `json:"cluster-size,omitempty"`
	// Format is the extent type of the descriptor's line ("SPARSE",
	// "FLAT", ...), or "" for a sparse file that is the whole image
	// (monolithicSparse, streamOptimized), which has no extent line.
	Format string `json:"format"`
}

// infoExtras are the fields of `diskport info --output=json` qemu-img does
// not have: the "diskport" object.
type infoExtras struct {
	// Subformat is the variant: createType for VMDK, "dynamic",
	// "fixed" or "differencing" for VHD and VHDX.
	Subformat string `json:"subformat,omitempty"`
	// FileSize is the size in bytes of the image's files.
	FileSize int64 `json:"file-size"`
	// AllocatedBytes is the host storage holding image data and metadata,
	// as the reader counts it ([disk.Info.AllocatedBytes]).
	AllocatedBytes int64 `json:"allocated-bytes"`
	// BlocksChecked is false: info reads the tables, not the blocks
	// (`diskport check` reads every block).
	BlocksChecked bool `json:"blocks-checked"`
	// FormatSpecific is everything the reader says of the format
	// ([disk.Info.Specific], keys in kebab-case): for VMDK the version,
	// adapter type, hardware version and each extent's header; for VHD
	// and VHDX, which qemu-img writes no format-specific object for, the
	// footer and headers.
	FormatSpecific map[string]any `json:"format-specific,omitempty"`
	// Appliance describes the OVA an image is a disk of (its virtual
	// system and disks); nil for other images.
	Appliance any `json:"appliance,omitempty"`
}

// qemuFormat returns qemu's name of a diskport format name.
func qemuFormat(format string) string {
	if format == "vhd" {
		return "vpc"
	}
	return format
}

// qemuInfoOf returns i in the shape of `qemu-img info --output=json` for
// the image at filename. onHost says filename is a host file the image
// was opened from (not a manifest's), whose allocation, and its extent
// files', is actual-size.
func qemuInfoOf(i disk.Info, filename string, onHost bool) qemuInfo {
	q := qemuInfo{
		Filename:    filename,
		Format:      qemuFormat(i.Format),
		VirtualSize: i.VirtualSize,
		ActualSize:  i.AllocatedBytes,
		ClusterSize: i.ClusterSize,
		Diskport:    infoExtras{Subformat: i.Subformat, FileSize: i.FileSize, AllocatedBytes: i.AllocatedBytes},
	}
	if len(i.Specific) > 0 {
		q.Diskport.FormatSpecific = kebab(i.Specific)
	}
	files := []string{filename}
	if i.Format == "vmdk" {
		v := vmdkSpecific(i, filename)
		q.FormatSpecific = &qemuSpecific{Type: "vmdk", Data: v}
		q.ClusterSize = v.clusterSize()
		for _, e := range v.Extents {
			files = append(files, e.Filename)
		}
		if hint, _ := i.Specific["parent_file_name_hint"].(string); hint != "" {
			q.BackingFilenameFormat = "vmdk"
			q.BackingFilename = hint
			q.FullBackingFilename = qemuPathCombine(filename, hint)
		}
	}
	if onHost {
		if n, ok := hostAllocation(files); ok {
			q.ActualSize = n
		}
	}
	return q
}

// clusterSize returns the image's cluster size as qemu-img reports it:
// the grain size when every extent is sparse with the same grain, else 0
// (qemu-img writes none).
func (v *qemuVMDK) clusterSize() int64 {
	if len(v.Extents) == 0 {
		return 0
	}
	g := v.Extents[0].ClusterSize
	for _, e := range v.Extents[1:] {
		if e.ClusterSize != g {
			return 0
		}
	}
	return g
}

// vmdkSpecific returns qemu-img's VMDK format-specific data from the
// reader's Specific fields of the image at filename.
func vmdkSpecific(i disk.Info, filename string) *qemuVMDK {
	v := &qemuVMDK{
		CID:        hex32(i.Specific["cid"], 0),
		ParentCID:  hex32(i.Specific["parent_cid"], 0xffffffff),
		CreateType: i.Subformat,
		Extents:    []qemuExtent{},
	}
	exts, _ := i.Specific["extents"].([]map[string]any)
	for _, x := range exts {
		file, _ := x["file"].(string)
		typ, _ := x["type"].(string)
		e := qemuExtent{Filename: file, Format: typ, VirtualSize: toInt64(x["sectors"]) * disk.SectorSize}
		// A sparse file that is the whole image names itself: qemu-img
		// reports it under the image's name, with no extent type.
		if len(exts) == 1 && file == filename {
			e.Format = ""
		} else if file != "" {
			e.Filename = qemuPathCombine(filename, file)
		}
		if g := toInt64(x["grain_size"]); g > 0 {
			e.ClusterSize = g
		}
		e.Compressed, _ = x["compressed"].(bool)
		v.Extents = append(v.Extents, e)
	}
	return v
}

// hex32 parses the hexadecimal string v (a VMDK CID), or returns def.
func hex32(v any, def uint32) uint32 {
	s, _ := v.(string)
	n, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return def
	}
	return uint32(n)
}

// toInt64 returns v, an integer of any Go type, as an int64 (0 if it is
// none).
func toInt64(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int64:
		return n
	case uint32:
		return int64(n)
	case uint64:
		return int64(n)
	case int32:
		return int64(n)
	}
	return 0
}

// qemuPathCombine resolves name relative to the directory of base as
// qemu's path_combine does: an absolute name as it is, else base's
// directory (everything up to its last '/') followed by name, uncleaned.
func qemuPathCombine(base, name string) string {
	if strings.HasPrefix(name, "/") {
		return name
	}
	return base[:strings.LastIndexByte(base, '/')+1] + name
}

// hostAllocation returns the host storage the files take, st_blocks × 512
// each, counting a file named twice once.
func hostAllocation(files []string) (int64, bool) {
	var total int64
	var seen []os.FileInfo
next:
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return 0, false
		}
		for _, s := range seen {
			if os.SameFile(s, st) {
				continue next
			}
		}
		seen = append(seen, st)
		n, ok := disk.AllocatedBytes(st)
		if !ok {
			return 0, false
		}
		total += n
	}
	return total, true
}

// kebab returns the fields m with every map key's underscores turned into
// hyphens, at every depth (through a JSON round trip, so that maps and
// structs of any type come out as JSON objects).
func kebab(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		return m
	}
	var v any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // 64-bit fields stay exact
	if d.Decode(&v) != nil {
		return m
	}
	return kebabValue(v).(map[string]any)
}

func kebabValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[strings.ReplaceAll(k, "_", "-")] = kebabValue(x)
		}
		return m
	case []any:
		for i, x := range v {
			v[i] = kebabValue(x)
		}
	}
	return v
}

// qemuMapEntry is one entry of `diskport map --output=json`, with the keys
// and values of `qemu-img map --output=json`: offset only where the range
// maps to a file uncompressed, as qemu-img writes it; diskport's own under
// "diskport".
type qemuMapEntry struct {
	Start  int64 `json:"start"`
	Length int64 `json:"length"`
	// Depth is the layer of the chain the range comes from: 0 the image,
	// 1 the parent --parent names, and so on.
	Depth int `json:"depth"`
	// Present is qemu-img's: false only where no layer allocates the
	// range, in a format a parent could fill (VMDK). Zeros a raw file's
	// holes, VMDK zeroed grains and VHD or VHDX unallocated blocks define
	// are present.
	Present bool `json:"present"`
	// Zero: the range reads as zeros; with Data, a hole in the host file
	// under allocated image data (qemu-img asks the file system too).
	Zero     bool      `json:"zero"`
	Data     bool      `json:"data"`
	Offset   *int64    `json:"offset,omitempty"`
	Diskport *mapExtra `json:"diskport,omitempty"`
}

// mapExtra is what diskport says of a run beyond qemu-img's keys.
type mapExtra struct {
	// Compressed: the run's bytes are stored compressed (streamOptimized
	// grains), so they have no offset.
	Compressed bool `json:"compressed,omitempty"`
	// File names the storage holding a stored run (an extent file, a
	// parent).
	File string `json:"file,omitempty"`
}

// flatStorage returns the test of whether a stored run of the image i
// describes lies in a flat extent (a fixed VHD, a VMDK FLAT or VMFS
// extent): qemu-img asks the host file system about those, and reports a
// hole in the file as zeros, but not about the grains and blocks of a
// sparse format.
func flatStorage(i disk.Info) func(disk.Storage) bool {
	flat := map[string]bool{}
	if exts, ok := i.Specific["extents"].([]map[string]any); ok && i.Format == "vmdk" {
		for _, x := range exts {
			if _, sparse := x["grain_size"]; !sparse {
				f, _ := x["file"].(string)
				flat[filepath.Base(f)] = true
			}
		}
	}
	fixed := i.Format == "vhd" && i.Subformat == "fixed"
	return func(s disk.Storage) bool { return fixed || flat[filepath.Base(s.Name())] }
}

// qemuMapEntries yields e as entries of `qemu-img map --output=json` of an
// image of the given format ([disk.Info.Format]): a stored run in a flat
// extent is cut where its host file has holes, which read as zeros, as
// qemu-img reports them.
func qemuMapEntries(e disk.Extent, format string, flat func(disk.Storage) bool, yield func(qemuMapEntry)) error {
	m := qemuMapEntry{Start: e.Offset, Length: e.Length, Depth: e.Depth, Data: e.Kind == disk.Data, Zero: e.Kind == disk.Zero}
	m.Present = !e.Unallocated || format != "vmdk"
	if e.Compressed {
		m.Diskport = &mapExtra{Compressed: true}
	}
	if e.Stored == nil {
		if format == "raw" {
			o := e.Offset
			m.Offset = &o
		}
		yield(m)
		return nil
	}
	m.Diskport = &mapExtra{File: e.Stored.Name()}
	sp, sparse := e.Stored.(disk.SparseStorage)
	if !sparse || !flat(e.Stored) {
		o := e.StoredOffset
		m.Offset = &o
		yield(m)
		return nil
	}
	for pos, end := e.StoredOffset, e.StoredOffset+e.Length; pos < end; {
		ds, de, err := sp.NextData(pos)
		if err != nil {
			return err
		}
		ds, de = min(ds, end), min(max(de, ds), end)
		if de <= ds { // no more data: a hole to the end
			ds, de = end, end
		}
		if ds > pos {
			x := m
			x.Start, x.Length, x.Zero = e.Offset+pos-e.StoredOffset, ds-pos, true
			o := pos
			x.Offset = &o
			yield(x)
		}
		if de > ds {
			x := m
			x.Start, x.Length = e.Offset+ds-e.StoredOffset, de-ds
			o := ds
			x.Offset = &o
			yield(x)
		}
		pos = max(de, ds)
	}
	return nil
}
