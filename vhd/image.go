package vhd

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/mapped"
)

// DefaultMaxVirtualSize is the virtual size limit when Options leaves it
// zero: 0xff000000 sectors (2040 GiB), the largest VHD qemu opens and the
// largest dynamic VHD the format describes.
const DefaultMaxVirtualSize = 0xff000000 * disk.SectorSize

// Options control what an image may reference and how large it may be.
type Options struct {
	// Parent is the already-opened parent image of a differencing disk.
	// When nil, a differencing disk is refused with disk.ErrUnsafe naming
	// the parent (from the header's parent name and locators). When it is
	// a *vhd.Image its unique id must equal the child's parent unique id,
	// else Open fails with disk.ErrUnsafe: reading through the wrong parent
	// would silently mix two unrelated disks. Another disk.Image (a parent
	// converted to raw, say) is taken on the caller's word. A parent given
	// to a fixed or dynamic disk, which has none, is refused with
	// disk.ErrUnsafe.
	Parent disk.Image
	// MaxVirtualSize caps the virtual size; 0 means DefaultMaxVirtualSize,
	// and values above 2^62 count as 2^62. A larger disk is refused with
	// disk.ErrTooLarge.
	MaxVirtualSize int64
}

// An Image is an open VHD: fixed, dynamic or differencing. It implements
// disk.Image and is safe for concurrent use.
type Image struct {
	s      disk.Storage
	f      *footer
	footAt int64 // where the footer used was read
	h      *header
	locs   []Locator
	parent disk.Image
	core   *mapped.Image // ReadAt, Extents and Close over runMap

	size     int64 // virtual size: current size rounded up to a sector
	dataSize int64 // the footer's current size: bytes past it read as zeros

	// Dynamic and differencing disks.
	bat        []uint32
	blockSize  int64
	bitmapLen  int64 // bytes of a block's sector bitmap on disk
	allocated  int64 // bytes of host storage in use
	bitmaps    []atomic.Pointer[blockBits]
	footerNote string // why the offset-0 copy of the footer is in use
}

// Probe reports whether s looks like a VHD: a "conectix" cookie at offset 0
// (the footer copy of a dynamic or differencing disk), or a footer with a
// valid checksum at the end of s (every VHD; the only mark of a fixed one).
func Probe(s disk.Storage) bool {
	var b [footerSize]byte
	if s.Size() >= 8 {
		if _, err := s.ReadAt(b[:8], 0); err == nil && string(b[:8]) == footerCookie {
			return true
		}
	}
	if s.Size() < footerSize {
		return false
	}
	if err := disk.ReadFull(s, "vhd", "footer", b[:], s.Size()-footerSize); err != nil {
		return false
	}
	_, err := parseFooter(b[:], s.Size()-footerSize)
	return err == nil
}

