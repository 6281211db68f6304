package vhdx

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/diskport/diskport/disk"
)

// The header section's layout (MS-VHDX 2.2): the file type identifier,
// two headers and two region tables, each 64 KiB apart, in the first MiB.
const (
	signature       = "vhdxfile"
	header1At       = 64 << 10
	header2At       = 128 << 10
	headerSize      = 4 << 10 // checksummed bytes of a header
	regionTable1At  = 192 << 10
	regionTable2At  = 256 << 10
	regionTableSize = 64 << 10
	headerSection   = 1 << 20 // nothing else may start before this
	mib             = 1 << 20
	maxRegions      = 2047
)

// A header is one of the two VHDX headers (MS-VHDX 2.2.2).
type header struct {
	at             int64 // where it was read
	sequence       uint64
	fileWriteGUID  GUID
	dataWriteGUID  GUID
	logGUID        GUID
	logVersion     uint16
	version        uint16
	logLength      uint32
	logOffset      uint64
	raw            []byte // the 4 KiB, for comparing the two headers
	checksumStored uint32
}

// parseHeader decodes and checks the 4 KiB header read at at: signature
// "head" and CRC-32C.
func parseHeader(b []byte, at int64) (*header, error) {
	if string(b[:4]) != "head" {
		return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "header at byte %d: signature %q, want \"head\"", at, string(b[:4]))
	}
	if got, want := le.Uint32(b[4:]), checksum(b[:headerSize], 4); got != want {
		return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "header at byte %d: checksum %08x, computed %08x", at, got, want)
	}
	return &header{
		at:             at,
		sequence:       le.Uint64(b[8:]),
		fileWriteGUID:  guidAt(b, 16),
		dataWriteGUID:  guidAt(b, 32),
		logGUID:        guidAt(b, 48),
		logVersion:     le.Uint16(b[64:]),
		version:        le.Uint16(b[66:]),
		logLength:      le.Uint32(b[68:]),
		logOffset:      le.Uint64(b[72:]),
		raw:            b[:headerSize],
		checksumStored: le.Uint32(b[4:]),
	}, nil
}

// readFileIdentifier checks the signature at offset 0 and returns the
// creator string that follows it (UTF-16LE, up to 512 bytes).
func readFileIdentifier(s disk.Storage) (string, error) {
	if s.Size() < 8 {
		return "", disk.Errorf("vhdx", disk.ErrFormatMismatch, "file of %d bytes is too short for a VHDX signature", s.Size())
	}
	var b [8 + 512]byte
	if err := disk.ReadFull(s, "vhdx", "file identifier", b[:8], 0); err != nil {
		return "", err
	}
	if string(b[:8]) != signature {
		return "", disk.Errorf("vhdx", disk.ErrFormatMismatch, "signature %q at byte 0, want %q", string(b[:8]), signature)
	}
	if s.Size() < headerSection {
		return "", disk.Errorf("vhdx", disk.ErrCorrupt, "file of %d bytes is shorter than the %d-byte header section (truncated)", s.Size(), headerSection)
	}
	if err := disk.ReadFull(s, "vhdx", "file identifier", b[8:], 8); err != nil {
		return "", err
	}
	return disk.DecodeUTF16(b[8:], le), nil
}

// readHeaders reads both headers and picks the current one: the valid one,
// or of two valid ones the one with the higher sequence number. Two valid
// headers with the same sequence number must be identical (Disk2vhd writes
// them so); otherwise the file is corrupt. note says what was chosen and
// why, for Info.
func readHeaders(s disk.Storage) (h *header, note string, err error) {
	var hs [2]*header
	var errs [2]error
	for i, at := range []int64{header1At, header2At} {
		b := make([]byte, headerSize)
		if errs[i] = disk.ReadFull(s, "vhdx", fmt.Sprintf("header %d", i+1), b, at); errs[i] != nil {
			var de *disk.Error
			if !errors.As(errs[i], &de) {
				return nil, "", errs[i] // an I/O error
			}
			continue
		}
		hs[i], errs[i] = parseHeader(b, at)
	}
	switch {
	case hs[0] == nil && hs[1] == nil:
		return nil, "", disk.Errorf("vhdx", disk.ErrCorrupt, "no valid header: %s; %s", trimFormat(errs[0]), trimFormat(errs[1]))
	case hs[1] == nil:
		h, note = hs[0], "header 1 (header 2: "+trimFormat(errs[1])+")"
	case hs[0] == nil:
		h, note = hs[1], "header 2 (header 1: "+trimFormat(errs[0])+")"
	case hs[0].sequence > hs[1].sequence:
		h, note = hs[0], "header 1 (higher sequence number)"
	case hs[1].sequence > hs[0].sequence:
		h, note = hs[1], "header 2 (higher sequence number)"
	case bytes.Equal(hs[0].raw, hs[1].raw):
		h, note = hs[0], "header 1 (both identical, same sequence number)"
	default:
		return nil, "", disk.Errorf("vhdx", disk.ErrCorrupt, "headers 1 and 2 have the same sequence number %d but differ", hs[0].sequence)
	}
	if h.version != 1 {
		return nil, "", disk.Errorf("vhdx", disk.ErrUnsupported, "header at byte %d: version %d, want 1", h.at, h.version)
	}
	if !h.logGUID.IsZero() && h.logVersion != 0 {
		return nil, "", disk.Errorf("vhdx", disk.ErrUnsupported, "header at byte %d: log version %d, want 0", h.at, h.logVersion)
	}
	return h, note, nil
}

