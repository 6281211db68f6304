package main

import (
	"strings"

	"github.com/diskport/diskport/disk"
)

// qemuInfo is the JSON document of `diskport info --output=json`: the keys
// and structure of `qemu-img info --output=json`, so scripts written for
// qemu-img read it unchanged, with diskport's own fields under "diskport".
type qemuInfo struct {
	Filename    string `json:"filename"`
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
	// ActualSize is the host storage the image takes
	// ([disk.Info.AllocatedBytes]).
	ActualSize     int64         `json:"actual-size"`
	ClusterSize    int64         `json:"cluster-size,omitempty"`
	DirtyFlag      bool          `json:"dirty-flag"`
	FormatSpecific *qemuSpecific `json:"format-specific,omitempty"`
	Diskport       infoExtras    `json:"diskport"`
}

// qemuSpecific is qemu-img's "format-specific" object: the format and its
// own fields (diskport's [disk.Info.Specific], keys in qemu's kebab-case).
type qemuSpecific struct {
	Type string         `json:"type"`
	Data map[string]any `json:"data"`
}

// infoExtras are the fields of `diskport info --output=json` qemu-img does
// not have.
type infoExtras struct {
	Subformat      string `json:"subformat,omitempty"`
	FileSize       int64  `json:"file-size"`
	AllocatedBytes int64  `json:"allocated-bytes"`
	// BlocksChecked is false: info reads the tables, not the blocks
	// (`diskport check` reads every block).
	BlocksChecked bool `json:"blocks-checked"`
	// Appliance describes the OVA an image is a disk of (its virtual
	// system and disks); nil for other images.
	Appliance any `json:"appliance,omitempty"`
}

// qemuInfoOf returns i in the shape of `qemu-img info --output=json` for
// the image at filename.
func qemuInfoOf(i disk.Info, filename string) qemuInfo {
	q := qemuInfo{
		Filename:    filename,
		Format:      i.Format,
		VirtualSize: i.VirtualSize,
		ActualSize:  i.AllocatedBytes,
		ClusterSize: i.ClusterSize,
		Diskport:    infoExtras{Subformat: i.Subformat, FileSize: i.FileSize, AllocatedBytes: i.AllocatedBytes},
	}
	if len(i.Specific) > 0 {
		q.FormatSpecific = &qemuSpecific{Type: i.Format, Data: kebab(i.Specific).(map[string]any)}
	}
	return q
}

// kebab returns v with every map key's underscores turned into hyphens.
func kebab(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[strings.ReplaceAll(k, "_", "-")] = kebab(x)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = kebab(x)
		}
		return s
	case []map[string]any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = kebab(x)
		}
		return s
	}
	return v
}

// qemuMapEntry is one entry of `diskport map --output=json`, with the keys
// of `qemu-img map --output=json` (offset only where the range maps to
// the image file, as qemu-img writes it) and diskport's own under
// "diskport".
type qemuMapEntry struct {
	Start  int64 `json:"start"`
	Length int64 `json:"length"`
	// Depth is the layer of the chain the data comes from; diskport
	// reports 0, the image itself, for every run.
	Depth int `json:"depth"`
	// Present is true for data, and for zeros in a RAW file (which has
	// every byte), false for unallocated ranges of a sparse format.
	Present  bool      `json:"present"`
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
	// File names the storage holding a stored run (an extent file).
	File string `json:"file,omitempty"`
}

// qemuMapEntryOf returns e as an entry of `qemu-img map --output=json` of
// an image of the given format ([disk.Info.Format]).
func qemuMapEntryOf(e disk.Extent, format string) qemuMapEntry {
	m := qemuMapEntry{Start: e.Offset, Length: e.Length, Data: e.Kind == disk.Data, Zero: e.Kind == disk.Zero}
	m.Present = m.Data || format == "raw"
	switch {
	case e.Stored != nil:
		o := e.StoredOffset
		m.Offset = &o
		m.Diskport = &mapExtra{File: e.Stored.Name()}
	case format == "raw":
		o := e.Offset
		m.Offset = &o
	}
	if e.Compressed {
		m.Diskport = &mapExtra{Compressed: true}
	}
	return m
}
