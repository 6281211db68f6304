package vmdk

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/diskport/diskport/disk"
)

// noParentCID is the parentCID of a disk without a parent.
const noParentCID = 0xffffffff

// maxDescriptorLines bounds the lines of a descriptor (VirtualBox stops at
// 1100; a 62 TiB twoGbMaxExtent disk needs about 31000 extent lines).
const maxDescriptorLines = 40000

// A descriptor is a parsed text descriptor, stand-alone or embedded in a
// sparse extent.
type descriptor struct {
	Version            int
	Encoding           string
	CID                uint32
	ParentCID          uint32
	CreateType         string // as written
	ParentFileNameHint string
	hasParentHint      bool
	Extents            []extentLine
	DDB                map[string]string // ddb.* keys without the prefix
	keys               map[string]string // other header keys, lower-cased
}

// An extentLine is one line of the extent description.
type extentLine struct {
	Line      int    // 1-based line number
	Access    string // RW, RDONLY, NOACCESS
	Sectors   int64
	Type      string // FLAT, SPARSE, ZERO, VMFS, VMFSSPARSE, SESPARSE, VMFSRDM, VMFSRAW
	File      string // empty for ZERO
	Offset    int64  // start sector inside File (FLAT)
	HasOffset bool
}

// parseDescriptor parses descriptor text. Embedded descriptors end at the
// first NUL; in a stand-alone descriptor a NUL is corruption.
func parseDescriptor(b []byte, embedded bool) (*descriptor, error) {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		if !embedded && bytes.ContainsFunc(b[i:], func(r rune) bool { return r != 0 }) {
			return nil, disk.Errorf(formatName, disk.ErrCorrupt, "descriptor: NUL byte at offset %d", i)
		}
		b = b[:i]
	}
	if len(b) > maxDescriptorBytes {
		return nil, disk.Errorf(formatName, disk.ErrTooLarge, "descriptor of %d bytes exceeds %d", len(b), maxDescriptorBytes)
	}
	d := &descriptor{ParentCID: noParentCID, DDB: map[string]string{}, keys: map[string]string{}}
	lines := strings.Split(string(b), "\n")
	if len(lines) > maxDescriptorLines {
		return nil, disk.Errorf(formatName, disk.ErrTooLarge, "descriptor has %d lines, more than %d", len(lines), maxDescriptorLines)
	}
	haveVersion, haveCID := false, false
	for i, line := range lines {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.IndexFunc(line, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) >= 0 {
			return nil, disk.Errorf(formatName, disk.ErrCorrupt, "descriptor line %d: control character", n)
		}
		if isExtentLine(line) {
			e, err := parseExtentLine(line, n)
			if err != nil {
				return nil, err
			}
			d.Extents = append(d.Extents, e)
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, disk.Errorf(formatName, disk.ErrCorrupt, "descriptor line %d: neither a key=value pair nor an extent: %.64q", n, line)
		}
		k, v = strings.TrimSpace(k), unquote(strings.TrimSpace(v))
		if k == "" || strings.ContainsAny(k, " \t\"") {
			return nil, disk.Errorf(formatName, disk.ErrCorrupt, "descriptor line %d: bad key %.64q", n, k)
		}
		lk := strings.ToLower(k)
		if ddb, ok := strings.CutPrefix(lk, "ddb."); ok {
			d.DDB[ddb] = v
			continue
		}
		if _, dup := d.keys[lk]; dup {
			if significantKeys[lk] {
				return nil, disk.Errorf(formatName, disk.ErrCorrupt, "descriptor line %d: key %q given twice", n, k)
			}
			continue // the first occurrence counts, as in qemu
		}
		d.keys[lk] = v
		switch lk {
		case "version":
			ver, err := strconv.Atoi(v)
			if err != nil || ver < 1 || ver > 3 {
				return nil, disk.Errorf(formatName, disk.ErrUnsupported, "descriptor line %d: version %.32q (want 1, 2 or 3)", n, v)
			}
			d.Version, haveVersion = ver, true
		case "encoding":
			d.Encoding = v
		case "cid":
			c, err := parseCID(v)
			if err != nil {
				return nil, disk.Errorf(formatName, disk.ErrCorrupt, "descriptor line %d: CID %.32q is not 8 hex digits", n, v)
			}
			d.CID, haveCID = c, true
		case "parentcid":
			c, err := parseCID(v)
			if err != nil {
				return nil, disk.Errorf(formatName, disk.ErrCorrupt, "descriptor line %d: parentCID %.32q is not 8 hex digits", n, v)
			}
			d.ParentCID = c
		case "createtype":
			if len(v) > 64 {
				return nil, disk.Errorf(formatName, disk.ErrCorrupt, "descriptor line %d: createType of %d bytes", n, len(v))
			}
			d.CreateType = v
		case "parentfilenamehint":
			d.ParentFileNameHint, d.hasParentHint = v, true
		case "encryptionkeys":
			return nil, disk.Errorf(formatName, disk.ErrUnsupported, "descriptor line %d: encrypted disk (encryptionKeys)", n)
		}
	}
	if !embedded && !haveVersion {
		return nil, disk.Errorf(formatName, disk.ErrCorrupt, "descriptor has no version line")
	}
	_ = haveCID
	return d, nil
}

