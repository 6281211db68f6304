package manifest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/manifest/parts"
)

// maxManifestSize is MaxManifestSize; tests lower it.
var maxManifestSize int64 = MaxManifestSize

// The document as encoding/xml sees it. Numbers are kept as text so errors
// can quote them; repeatable fields are slices so duplicates are caught.
type xmlManifest struct {
	XMLName         xml.Name  `xml:"manifest"`
	Version         []string  `xml:"version"`
	FileFormat      []string  `xml:"file-format"`
	Importer        []xmlImp  `xml:"importer"`
	SelfDestructURL string    `xml:"self-destruct-url"`
	Import          []xmlImpt `xml:"import"`
}

type xmlImp struct {
	Name    string `xml:"name"`
	Version string `xml:"version"`
	Release string `xml:"release"`
}

type xmlImpt struct {
	Size       []string   `xml:"size"`
	VolumeSize []string   `xml:"volume-size"`
	Parts      []xmlParts `xml:"parts"`
	SHA256     []string   `xml:"urn:x-diskport:import-manifest:1 sha256"`
}

type xmlParts struct {
	Count *string   `xml:"count,attr"`
	Part  []xmlPart `xml:"part"`
}

type xmlPart struct {
	Index     *string        `xml:"index,attr"`
	ByteRange []xmlByteRange `xml:"byte-range"`
	Key       string         `xml:"key"`
	HeadURL   string         `xml:"head-url"`
	GetURL    string         `xml:"get-url"`
	DeleteURL string         `xml:"delete-url"`
	SHA256    []string       `xml:"urn:x-diskport:import-manifest:1 sha256"`
}

type xmlByteRange struct {
	Start *string `xml:"start,attr"`
	End   *string `xml:"end,attr"`
}

// Parse reads and validates a manifest document of at most
// [MaxManifestSize] bytes.
func Parse(r io.Reader) (*Manifest, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("manifest: reading: %w", err)
	}
	if int64(len(b)) > maxManifestSize {
		return nil, errorf(disk.ErrTooLarge, "document larger than %d bytes", maxManifestSize)
	}
	return ParseBytes(b)
}

// ParseBytes parses and validates a manifest document held in memory.
func ParseBytes(b []byte) (*Manifest, error) {
	if int64(len(b)) > maxManifestSize {
		return nil, errorf(disk.ErrTooLarge, "document larger than %d bytes", maxManifestSize)
	}
	var x xmlManifest
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	d.CharsetReader = charsetReader
	if err := d.Decode(&x); err != nil {
		var se *xml.SyntaxError
		if errors.As(err, &se) {
			return nil, errorf(disk.ErrCorrupt, "not well-formed XML: line %d: %s", se.Line, se.Msg)
		}
		return nil, errorf(disk.ErrCorrupt, "not an import manifest: %v", err)
	}
	m, err := x.manifest()
	if err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// charsetReader accepts the declarations real writers use (UTF-8, and
// euca2ools' bundle manifests say ASCII), refusing others.
func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "utf-8", "utf8", "ascii", "us-ascii":
		return r, nil
	}
	return nil, fmt.Errorf("unsupported encoding %q", charset)
}

func one(name string, v []string) (string, error) {
	switch len(v) {
	case 0:
		return "", errorf(disk.ErrCorrupt, "missing %s element", name)
	case 1:
		return strings.TrimSpace(v[0]), nil
	}
	return "", errorf(disk.ErrCorrupt, "%d %s elements, want one", len(v), name)
}

func optional(name string, v []string) (string, error) {
	if len(v) == 0 {
		return "", nil
	}
	return one(name, v)
}

func number(what, s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, errorf(disk.ErrCorrupt, "%s %q is not a non-negative integer", what, s)
	}
	return n, nil
}

