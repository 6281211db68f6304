package vhd

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/diskport/diskport/disk"
)

// headerSize is the length of the dynamic disk header.
const headerSize = 1024

// headerCookie opens the dynamic disk header.
const headerCookie = "cxsparse"

// Limits on the block size: a power of two in [minBlockSize, maxBlockSize].
// Microsoft's tools write 2 MiB (and tested 512 KiB); qemu accepts any power
// of two from 512. 256 MiB bounds the per-block sector bitmap to 64 KiB.
const (
	minBlockSize = disk.SectorSize
	maxBlockSize = 256 << 20
)

// maxLocatorData bounds the bytes of one parent locator's data: a path of
// 32 Ki UTF-16 code units.
const maxLocatorData = 64 << 10

// unallocated is the BAT entry of a block not stored in the file.
const unallocated = 0xFFFFFFFF

// Parent locator platform codes.
const (
	platformNone = 0
	platformWi2r = 0x57693272 // "Wi2r", deprecated
	platformWi2k = 0x5769326B // "Wi2k", deprecated
	platformW2ru = 0x57327275 // "W2ru": relative path, UTF-16
	platformW2ku = 0x57326B75 // "W2ku": absolute path, UTF-16
	platformMac  = 0x4D616320 // "Mac ": Mac OS alias blob
	platformMacX = 0x4D616358 // "MacX": file URL, UTF-8
)

// A header is the dynamic disk header of a dynamic or differencing disk.
type header struct {
	tableOffset     uint64
	version         uint32
	maxTableEntries uint32
	blockSize       uint32
	checksum        uint32
	parentUniqueID  [16]byte
	parentTimestamp uint32
	parentName      string // decoded from UTF-16 big-endian
	locators        [8]locatorEntry
}

// A locatorEntry is one of the eight parent locator entries of the header.
type locatorEntry struct {
	code       uint32
	dataSpace  uint32
	dataLength uint32
	dataOffset uint64
}

// A Locator is a parent locator: where a differencing disk's parent was
// when the child was made, as the platform-specific string the header
// points to.
type Locator struct {
	// Platform is the platform code as text: "W2ku", "W2ru", "MacX", ...
	Platform string `json:"platform"`
	// Offset and Length locate the locator data in the file, in bytes.
	Offset int64 `json:"data_offset"`
	Length int64 `json:"data_length"`
	// Path is the decoded string: UTF-16 little-endian for W2ku and W2ru
	// (big-endian after a byte order mark), UTF-8 for MacX and the other
	// codes (the deprecated Wi2k and Wi2r hold ASCII); empty for an opaque
	// Mac alias or bytes that are not text.
	Path string `json:"path,omitempty"`
}

// parseHeader decodes and checks the dynamic disk header read at byte
// where: cookie, checksum, version and block size.
func parseHeader(b []byte, where int64) (*header, error) {
	if string(b[:8]) != headerCookie {
		return nil, disk.Errorf("vhd", disk.ErrCorrupt, "dynamic header at byte %d: cookie %q, want %q", where, b[:8], headerCookie)
	}
	be := binary.BigEndian
	h := &header{
		tableOffset:     be.Uint64(b[16:]),
		version:         be.Uint32(b[24:]),
		maxTableEntries: be.Uint32(b[28:]),
		blockSize:       be.Uint32(b[32:]),
		checksum:        be.Uint32(b[36:]),
		parentTimestamp: be.Uint32(b[56:]),
		parentName:      disk.DecodeUTF16(b[64:576], binary.BigEndian),
	}
	copy(h.parentUniqueID[:], b[40:56])
	for i := range h.locators {
		e := b[576+24*i:]
		h.locators[i] = locatorEntry{
			code:       be.Uint32(e[0:]),
			dataSpace:  be.Uint32(e[4:]),
			dataLength: be.Uint32(e[8:]),
			dataOffset: be.Uint64(e[16:]),
		}
	}
	if sum := checksum(b, 36); sum != h.checksum {
		return nil, disk.Errorf("vhd", disk.ErrCorrupt, "dynamic header at byte %d: checksum %08x, computed %08x", where, h.checksum, sum)
	}
	if h.version>>16 != 1 {
		return nil, disk.Errorf("vhd", disk.ErrUnsupported, "dynamic header at byte %d: header version %#08x, want 1.x", where, h.version)
	}
	bs := h.blockSize
	switch {
	case bs < minBlockSize || bs&(bs-1) != 0:
		return nil, disk.Errorf("vhd", disk.ErrCorrupt, "dynamic header at byte %d: block size %d is not a power of two of at least %d", where, bs, minBlockSize)
	case bs > maxBlockSize:
		return nil, disk.Errorf("vhd", disk.ErrTooLarge, "dynamic header at byte %d: block size %d exceeds the %d limit", where, bs, maxBlockSize)
	}
	return h, nil
}

