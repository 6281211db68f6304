package vhdx

import (
	"maps"
	"sync/atomic"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/mapped"
)

// Options control what an image may reference and how large it may be.
type Options struct {
	// Parent is the already-opened parent image of a differencing disk.
	// When nil, a differencing disk is refused with disk.ErrUnsafe naming
	// the parent locator's entries; no file is ever opened by name. When
	// it is a *vhdx.Image, its data write GUID must be one the child's
	// parent locator names (parent_linkage or parent_linkage2) and its
	// logical sector size the child's, else Open fails with disk.ErrUnsafe.
	// Another disk.Image (a parent converted to raw, say) is taken on the
	// caller's word. A parent given for a disk that has none is refused
	// with disk.ErrUnsafe.
	Parent disk.Image
	// MaxVirtualSize caps the virtual size; 0 means MaxVirtualSize, the
	// format's 64 TiB. A larger disk is refused with disk.ErrTooLarge.
	MaxVirtualSize int64
}

// An Image is an open VHDX: fixed, dynamic or differencing. It implements
// disk.Image and is safe for concurrent use.
type Image struct {
	s          disk.Storage // the file
	file       disk.Storage // the file as replayed: s, or an overlay
	ov         *overlay     // nil when no log was replayed
	creator    string
	h          *header
	headerNote string
	regs       []Region
	regionNote string
	md         *metadata
	rep        *logReplay
	bat        *batTable
	parent     disk.Image

	size       int64
	blockSize  int64
	sectorSize int64
	chunkRatio int64
	allocated  int64

	bits []atomic.Pointer[sectorBits] // sector bitmaps of partially present blocks, read on first use
	core *mapped.Image                // ReadAt, Extents and Close over runMap
}

// Open parses the VHDX in s and returns the image. Open reads the file
// type identifier, both headers, the log (replaying its active sequence in
// memory when the header names one: s is never written), both region
// tables, the metadata region and the BAT, and checks every offset against
// the file before use; sector bitmaps of partially present blocks are read
// when first needed. Errors are *disk.Error values of the classes
// disk.ErrFormatMismatch (no VHDX signature), disk.ErrCorrupt,
// disk.ErrUnsupported, disk.ErrTooLarge and disk.ErrUnsafe (a differencing
// disk without its parent or with the wrong one, a parent given to a disk
// without one), or I/O errors from s.
//
// The image does not own s or opts.Parent: Close closes neither.
func Open(s disk.Storage, opts Options) (*Image, error) {
	maxSize := opts.MaxVirtualSize
	if maxSize <= 0 || maxSize > MaxVirtualSize {
		maxSize = MaxVirtualSize
	}
	m := &Image{s: s}
	var err error
	if m.creator, err = readFileIdentifier(s); err != nil {
		return nil, err
	}
	if m.h, m.headerNote, err = readHeaders(s); err != nil {
		return nil, err
	}
	if m.file, m.rep, err = replayLog(s, m.h); err != nil {
		return nil, err
	}
	m.ov, _ = m.file.(*overlay)
	if m.regs, m.regionNote, err = readRegionTables(m.file); err != nil {
		return nil, err
	}
	batReg, metaReg, err := m.knownRegions()
	if err != nil {
		return nil, err
	}
	if m.md, err = readMetadata(m.file, metaReg); err != nil {
		return nil, err
	}
	if m.md.virtualSize > uint64(maxSize) {
		return nil, disk.Errorf("vhdx", disk.ErrTooLarge, "virtual size %d bytes exceeds the %d-byte limit", m.md.virtualSize, maxSize)
	}
	m.size = int64(m.md.virtualSize)
	m.blockSize = int64(m.md.blockSize)
	m.sectorSize = int64(m.md.logicalSectorSize)
	m.chunkRatio = int64(m.md.chunkRatio())
	if err := m.checkParent(opts.Parent); err != nil {
		return nil, err
	}
	meta, err := m.metaSpans()
	if err != nil {
		return nil, err
	}
	m.bat, err = loadBAT(m.file, batLayout{
		region:      batReg,
		blockSize:   m.blockSize,
		virtualSize: m.size,
		chunkRatio:  m.chunkRatio,
		diff:        m.md.hasParent,
		fileSize:    m.file.Size(),
		meta:        meta,
	})
	if err != nil {
		return nil, err
	}
	m.bits = make([]atomic.Pointer[sectorBits], len(m.bat.payload))
	m.allocated = m.bat.blockBytes
	for _, sp := range meta {
		m.allocated += sp.end - sp.start
	}
	m.core = mapped.New(mapped.Config{Format: "vhdx", Name: s.Name(), Size: m.size, Mapper: (*runMap)(m), Parent: m.parent, DataName: "block data"})
	return m, nil
}