func (x *xmlManifest) manifest() (*Manifest, error) {
	m := &Manifest{SelfDestructURL: strings.TrimSpace(x.SelfDestructURL)}
	var err error
	if m.Version, err = optional("version", x.Version); err != nil {
		return nil, err
	}
	ff, err := one("file-format", x.FileFormat)
	if err != nil {
		return nil, err
	}
	m.FileFormat = normalizeFormat(ff)
	switch len(x.Importer) {
	case 0:
	case 1:
		im := x.Importer[0]
		m.Importer = Importer{strings.TrimSpace(im.Name), strings.TrimSpace(im.Version), strings.TrimSpace(im.Release)}
	default:
		return nil, errorf(disk.ErrCorrupt, "%d importer elements, want one", len(x.Importer))
	}
	if len(x.Import) != 1 {
		return nil, errorf(disk.ErrCorrupt, "%d import elements, want one", len(x.Import))
	}
	im := &x.Import[0]
	if err := im.sizes(m); err != nil {
		return nil, err
	}
	if len(im.Parts) != 1 {
		return nil, errorf(disk.ErrCorrupt, "%d parts elements, want one", len(im.Parts))
	}
	if m.Parts, err = im.Parts[0].parts(); err != nil {
		return nil, err
	}
	// The last part may end at size rather than size-1 (AWS's own sample
	// and the single-part Go tools write end = size). Only then, and only
	// when size is the file size, is the range read as exclusive.
	if n := len(m.Parts); n > 0 {
		last := &m.Parts[n-1]
		if last.End() == m.Size+1 && last.Length > 0 {
			last.Length--
		}
	}
	return m, nil
}

// sizes sets m's size, volume size and whole-file SHA-256 from the import
// element.
func (im *xmlImpt) sizes(m *Manifest) error {
	s, err := one("size", im.Size)
	if err != nil {
		return err
	}
	if m.Size, err = number("size", s); err != nil {
		return err
	}
	if s, err = optional("volume-size", im.VolumeSize); err != nil {
		return err
	} else if s != "" {
		if m.VolumeSize, err = number("volume-size", s); err != nil {
			return err
		}
	}
	if m.SHA256, err = optional("sha256", im.SHA256); err != nil {
		return err
	}
	m.SHA256 = strings.ToLower(m.SHA256)
	return nil
}

// parts returns the parts the element lists, in index order: as many as
// its count says, each index once.
func (ps *xmlParts) parts() ([]parts.Part, error) {
	if ps.Count == nil {
		return nil, errorf(disk.ErrCorrupt, "parts element has no count attribute")
	}
	count, err := number("parts count", *ps.Count)
	if err != nil {
		return nil, err
	}
	if count != int64(len(ps.Part)) {
		return nil, errorf(disk.ErrCorrupt, "parts count is %d but %d part elements are listed", count, len(ps.Part))
	}
	if count > parts.MaxParts {
		return nil, errorf(disk.ErrTooLarge, "%d parts (limit %d)", count, parts.MaxParts)
	}
	list := make([]parts.Part, count)
	seen := make([]bool, count)
	for i := range ps.Part {
		xp := &ps.Part[i]
		if xp.Index == nil {
			return nil, errorf(disk.ErrCorrupt, "part element %d has no index attribute", i)
		}
		idx, err := number("part index", *xp.Index)
		if err != nil {
			return nil, err
		}
		if idx >= count {
			return nil, errorf(disk.ErrCorrupt, "part index %d out of range (count %d)", idx, count)
		}
		if seen[idx] {
			return nil, errorf(disk.ErrCorrupt, "part index %d listed twice", idx)
		}
		seen[idx] = true
		if list[idx], err = xp.part(idx); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// part returns the part element, whose index is idx.
func (xp *xmlPart) part(idx int64) (parts.Part, error) {
	p := parts.Part{
		Index:     int(idx),
		Key:       strings.TrimSpace(xp.Key),
		HeadURL:   strings.TrimSpace(xp.HeadURL),
		GetURL:    strings.TrimSpace(xp.GetURL),
		DeleteURL: strings.TrimSpace(xp.DeleteURL),
	}
	if len(xp.ByteRange) != 1 {
		return p, errorf(disk.ErrCorrupt, "part %d has %d byte-range elements, want one", idx, len(xp.ByteRange))
	}
	br := xp.ByteRange[0]
	if br.Start == nil || br.End == nil {
		return p, errorf(disk.ErrCorrupt, "part %d byte-range lacks a start or end attribute", idx)
	}
	start, err := number(fmt.Sprintf("part %d byte-range start", idx), *br.Start)
	if err != nil {
		return p, err
	}
	end, err := number(fmt.Sprintf("part %d byte-range end", idx), *br.End)
	if err != nil {
		return p, err
	}
	if end < start {
		return p, errorf(disk.ErrCorrupt, "part %d byte-range ends at %d before its start %d", idx, end, start)
	}
	p.Offset, p.Length = start, end-start+1
	if p.SHA256, err = optional(fmt.Sprintf("part %d sha256", idx), xp.SHA256); err != nil {
		return p, err
	}
	p.SHA256 = strings.ToLower(p.SHA256)
	return p, nil
}