// A Region is an entry of the region table: a structure of the file.
type Region struct {
	GUID     GUID   `json:"guid"`
	Offset   int64  `json:"offset"`
	Length   int64  `json:"length"`
	Required bool   `json:"required"`
	Name     string `json:"name"` // "BAT", "metadata" or "unknown"
}

// regionName names the regions this reader knows.
func regionName(g GUID) string {
	switch g {
	case regionBAT:
		return "BAT"
	case regionMetadata:
		return "metadata"
	}
	return "unknown"
}

// parseRegionTable decodes and checks the 64 KiB region table read at at.
func parseRegionTable(b []byte, at int64, fileSize int64) ([]Region, error) {
	if string(b[:4]) != "regi" {
		return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "region table at byte %d: signature %q, want \"regi\"", at, string(b[:4]))
	}
	if got, want := le.Uint32(b[4:]), checksum(b[:regionTableSize], 4); got != want {
		return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "region table at byte %d: checksum %08x, computed %08x", at, got, want)
	}
	n := le.Uint32(b[8:])
	if n > maxRegions {
		return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "region table at byte %d: %d entries, at most %d allowed", at, n, maxRegions)
	}
	regs := make([]Region, 0, n)
	for i := range int(n) {
		e := b[16+32*i:]
		r := Region{GUID: guidAt(e, 0), Length: int64(le.Uint32(e[24:])), Required: le.Uint32(e[28:])&1 != 0}
		r.Name = regionName(r.GUID)
		off := le.Uint64(e[16:])
		where := fmt.Sprintf("region table at byte %d: entry %d (%s %s)", at, i, r.Name, r.GUID)
		switch {
		case off < headerSection || off%mib != 0:
			return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "%s: offset %d is not a multiple of 1 MiB past the header section", where, off)
		case r.Length == 0 || r.Length%mib != 0:
			return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "%s: length %d is not a non-zero multiple of 1 MiB", where, r.Length)
		case off > uint64(fileSize) || uint64(r.Length) > uint64(fileSize)-off:
			return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "%s at byte %d (%d bytes) past end of file (size %d)", where, off, r.Length, fileSize)
		}
		r.Offset = int64(off)
		for _, q := range regs {
			if q.GUID == r.GUID {
				return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "%s: GUID appears twice", where)
			}
			if r.Offset < q.Offset+q.Length && q.Offset < r.Offset+r.Length {
				return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "%s at byte %d overlaps the %s region at byte %d", where, r.Offset, q.Name, q.Offset)
			}
		}
		if r.Name == "unknown" && r.Required {
			return nil, disk.Errorf("vhdx", disk.ErrUnsupported, "%s: unknown region marked required", where)
		}
		regs = append(regs, r)
	}
	return regs, nil
}

// readRegionTables reads both region tables and returns the entries of the
// first valid one; note says which was used and why.
func readRegionTables(s disk.Storage) (regs []Region, note string, err error) {
	var errs [2]error
	for i, at := range []int64{regionTable1At, regionTable2At} {
		b := make([]byte, regionTableSize)
		if err := disk.ReadFull(s, "vhdx", fmt.Sprintf("region table %d", i+1), b, at); err != nil {
			return nil, "", err // inside the header section, which the file holds
		}
		regs, errs[i] = parseRegionTable(b, at, s.Size())
		if errs[i] == nil {
			if i == 1 {
				note = "region table 2 (region table 1: " + trimFormat(errs[0]) + ")"
			}
			return regs, note, nil
		}
		if errors.Is(errs[i], disk.ErrUnsupported) {
			return nil, "", errs[i] // intact, and names what we cannot read
		}
	}
	return nil, "", disk.Errorf("vhdx", disk.ErrCorrupt, "no valid region table: %s; %s", trimFormat(errs[0]), trimFormat(errs[1]))
}

// trimFormat returns err's message without the "vhdx: " prefix.
func trimFormat(err error) string {
	if err == nil {
		return "valid"
	}
	return strings.TrimPrefix(err.Error(), "vhdx: ")
}
