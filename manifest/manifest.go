// Package manifest reads, writes, creates, verifies and uploads EC2 import
// manifests (the ImportManifestUrl of ImportInstance and ImportVolume), and
// presents the parts a manifest names as one [disk.Storage], so an image can
// be converted straight from its parts.
//
// An import manifest lists the parts a disk image file was split into: for
// each, an inclusive byte range of the file, the S3 object key, and
// presigned HEAD, GET and DELETE URLs. The format carries no checksums;
// diskport adds a SHA-256 per part and for the whole file in elements of its
// own namespace ([Namespace]), which readers that do not know them ignore.
//
// Reading accepts what the AWS tools (ec2-upload-disk-image and the .NET
// DiskImageImporter), euca2ools, bsdec2-image-upload and the single-part Go
// tools write: either attribute order in byte-range, an optional
// delete-url, and an end offset equal to size (instead of size-1) on the
// last part. Writing follows the AWS tools: their element order, a
// standalone="yes" declaration, four-space indentation.
//
// The pieces:
//   - [Parse] and [Manifest.Marshal] read and write the XML; [Manifest.Validate]
//     checks that the parts cover the file exactly once.
//   - [Create] splits an image into part files and a manifest, hashing in
//     the same pass; [Upload] does the same into an S3 bucket with presigned
//     URLs (SigV4, or SigV2 for old endpoints), resuming an interrupted
//     upload.
//   - A [PartStore] fetches parts: [DirStore], [HTTPStore] (the presigned
//     URLs, with retries, resumed bodies and idle timeouts), [S3Store].
//   - [Verify] checks every part and the whole file, reporting every failure
//     with its index and byte range; [OpenStorage] reads the file from its
//     parts, verified, cached and fetched ahead, for the format readers
//     (parts whose checksum is that of zeros are not fetched at all).
package manifest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
)

// Version is the only manifest version ever written: the version element's
// value in every known manifest.
const Version = "2010-11-15"

// DefaultPartSize is the part size of every known writer: 10 MiB.
const DefaultPartSize = 10 << 20

// Namespace is the XML namespace of diskport's checksum extension.
const Namespace = "urn:x-diskport:import-manifest:1"

// Limits on what a manifest may declare, so hostile input stays bounded.
const (
	// MaxManifestSize is the largest manifest document read (64 MiB: some
	// 35,000 parts with three presigned URLs each).
	MaxManifestSize = 64 << 20
	// MaxParts is the largest number of parts accepted.
	MaxParts = 1 << 20
	// MaxFileSize is the largest file a manifest may describe (64 TiB).
	MaxFileSize = 64 << 40
)

// The file formats of import manifests, as the file-format element spells
// them: EC2's names from diskport's format table. [Manifest.FileFormat]
// holds one of these strings. The one spelling of a format across
// packages is diskport.Format (diskport.Raw, diskport.VMDK, diskport.VHD,
// diskport.VHDX, and diskport.Tar for an OVA): [Manifest.Format] gives
// it, its EC2Name method these strings, and diskport.ParseFormat reads
// back those of the disk formats.
//
// FormatOVA is a whole OVA appliance (the API server's ImportInstance
// makes a volume of each of its disks): its parts hold the archive's
// bytes, which package ova reads, not diskport.OpenStorage.
var (
	FormatRAW  = diskport.Raw.EC2Name()
	FormatVHD  = diskport.VHD.EC2Name()
	FormatVMDK = diskport.VMDK.EC2Name()
	FormatOVA  = diskport.Tar.EC2Name()
)

// manifestFormat returns the format a file-format value names: EC2's name,
// exactly, of a format EC2 imports.
func manifestFormat(name string) (diskport.Format, bool) {
	for _, f := range diskport.ImportFormats() {
		if f.EC2Name() != "" && f.EC2Name() == name {
			return f, true
		}
	}
	return "", false
}

// Format returns the manifest's file-format as a diskport.Format, the one
// spelling of a format across packages; "" when it names none diskport
// reads (Validate refuses such a manifest).
func (m *Manifest) Format() diskport.Format {
	f, _ := manifestFormat(m.FileFormat)
	return f
}