// Open parses the VHD in s and returns the image. Open reads the footer,
// for dynamic and differencing disks the dynamic header, the parent
// locators and the BAT, and checks every offset against the file before
// use; blocks' sector bitmaps are read when first needed. Errors are
// *disk.Error values of the classes disk.ErrFormatMismatch (no VHD footer),
// disk.ErrCorrupt, disk.ErrUnsupported, disk.ErrTooLarge and disk.ErrUnsafe
// (a differencing disk without its parent, or with the wrong one; a parent
// given to a disk that has none), or I/O errors from s.
//
// The image does not own s or opts.Parent: Close closes neither.
func Open(s disk.Storage, opts Options) (*Image, error) {
	maxSize := opts.MaxVirtualSize
	if maxSize <= 0 {
		maxSize = DefaultMaxVirtualSize
	}
	maxSize = min(maxSize, 1<<62) // keep size arithmetic far from overflow
	m := &Image{s: s}
	if err := m.readFooter(); err != nil {
		return nil, err
	}
	if p, ok := opts.Parent.(*Image); ok && p == nil {
		opts.Parent = nil // a nil *Image is no parent
	}
	if opts.Parent != nil && m.f.diskType != TypeDifferencing {
		return nil, disk.Errorf("vhd", disk.ErrUnsafe, "%s: a parent was supplied but the %s disk has none (only a differencing disk has a parent)", s.Name(), typeName(m.f.diskType))
	}
	cur := m.f.currentSize
	if cur > uint64(maxSize) {
		return nil, disk.Errorf("vhd", disk.ErrTooLarge, "current size %d bytes exceeds the %d-byte limit", cur, maxSize)
	}
	m.dataSize = int64(cur)
	m.size = (m.dataSize + disk.SectorSize - 1) / disk.SectorSize * disk.SectorSize
	limit := s.Size() - footerSize
	if m.f.diskType == TypeFixed {
		if m.dataSize > limit {
			return nil, disk.Errorf("vhd", disk.ErrCorrupt, "fixed disk of %d bytes needs a file of %d bytes, have %d (truncated)", m.dataSize, m.dataSize+footerSize, s.Size())
		}
		m.allocated = s.Size()
	} else if err := m.openDynamic(opts.Parent); err != nil {
		return nil, err
	}
	m.core = mapped.New(mapped.Config{Format: "vhd", Name: s.Name(), Size: m.size, Mapper: (*runMap)(m), Parent: m.parent, DataName: "block data"})
	return m, nil
}

// readFooter reads the footer at the end of the file, falling back to the
// copy at offset 0 when the trailing one is missing or damaged and the
// copy is a valid dynamic or differencing footer (as Microsoft's
// specification tells readers to do).
func (m *Image) readFooter() error {
	s := m.s
	size := s.Size()
	var head [8]byte
	if size >= 8 {
		if err := disk.ReadFull(s, "vhd", "footer copy", head[:], 0); err != nil {
			return err
		}
	}
	hasCopy := string(head[:]) == footerCookie
	if size < footerSize {
		if hasCopy {
			return disk.Errorf("vhd", disk.ErrCorrupt, "file of %d bytes is too short to hold a footer (truncated)", size)
		}
		return disk.Errorf("vhd", disk.ErrFormatMismatch, "file of %d bytes is too short to hold a footer", size)
	}
	b := make([]byte, footerSize)
	at := size - footerSize
	if err := disk.ReadFull(s, "vhd", "footer", b, at); err != nil {
		return err
	}
	f, tailErr := parseFooter(b, at)
	if tailErr == nil {
		m.f, m.footAt = f, at
		return nil
	}
	if errors.Is(tailErr, disk.ErrUnsupported) {
		return tailErr // intact, but a variant not read
	}
	if !hasCopy {
		if string(b[:8]) != footerCookie && size > footerSize {
			var c [8]byte
			if err := disk.ReadFull(s, "vhd", "footer", c[:], at+1); err == nil && string(c[:]) == footerCookie {
				return disk.Errorf("vhd", disk.ErrUnsupported, "511-byte footer at byte %d (made before Virtual PC 2004)", at+1)
			}
		}
		return tailErr
	}
	if err := disk.ReadFull(s, "vhd", "footer copy", b, 0); err != nil {
		return err
	}
	f, copyErr := parseFooter(b, 0)
	if copyErr != nil {
		class := disk.ErrCorrupt
		if errors.Is(copyErr, disk.ErrUnsupported) {
			class = disk.ErrUnsupported
		}
		return disk.Errorf("vhd", class, "%v; and the copy at offset 0: %v", strings.TrimPrefix(tailErr.Error(), "vhd: "), strings.TrimPrefix(copyErr.Error(), "vhd: "))
	}
	if f.diskType == TypeFixed {
		return disk.Errorf("vhd", disk.ErrCorrupt, "%v; the copy at offset 0 says fixed, which has no copy", strings.TrimPrefix(tailErr.Error(), "vhd: "))
	}
	m.f, m.footAt = f, 0
	m.footerNote = strings.TrimPrefix(tailErr.Error(), "vhd: ")
	return nil
}