// bitmapBytes returns the on-disk size of a block's sector bitmap: one bit
// per sector, rounded up to a whole sector.
func (h *header) bitmapBytes() uint64 {
	bytes := (uint64(h.blockSize)/disk.SectorSize + 7) / 8
	return (bytes + disk.SectorSize - 1) / disk.SectorSize * disk.SectorSize
}

// platformName renders a locator platform code as its four characters.
func platformName(code uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], code)
	return printable(b[:])
}

// printable renders b as text, escaping anything not printable ASCII.
func printable(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, `\x%02x`, c)
		}
	}
	return sb.String()
}

// readLocators checks the used parent locator entries of h against the
// file and reads their data. Each must lie inside the file (before the
// trailing footer) and hold at most maxLocatorData bytes.
func readLocators(s disk.Storage, h *header, limit uint64) ([]Locator, error) {
	var out []Locator
	for i, e := range h.locators {
		if e.code == platformNone {
			continue
		}
		name := platformName(e.code)
		if e.dataLength > maxLocatorData {
			return nil, disk.Errorf("vhd", disk.ErrCorrupt, "parent locator %d (%s): data length %d exceeds %d bytes", i, name, e.dataLength, maxLocatorData)
		}
		end := e.dataOffset + uint64(e.dataLength)
		if end < e.dataOffset || end > limit {
			return nil, disk.Errorf("vhd", disk.ErrCorrupt, "parent locator %d (%s): data at byte %d (length %d) past end of file (data ends at %d)", i, name, e.dataOffset, e.dataLength, limit)
		}
		l := Locator{Platform: name, Offset: int64(e.dataOffset), Length: int64(e.dataLength)}
		if e.code != platformMac {
			b := make([]byte, e.dataLength)
			if err := disk.ReadFull(s, "vhd", fmt.Sprintf("parent locator %d (%s)", i, name), b, int64(e.dataOffset)); err != nil {
				return nil, err
			}
			switch e.code {
			case platformMacX:
				l.Path = strings.ToValidUTF8(strings.TrimRight(string(b), "\x00"), "\uFFFD")
			case platformW2ku, platformW2ru:
				if len(b) >= 2 && b[0] == 0xFE && b[1] == 0xFF {
					l.Path = disk.DecodeUTF16(b, binary.BigEndian)
				} else {
					l.Path = disk.DecodeUTF16(b, binary.LittleEndian)
				}
			default:
				if utf8.Valid(b) {
					l.Path = strings.TrimRight(string(b), "\x00")
				}
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// marshal encodes h into the first headerSize bytes of b, computing the
// checksum, which it also stores in h. The data offset field, unused, gets
// all 64 bits set: the specification says 0xFFFFFFFF, but Microsoft's
// tools expect all ones (as qemu notes). The parent name is encoded as
// UTF-16 big-endian, cut to its 256 code units.
func (h *header) marshal(b []byte) {
	b = b[:headerSize]
	clear(b)
	be := binary.BigEndian
	copy(b, headerCookie)
	be.PutUint64(b[8:], noDataOffset)
	be.PutUint64(b[16:], h.tableOffset)
	be.PutUint32(b[24:], h.version)
	be.PutUint32(b[28:], h.maxTableEntries)
	be.PutUint32(b[32:], h.blockSize)
	copy(b[40:56], h.parentUniqueID[:])
	be.PutUint32(b[56:], h.parentTimestamp)
	for i, c := range utf16.Encode([]rune(h.parentName)) {
		if i >= 256 {
			break
		}
		be.PutUint16(b[64+2*i:], c)
	}
	for i, l := range h.locators {
		e := b[576+24*i:]
		be.PutUint32(e[0:], l.code)
		be.PutUint32(e[4:], l.dataSpace)
		be.PutUint32(e[8:], l.dataLength)
		be.PutUint64(e[16:], l.dataOffset)
	}
	h.checksum = checksum(b, 36)
	be.PutUint32(b[36:], h.checksum)
}