// knownRegions returns the BAT and metadata regions, which every VHDX has.
func (m *Image) knownRegions() (bat, meta Region, err error) {
	var haveBAT, haveMeta bool
	for _, r := range m.regs {
		switch r.GUID {
		case regionBAT:
			bat, haveBAT = r, true
		case regionMetadata:
			meta, haveMeta = r, true
		}
	}
	if !haveBAT {
		return bat, meta, disk.Errorf("vhdx", disk.ErrCorrupt, "region table has no BAT region")
	}
	if !haveMeta {
		return bat, meta, disk.Errorf("vhdx", disk.ErrCorrupt, "region table has no metadata region")
	}
	return bat, meta, nil
}

// metaSpans returns the structures no block may overlap: the header
// section, the log and every region; the log must overlap no region.
func (m *Image) metaSpans() ([]span, error) {
	meta := []span{{"header section", -1, 0, headerSection}}
	if m.h.logLength > 0 {
		lo, ln := m.h.logOffset, uint64(m.h.logLength)
		if lo < headerSection || lo%mib != 0 || ln%mib != 0 || lo > uint64(m.file.Size()) || ln > uint64(m.file.Size())-lo {
			return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "log at byte %d (%d bytes) is not 1 MiB-aligned inside the file past the header section (size %d)", lo, ln, m.file.Size())
		}
		log := span{"log", -1, int64(lo), int64(lo + ln)}
		for _, r := range m.regs {
			if log.start < r.Offset+r.Length && r.Offset < log.end {
				return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "log at byte %d (%d bytes) overlaps the %s region at byte %d", lo, ln, r.Name, r.Offset)
			}
		}
		meta = append(meta, log)
	}
	for _, r := range m.regs {
		meta = append(meta, span{r.Name + " region", -1, r.Offset, r.Offset + r.Length})
	}
	return meta, nil
}

// checkParent refuses a differencing disk without a parent or with the
// wrong VHDX parent, and a parent given to a disk that has none.
func (m *Image) checkParent(parent disk.Image) error {
	if !m.md.hasParent {
		if parent != nil {
			return disk.Errorf("vhdx", disk.ErrUnsafe, "a parent was given, but %s is a %s disk, which has none", m.s.Name(), m.subformat())
		}
		return nil
	}
	loc := m.md.locator
	if parent == nil {
		return disk.Errorf("vhdx", disk.ErrUnsafe, "differencing disk needs its parent (%s); pass the opened parent in Options.Parent", loc.describe())
	}
	if p, ok := parent.(*Image); ok {
		want := p.DataWriteGUID()
		match := false
		for _, k := range []string{"parent_linkage", "parent_linkage2"} {
			if g, ok := ParseGUID(loc.Entries[k]); ok && g == want {
				match = true
			}
		}
		_, named := loc.Entries["parent_linkage"]
		if named && !match {
			return disk.Errorf("vhdx", disk.ErrUnsafe, "parent %s has data write GUID %s, the differencing disk wants %s", p.s.Name(), want, loc.describe())
		}
		if p.sectorSize != m.sectorSize {
			return disk.Errorf("vhdx", disk.ErrUnsafe, "parent %s has %d-byte logical sectors, the differencing disk %d-byte ones", p.s.Name(), p.sectorSize, m.sectorSize)
		}
	}
	m.parent = parent
	return nil
}

// subformat is "fixed", "dynamic" or "differencing".
func (m *Image) subformat() string {
	switch {
	case m.md.hasParent:
		return "differencing"
	case m.md.leaveAllocated:
		return "fixed"
	}
	return "dynamic"
}

// Size returns the virtual size.
func (m *Image) Size() int64 { return m.size }

// Close marks the image closed. It closes neither the storage nor the
// parent, which belong to the caller.
func (m *Image) Close() error { return m.core.Close() }

// Subformat returns "fixed" (LeaveBlocksAllocated), "differencing"
// (HasParent) or "dynamic".
func (m *Image) Subformat() string { return m.subformat() }

// BlockSize returns the payload block size in bytes.
func (m *Image) BlockSize() int64 { return m.blockSize }

// LogicalSectorSize returns the logical sector size: 512 or 4096.
func (m *Image) LogicalSectorSize() int64 { return m.sectorSize }

// DataWriteGUID returns the current header's data write GUID, which a
// differencing child names as its parent_linkage.
func (m *Image) DataWriteGUID() GUID { return m.h.dataWriteGUID }

// LogReplayed reports whether Open replayed a log in memory.
func (m *Image) LogReplayed() bool { return m.rep.replayed }

// Locator returns the parent locator of a differencing disk, nil for
// other disks.
func (m *Image) Locator() *ParentLocator {
	if m.md.locator == nil || !m.md.hasParent {
		return nil
	}
	return &ParentLocator{Type: m.md.locator.Type, Entries: maps.Clone(m.md.locator.Entries)}
}