// openDynamic reads the dynamic header, the parent locators and the BAT
// of a dynamic or differencing disk.
func (m *Image) openDynamic(parent disk.Image) error {
	s := m.s
	limit := uint64(s.Size() - footerSize)
	do := m.f.dataOffset
	if do < footerSize {
		return disk.Errorf("vhd", disk.ErrCorrupt, "dynamic header at byte %d overlaps the footer copy at byte 0", do)
	}
	if do > limit || limit-do < headerSize {
		return disk.Errorf("vhd", disk.ErrCorrupt, "dynamic header at byte %d (%d bytes) past end of file (footer at byte %d)", do, headerSize, limit)
	}
	b := make([]byte, headerSize)
	if err := disk.ReadFull(s, "vhd", "dynamic header", b, int64(do)); err != nil {
		return err
	}
	h, err := parseHeader(b, int64(do))
	if err != nil {
		return err
	}
	m.h = h
	m.blockSize = int64(h.blockSize)
	m.bitmapLen = int64(h.bitmapBytes())
	if m.f.diskType == TypeDifferencing {
		if m.locs, err = readLocators(s, h, limit); err != nil {
			return err
		}
		if err := m.checkParent(parent); err != nil {
			return err
		}
	}
	bat, blockBytes, err := loadBAT(s, h, layout{
		fileSize:   uint64(s.Size()),
		limit:      limit,
		dataOffset: do,
		dataSize:   uint64(m.dataSize),
		locators:   m.locs,
	})
	if err != nil {
		return err
	}
	m.bat = bat
	m.bitmaps = make([]atomic.Pointer[blockBits], len(bat))
	m.allocated = 2*footerSize + headerSize + int64(4*uint64(h.maxTableEntries)) + int64(blockBytes)
	for _, l := range m.locs {
		m.allocated += l.Length
	}
	return nil
}

// checkParent refuses a differencing disk without a parent, or with a VHD
// parent whose unique id is not the one the child names.
func (m *Image) checkParent(parent disk.Image) error {
	if parent == nil {
		var sb strings.Builder
		fmt.Fprintf(&sb, "differencing disk needs its parent %q (unique id %s", m.h.parentName, formatUUID(m.h.parentUniqueID))
		for _, l := range m.locs {
			if l.Path != "" {
				fmt.Fprintf(&sb, ", %s locator %q", l.Platform, l.Path)
			}
		}
		sb.WriteString("); pass the opened parent in Options.Parent")
		return disk.Errorf("vhd", disk.ErrUnsafe, "%s", sb.String())
	}
	if p, ok := parent.(*Image); ok && p.UniqueID() != m.h.parentUniqueID {
		return disk.Errorf("vhd", disk.ErrUnsafe, "parent %s has unique id %s, the differencing disk wants %s (%q)", p.s.Name(), formatUUID(p.UniqueID()), formatUUID(m.h.parentUniqueID), m.h.parentName)
	}
	m.parent = parent
	return nil
}

// Size returns the virtual size: the footer's current size, rounded up to
// a whole sector.
func (m *Image) Size() int64 { return m.size }

// Close marks the image closed. It closes neither the storage nor the
// parent, which belong to the caller.
func (m *Image) Close() error { return m.core.Close() }

// DiskType returns the footer's disk type: TypeFixed, TypeDynamic or
// TypeDifferencing.
func (m *Image) DiskType() uint32 { return m.f.diskType }

// UniqueID returns the footer's unique id, which a differencing child
// names as its parent unique id.
func (m *Image) UniqueID() [16]byte { return m.f.uniqueID }

// ParentUniqueID returns the unique id of the parent a differencing disk
// names; zero for other disks.
func (m *Image) ParentUniqueID() [16]byte {
	if m.h == nil || m.f.diskType != TypeDifferencing {
		return [16]byte{}
	}
	return m.h.parentUniqueID
}

