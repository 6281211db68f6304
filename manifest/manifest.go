// Package manifest reads, writes and creates EC2 import manifests (the
// ImportManifestUrl of ImportInstance and ImportVolume), and is the one
// import path: [OpenImage] opens what an import names (an image file, an
// OVA's disk, or the image a manifest's parts hold) with every check its
// source carries.
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
//     checks the document and that the parts cover the file exactly once.
//   - [Open] and [OpenS3] read a manifest from a path, a URL or a bucket,
//     with the store its parts are read from.
//   - [Create] splits an image into part files and a manifest, hashing in
//     the same pass; [Upload] does the same into an S3 bucket with presigned
//     URLs (SigV4, or SigV2 for old endpoints), resuming an interrupted
//     upload.
//   - [OpenImage] opens the image a [Source] names through diskport's
//     format table; from a manifest, its parts are read, cached and
//     checked by package [parts], which stores, fetches and verifies the
//     parts ([Manifest.File] is what it reads).
package manifest

import (
	"slices"
	"strings"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/manifest/parts"
)

// Version is the only manifest version ever written: the version element's
// value in every known manifest.
const Version = "2010-11-15"

// DefaultPartSize is the part size of every known writer: 10 MiB.
const DefaultPartSize = 10 << 20

// Namespace is the XML namespace of diskport's checksum extension.
const Namespace = "urn:x-diskport:import-manifest:1"

// MaxManifestSize is the largest manifest document read (64 MiB: some
// 35,000 parts with three presigned URLs each), so hostile input stays
// bounded; what the parts may hold is bounded by [parts.MaxParts] and
// [parts.MaxFileSize].
const MaxManifestSize = 64 << 20

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
	Parts []parts.Part
	// SHA256 is the lower-case hex SHA-256 of the whole file, from
	// diskport's extension; empty when the manifest has none.
	SHA256 string
}

// Importer is the importer element: the software that wrote a manifest.
type Importer struct {
	Name, Version, Release string
}

// File returns the file m describes as package parts reads it: its parts
// (sharing m.Parts) and whole-file SHA-256.
func (m *Manifest) File() parts.File { return parts.File{Parts: m.Parts, SHA256: m.SHA256} }

// FileSize returns the size of the file the parts hold: the sum of their
// lengths. It differs from Size only in euca2ools' VMDK manifests.
func (m *Manifest) FileSize() int64 { return m.File().Size() }

// HasChecksums reports whether every part and the whole file carry a
// SHA-256.
func (m *Manifest) HasChecksums() bool { return m.File().HasChecksums() }

// Validate checks the manifest's structure: a known file format, sizes
// within limits, parts that [parts.File.Validate] accepts (indexed
// 0..n-1 in order, byte ranges that cover [0, FileSize) exactly once,
// checksums well-formed), and Size equal to FileSize (except that a VMDK
// manifest may declare a larger Size, the virtual size euca2ools writes).
func (m *Manifest) Validate() error {
	if _, ok := manifestFormat(m.FileFormat); !ok {
		return errorf(disk.ErrUnsupported, "file-format %q is not one of %s", m.FileFormat, ec2Names())
	}
	if m.Size < 0 || m.Size > parts.MaxFileSize {
		return errorf(disk.ErrTooLarge, "size %d out of range (limit %d)", m.Size, int64(parts.MaxFileSize))
	}
	if m.VolumeSize < 0 || m.VolumeSize > parts.MaxFileSize>>30 {
		return errorf(disk.ErrCorrupt, "volume-size %d GiB out of range", m.VolumeSize)
	}
	if err := m.File().Validate(); err != nil {
		return err
	}
	if pos := m.FileSize(); pos != m.Size && !(m.FileFormat == FormatVMDK && pos < m.Size) {
		return errorf(disk.ErrCorrupt, "size %d disagrees with the parts, which hold %d bytes", m.Size, pos)
	}
	return nil
}

// errorf returns a *disk.Error of format "manifest".
func errorf(class error, msg string, args ...any) error {
	return disk.Errorf("manifest", class, msg, args...)
}

// normalizeFormat upper-cases a file-format value and maps aliases.
func normalizeFormat(s string) string {
	return strings.ToUpper(strings.TrimSpace(s))
}