// significantKeys are the header keys whose repetition would make the
// descriptor ambiguous.
var significantKeys = map[string]bool{
	"version": true, "cid": true, "parentcid": true, "createtype": true,
	"parentfilenamehint": true, "encryptionkeys": true,
}

// parseCID parses a content ID: up to 8 hex digits.
func parseCID(v string) (uint32, error) {
	c, err := strconv.ParseUint(v, 16, 32)
	return uint32(c), err
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

var accessModes = []string{"RW", "RDONLY", "NOACCESS"}

// isExtentLine reports whether line starts with an access mode and a
// blank.
func isExtentLine(line string) bool {
	for _, a := range accessModes {
		if len(line) > len(a) && strings.EqualFold(line[:len(a)], a) && (line[len(a)] == ' ' || line[len(a)] == '\t') {
			return true
		}
	}
	return false
}

var extentTypes = []string{"FLAT", "SPARSE", "ZERO", "VMFS", "VMFSSPARSE", "SESPARSE", "VMFSRDM", "VMFSRAW"}

// parseExtentLine parses `ACCESS SECTORS TYPE ["FILENAME" [OFFSET]]`.
func parseExtentLine(line string, n int) (extentLine, error) {
	bad := func(why string, args ...any) (extentLine, error) {
		return extentLine{}, disk.Errorf(formatName, disk.ErrCorrupt, "descriptor line %d: invalid extent line (%s): %.80q", n, strings.TrimSpace(fmt.Sprintf(why, args...)), line)
	}
	e := extentLine{Line: n}
	rest := line
	next := func() string {
		rest = strings.TrimLeft(rest, " \t")
		i := strings.IndexAny(rest, " \t")
		if i < 0 {
			i = len(rest)
		}
		f := rest[:i]
		rest = rest[i:]
		return f
	}
	e.Access = strings.ToUpper(next())
	sectors := next()
	s, err := strconv.ParseInt(sectors, 10, 64)
	if err != nil || s < 0 {
		return bad("sector count %.24q", sectors)
	}
	e.Sectors = s
	typ := strings.ToUpper(next())
	known := false
	for _, t := range extentTypes {
		known = known || typ == t
	}
	if !known {
		return extentLine{}, disk.Errorf(formatName, disk.ErrUnsupported, "descriptor line %d: extent type %.24q", n, typ)
	}
	e.Type = typ
	rest = strings.TrimLeft(rest, " \t")
	if rest == "" {
		if typ != "ZERO" {
			return bad("%s extent without a file name", typ)
		}
		return e, nil
	}
	if typ == "ZERO" {
		return bad("ZERO extent with a file name")
	}
	if rest[0] != '"' {
		return bad("file name not quoted")
	}
	end := strings.IndexByte(rest[1:], '"')
	if end < 0 {
		return bad("unterminated file name")
	}
	e.File = rest[1 : 1+end]
	rest = rest[2+end:]
	if f := next(); f != "" {
		off, err := strconv.ParseInt(f, 10, 64)
		if err != nil || off < 0 {
			return bad("offset %.24q", f)
		}
		e.Offset, e.HasOffset = off, true
	}
	if f := next(); f != "" {
		return extentLine{}, disk.Errorf(formatName, disk.ErrUnsupported, "descriptor line %d: extent with device fields (partition UUID / device identifier): %.80q", n, line)
	}
	switch {
	case typ == "FLAT" && !e.HasOffset:
		return bad("FLAT extent without an offset")
	case typ != "FLAT" && e.HasOffset:
		return bad("offset on a %s extent", typ)
	}
	return e, nil
}

// checkExtentName enforces the extent file name policy: a bare file name
// in the descriptor's directory.
func checkExtentName(name string, line int) error {
	switch {
	case name == "" || name == ".":
		return disk.Errorf(formatName, disk.ErrUnsafe, "descriptor line %d: empty extent file name %q", line, name)
	case strings.ContainsAny(name, "/\\:\x00"), strings.Contains(name, ".."):
		return disk.Errorf(formatName, disk.ErrUnsafe, "descriptor line %d: extent file name %q is not a bare file name in the descriptor's directory", line, name)
	case strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return disk.Errorf(formatName, disk.ErrUnsafe, "descriptor line %d: control character in extent file name %q", line, name)
	}
	return nil
}

// createType classes.
var (
	// descriptorTypes are the createTypes a stand-alone descriptor may have.
	descriptorTypes = map[string]string{
		"monolithicflat":       "monolithicFlat",
		"twogbmaxextentsparse": "twoGbMaxExtentSparse",
		"2gbmaxextentsparse":   "twoGbMaxExtentSparse",
		"twogbmaxextentflat":   "twoGbMaxExtentFlat",
		"2gbmaxextentflat":     "twoGbMaxExtentFlat",
		"vmfs":                 "vmfs",
		"vmfsthin":             "vmfsThin",
		"vmfseagerzeroedthick": "vmfsEagerZeroedThick",
		"vmfspreallocated":     "vmfsPreallocated",
		"vmfssparse":           "vmfsSparse",
		"sesparse":             "seSparse",
		// qemu refuses these in a stand-alone descriptor, but a descriptor
		// naming a single SPARSE extent is what VMware writes when the
		// descriptor is split out; we accept it.
		"monolithicsparse": "monolithicSparse",
		"streamoptimized":  "streamOptimized",
	}
	// deviceTypes reference host devices or arbitrary files.
	deviceTypes = map[string]bool{
		"fulldevice": true, "partitioneddevice": true, "custom": true,
		"vmfsraw": true, "vmfsrdm": true, "vmfsrawdevicemap": true,
		"vmfsrdmp": true, "vmfspassthroughrawdevicemap": true,
	}
)

// canonicalCreateType checks a stand-alone descriptor's createType and
// returns its canonical spelling.
func canonicalCreateType(t string) (string, error) {
	lt := strings.ToLower(t)
	if deviceTypes[lt] {
		return "", disk.Errorf(formatName, disk.ErrUnsafe, "createType %q references host devices or arbitrary extents", t)
	}
	if c, ok := descriptorTypes[lt]; ok {
		return c, nil
	}
	if t == "" {
		return "", disk.Errorf(formatName, disk.ErrCorrupt, "descriptor has no createType")
	}
	return "", disk.Errorf(formatName, disk.ErrUnsupported, "createType %.64q", t)
}