// ParentName returns the parent's name from the dynamic header (UTF-16
// big-endian, often a full Windows path) of a differencing disk; empty
// for other disks.
func (m *Image) ParentName() string {
	if m.h == nil || m.f.diskType != TypeDifferencing {
		return ""
	}
	return m.h.parentName
}

// ParentLocators returns the parent locators of a differencing disk.
func (m *Image) ParentLocators() []Locator { return slices.Clone(m.locs) }

// CHSSize returns the size in bytes the footer's geometry describes:
// cylinders × heads × sectors per track × 512. Some readers (qemu for
// Virtual PC and qemu-made disks) take it as the virtual size.
func (m *Image) CHSSize() int64 { return int64(m.f.chsSectors()) * disk.SectorSize }

// CurrentSize returns the footer's current size in bytes, exactly as
// stored (Size rounds it up to a sector).
func (m *Image) CurrentSize() int64 { return m.dataSize }

// QemuSize returns the virtual size qemu-img 7.2 reports for this disk:
// the CHS size for creators other than "win ", "qem2", "d2v ", "CTXS" and
// "tap\0" unless the geometry is the 65535/16/255 maximum, else the current
// size rounded down to a sector.
func (m *Image) QemuSize() int64 { return int64(m.f.qemuSectors()) * disk.SectorSize }

// CreatorApp returns the footer's creator application, the four bytes as
// stored ("win ", "vpc ", "qemu", "d2v\x00", ...).
func (m *Image) CreatorApp() string { return string(m.f.creatorApp[:]) }

// BlockSize returns the block size of a dynamic or differencing disk; 0 for
// a fixed disk.
func (m *Image) BlockSize() int64 { return m.blockSize }

// Info describes the image.
func (m *Image) Info() disk.Info {
	f := m.f
	sp := map[string]any{
		"creator_app":     printable(bytes.TrimRight(f.creatorApp[:], " \x00")),
		"creator_version": f.creatorVersionString(),
		"creator_os":      printable(bytes.TrimRight(f.creatorOS[:], " \x00")),
		"disk_type":       typeName(f.diskType),
		"current_size":    int64(f.currentSize),
		"original_size":   int64(f.originalSize),
		"chs_size":        m.CHSSize(),
		"qemu_size":       m.QemuSize(),
		"geometry": map[string]any{
			"cylinders":         int(f.cylinders),
			"heads":             int(f.heads),
			"sectors_per_track": int(f.sectors),
		},
		"unique_id":   formatUUID(f.uniqueID),
		"saved_state": f.savedState != 0,
		"timestamp":   vhdTime(f.timestamp).Format(time.RFC3339),
		"temporary":   f.features&1 != 0,
	}
	if m.footerNote != "" {
		sp["footer"] = "copy at offset 0 (the trailing footer is damaged: " + m.footerNote + ")"
	}
	if m.h != nil {
		sp["bat_entries"] = int64(m.h.maxTableEntries)
		sp["allocated_blocks"] = m.allocatedBlocks()
	}
	if f.diskType == TypeDifferencing {
		sp["parent_name"] = m.h.parentName
		sp["parent_unique_id"] = formatUUID(m.h.parentUniqueID)
		sp["parent_timestamp"] = vhdTime(m.h.parentTimestamp).Format(time.RFC3339)
		sp["parent_locators"] = slices.Clone(m.locs)
	}
	return disk.Info{
		Format:         "vhd",
		Subformat:      typeName(f.diskType),
		VirtualSize:    m.size,
		FileSize:       m.s.Size(),
		AllocatedBytes: m.allocated,
		ClusterSize:    m.blockSize,
		Specific:       sp,
	}
}

// allocatedBlocks counts the BAT entries that point at a block.
func (m *Image) allocatedBlocks() int64 {
	var n int64
	for _, e := range m.bat {
		if e != unallocated {
			n++
		}
	}
	return n
}