// ec2Names lists the file-format values manifests take: "OVA, RAW, VHD,
// VHDX, VMDK".
func ec2Names() string {
	var names []string
	for _, f := range diskport.ImportFormats() {
		if n := f.EC2Name(); n != "" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// A Manifest is an EC2 import manifest.
type Manifest struct {
	// Version is the manifest version, "2010-11-15".
	Version string
	// FileFormat is the image format, EC2's name from the format table: "RAW", "VHD", "VHDX", "VMDK" or "OVA".
	FileFormat string
	// Importer names the software that wrote the manifest.
	Importer Importer
	// SelfDestructURL is the presigned DELETE URL of the manifest itself.
	SelfDestructURL string
	// Size is the import/size element: the size of the file in bytes (for
	// VMDK manifests written by euca2ools, the virtual disk size instead).
	Size int64
	// VolumeSize is the size of the volume to create, in GiB.
	VolumeSize int64
	// Parts are the parts in index order, covering the file contiguously.
	Parts []Part
	// SHA256 is the lower-case hex SHA-256 of the whole file, from
	// diskport's extension; empty when the manifest has none.
	SHA256 string
}

// Importer is the importer element: the software that wrote a manifest.
type Importer struct {
	Name, Version, Release string
}

// A Part is one part of the file: a byte range stored as one object.
type Part struct {
	// Index is the part's index, 0 for the first.
	Index int
	// Offset and Length are the byte range of the file the part holds.
	Offset, Length int64
	// Key is the S3 object name of the part.
	Key string
	// HeadURL, GetURL and DeleteURL are presigned URLs of the part's
	// object; DeleteURL may be empty.
	HeadURL, GetURL, DeleteURL string
	// SHA256 is the lower-case hex SHA-256 of the part's bytes, from
	// diskport's extension; empty when the manifest has none.
	SHA256 string
}

// End returns the offset just past the part.
func (p *Part) End() int64 { return p.Offset + p.Length }

// String names the part and its byte range for messages:
// "part 3 (bytes 31457280-41943039)".
func (p *Part) String() string {
	if p.Length == 0 {
		return fmt.Sprintf("part %d (empty, at byte %d)", p.Index, p.Offset)
	}
	return fmt.Sprintf("part %d (bytes %d-%d)", p.Index, p.Offset, p.End()-1)
}

// FileSize returns the size of the file the parts hold: the sum of their
// lengths. It differs from Size only in euca2ools' VMDK manifests.
func (m *Manifest) FileSize() int64 {
	if len(m.Parts) == 0 {
		return 0
	}
	return m.Parts[len(m.Parts)-1].End()
}

// HasChecksums reports whether every part and the whole file carry a
// SHA-256.
func (m *Manifest) HasChecksums() bool {
	if m.SHA256 == "" {
		return false
	}
	for i := range m.Parts {
		if m.Parts[i].SHA256 == "" {
			return false
		}
	}
	return true
}

// Validate checks the manifest's structure: a known file format, parts
// indexed 0..n-1 in order, byte ranges that cover [0, FileSize) exactly
// once, sizes within limits, checksums well-formed, and Size equal to
// FileSize (except that a VMDK manifest may declare a larger Size, the
// virtual size euca2ools writes).
func (m *Manifest) Validate() error {
	if _, ok := manifestFormat(m.FileFormat); !ok {
		return errorf(disk.ErrUnsupported, "file-format %q is not one of %s", m.FileFormat, ec2Names())
	}
	if m.Size < 0 || m.Size > MaxFileSize {
		return errorf(disk.ErrTooLarge, "size %d out of range (limit %d)", m.Size, int64(MaxFileSize))
	}
	if m.VolumeSize < 0 || m.VolumeSize > MaxFileSize>>30 {
		return errorf(disk.ErrCorrupt, "volume-size %d GiB out of range", m.VolumeSize)
	}
	if len(m.Parts) == 0 {
		return errorf(disk.ErrCorrupt, "no parts")
	}
	if len(m.Parts) > MaxParts {
		return errorf(disk.ErrTooLarge, "%d parts (limit %d)", len(m.Parts), MaxParts)
	}
	var pos int64
	for i := range m.Parts {
		p := &m.Parts[i]
		if p.Index != i {
			return errorf(disk.ErrCorrupt, "part %d has index %d", i, p.Index)
		}
		if p.Length < 0 || p.Offset < 0 {
			return errorf(disk.ErrCorrupt, "part %d has byte range start %d length %d", i, p.Offset, p.Length)
		}
		if p.Offset != pos {
			if p.Offset < pos {
				return errorf(disk.ErrCorrupt, "%s overlaps the previous part, which ends at byte %d", p, pos-1)
			}
			return errorf(disk.ErrCorrupt, "%s leaves a gap: bytes %d-%d are in no part", p, pos, p.Offset-1)
		}
		if p.Length > MaxFileSize-pos {
			return errorf(disk.ErrTooLarge, "%s ends past %d bytes", p, int64(MaxFileSize))
		}
		if p.Length == 0 {
			return errorf(disk.ErrCorrupt, "part %d is empty", i)
		}
		if p.SHA256 != "" && !isHexDigest(p.SHA256) {
			return errorf(disk.ErrCorrupt, "%s: sha256 %q is not 64 hex digits", p, p.SHA256)
		}
		pos = p.End()
	}
	if m.SHA256 != "" && !isHexDigest(m.SHA256) {
		return errorf(disk.ErrCorrupt, "file sha256 %q is not 64 hex digits", m.SHA256)
	}
	if pos != m.Size && !(m.FileFormat == FormatVMDK && pos < m.Size) {
		return errorf(disk.ErrCorrupt, "size %d disagrees with the parts, which hold %d bytes", m.Size, pos)
	}
	return nil
}

func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// errorf returns a *disk.Error of format "manifest".
func errorf(class error, msg string, args ...any) error {
	return disk.Errorf("manifest", class, msg, args...)
}

// normalizeFormat upper-cases a file-format value and maps aliases.
func normalizeFormat(s string) string {
	return strings.ToUpper(strings.TrimSpace(s))
}
