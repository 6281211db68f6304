package vhd

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/diskport/diskport/disk"
)

// footerSize is the length of the hard disk footer.
const footerSize = 512

// footerCookie opens every hard disk footer.
const footerCookie = "conectix"

// Disk types (footer offset 60).
const (
	// TypeFixed is a fixed hard disk: the data, then the footer.
	TypeFixed uint32 = 2
	// TypeDynamic is a dynamic (sparse) hard disk.
	TypeDynamic uint32 = 3
	// TypeDifferencing is a differencing hard disk: a dynamic disk whose
	// absent sectors are read from a parent.
	TypeDifferencing uint32 = 4
)

// timestampBase is the VHD epoch, 2000-01-01 00:00:00 UTC.
var timestampBase = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// A footer is the 512-byte hard disk footer, present at the end of every
// VHD and copied at offset 0 of dynamic and differencing disks.
type footer struct {
	features       uint32
	version        uint32
	dataOffset     uint64
	timestamp      uint32
	creatorApp     [4]byte
	creatorVersion uint32
	creatorOS      [4]byte
	originalSize   uint64
	currentSize    uint64
	cylinders      uint16
	heads          uint8
	sectors        uint8
	diskType       uint32
	checksum       uint32
	uniqueID       [16]byte
	savedState     uint8
}

// checksum returns the one's complement of the byte sum of b, skipping the
// four checksum bytes at at.
func checksum(b []byte, at int) uint32 {
	var sum uint32
	for i, c := range b {
		if i >= at && i < at+4 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}

// parseFooter decodes and checks a footer read at byte where of the file.
// It checks the cookie, the checksum, the version and the disk type; the
// sizes are checked by Open, which knows the limits.
func parseFooter(b []byte, where int64) (*footer, error) {
	if len(b) != footerSize || string(b[:8]) != footerCookie {
		return nil, disk.Errorf("vhd", disk.ErrFormatMismatch, "no %q cookie in the footer at byte %d", footerCookie, where)
	}
	be := binary.BigEndian
	f := &footer{
		features:       be.Uint32(b[8:]),
		version:        be.Uint32(b[12:]),
		dataOffset:     be.Uint64(b[16:]),
		timestamp:      be.Uint32(b[24:]),
		creatorVersion: be.Uint32(b[32:]),
		originalSize:   be.Uint64(b[40:]),
		currentSize:    be.Uint64(b[48:]),
		cylinders:      be.Uint16(b[56:]),
		heads:          b[58],
		sectors:        b[59],
		diskType:       be.Uint32(b[60:]),
		checksum:       be.Uint32(b[64:]),
		savedState:     b[84],
	}
	copy(f.creatorApp[:], b[28:32])
	copy(f.creatorOS[:], b[36:40])
	copy(f.uniqueID[:], b[68:84])
	if sum := checksum(b, 64); sum != f.checksum {
		return nil, disk.Errorf("vhd", disk.ErrCorrupt, "footer at byte %d: checksum %08x, computed %08x", where, f.checksum, sum)
	}
	if f.version>>16 != 1 {
		return nil, disk.Errorf("vhd", disk.ErrUnsupported, "footer at byte %d: file format version %#08x, want 1.x", where, f.version)
	}
	switch f.diskType {
	case TypeFixed, TypeDynamic, TypeDifferencing:
	default:
		return nil, disk.Errorf("vhd", disk.ErrUnsupported, "footer at byte %d: disk type %d (want 2 fixed, 3 dynamic or 4 differencing)", where, f.diskType)
	}
	return f, nil
}

// typeName names a disk type as Info.Subformat does.
func typeName(t uint32) string {
	switch t {
	case TypeFixed:
		return "fixed"
	case TypeDynamic:
		return "dynamic"
	case TypeDifferencing:
		return "differencing"
	}
	return fmt.Sprintf("type %d", t)
}

// chsSectors returns cylinders × heads × sectors per track: the disk size
// in sectors by its geometry.
func (f *footer) chsSectors() uint64 {
	return uint64(f.cylinders) * uint64(f.heads) * uint64(f.sectors)
}

// maxCHSSectors is the largest geometry, 65535 × 16 × 255, which writers
// put in the footer of disks too large to describe by CHS.
const maxCHSSectors = 65535 * 16 * 255

// qemuSectors returns the virtual size in sectors qemu-img 7.2 reports for
// a disk with this footer: the CHS size, unless the creator is one qemu
// knows to use the current size ("win ", "qem2", "d2v ", "CTXS",
// "tap\0") or the geometry is the maximum.
func (f *footer) qemuSectors() uint64 {
	switch string(f.creatorApp[:]) {
	case "win ", "qem2", "d2v ", "CTXS", "tap\x00":
		return f.currentSize / disk.SectorSize
	}
	if chs := f.chsSectors(); chs != maxCHSSectors {
		return chs
	}
	return f.currentSize / disk.SectorSize
}

// creatorVersionString formats the creator version as major.minor.
func (f *footer) creatorVersionString() string {
	return fmt.Sprintf("%d.%d", f.creatorVersion>>16, f.creatorVersion&0xffff)
}

// vhdTime converts a VHD time stamp to a time.
func vhdTime(ts uint32) time.Time {
	return timestampBase.Add(time.Duration(ts) * time.Second)
}

// formatUUID formats 16 bytes as the usual 8-4-4-4-12 hex groups, in the
// order stored.
func formatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Values writers put in the footer.
const (
	// featuresReserved is the feature bit the specification says must
	// always be set.
	featuresReserved = 0x2
	// formatVersion is file format (and dynamic header) version 1.0.
	formatVersion = 0x00010000
	// noDataOffset is the data offset of a fixed disk, which has no
	// dynamic header: all 64 bits set, as qemu and Windows write it.
	noDataOffset = 0xFFFFFFFFFFFFFFFF
)

// marshal encodes f into the first footerSize bytes of b, computing the
// checksum, which it also stores in f.
func (f *footer) marshal(b []byte) {
	b = b[:footerSize]
	clear(b)
	be := binary.BigEndian
	copy(b, footerCookie)
	be.PutUint32(b[8:], f.features)
	be.PutUint32(b[12:], f.version)
	be.PutUint64(b[16:], f.dataOffset)
	be.PutUint32(b[24:], f.timestamp)
	copy(b[28:32], f.creatorApp[:])
	be.PutUint32(b[32:], f.creatorVersion)
	copy(b[36:40], f.creatorOS[:])
	be.PutUint64(b[40:], f.originalSize)
	be.PutUint64(b[48:], f.currentSize)
	be.PutUint16(b[56:], f.cylinders)
	b[58] = f.heads
	b[59] = f.sectors
	be.PutUint32(b[60:], f.diskType)
	copy(b[68:84], f.uniqueID[:])
	b[84] = f.savedState
	f.checksum = checksum(b, 64)
	be.PutUint32(b[64:], f.checksum)
}
