package vhdx

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strings"
)

// A GUID is a 128-bit identifier as VHDX stores it: Microsoft's mixed-endian
// layout (the first three fields little-endian, the last eight bytes as
// they are).
type GUID [16]byte

// String formats g the canonical way, 8-4-4-4-12 lowercase hex digits.
func (g GUID) String() string {
	return fmt.Sprintf("%08x-%04x-%04x-%s-%s",
		binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]), binary.LittleEndian.Uint16(g[6:]),
		hex.EncodeToString(g[8:10]), hex.EncodeToString(g[10:16]))
}

// IsZero reports whether g is all zeros.
func (g GUID) IsZero() bool { return g == GUID{} }

// ParseGUID parses the canonical form, with or without braces, in either
// case. It returns false when s is not a GUID.
func ParseGUID(s string) (GUID, bool) {
	s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "{"), "}")
	var g GUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, false
	}
	b, err := hex.DecodeString(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36])
	if err != nil {
		return g, false
	}
	binary.LittleEndian.PutUint32(g[0:], binary.BigEndian.Uint32(b[0:]))
	binary.LittleEndian.PutUint16(g[4:], binary.BigEndian.Uint16(b[4:]))
	binary.LittleEndian.PutUint16(g[6:], binary.BigEndian.Uint16(b[6:]))
	copy(g[8:], b[8:])
	return g, true
}

// mustGUID parses a GUID constant of this package.
func mustGUID(s string) GUID {
	g, ok := ParseGUID(s)
	if !ok {
		panic("vhdx: bad GUID constant " + s)
	}
	return g
}

// The GUIDs of the regions and metadata items this reader knows (MS-VHDX
// 2.2.3.2, 2.6.2).
var (
	regionBAT      = mustGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	regionMetadata = mustGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")

	itemFileParameters     = mustGUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	itemVirtualDiskSize    = mustGUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	itemVirtualDiskID      = mustGUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
	itemLogicalSectorSize  = mustGUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	itemPhysicalSectorSize = mustGUID("CDA348C7-445D-4471-9CC9-E9885251C556")
	itemParentLocator      = mustGUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")

	// LocatorTypeVHDX is the parent locator type of a VHDX parent.
	LocatorTypeVHDX = mustGUID("B04AEFB7-D19E-4A81-B789-25B8E9445913")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum returns the CRC-32C of b computed with the four bytes at at
// taken as zero, as every VHDX checksum is.
func checksum(b []byte, at int) uint32 {
	var zero [4]byte
	c := crc32.Update(0, castagnoli, b[:at])
	c = crc32.Update(c, castagnoli, zero[:])
	return crc32.Update(c, castagnoli, b[at+4:])
}

var le = binary.LittleEndian

// guidAt returns the GUID stored at b[off:].
func guidAt(b []byte, off int) GUID {
	var g GUID
	copy(g[:], b[off:off+16])
	return g
}
