// Package disk defines the common sparse block interface that every diskport
// format reader returns, the extent map that describes which ranges of a
// virtual disk hold data, the host storage images are read from, and the
// typed errors readers report.
//
// A reader for a format (raw, vmdk, vhd, vhdx; an OVA's disks are read by
// these) parses a [Storage] and returns an
// [Image]. A converter reads an Image through [Image.ReadAt] and walks
// [Image.Extents] to skip the ranges known to read as zeros and to copy the
// ranges stored verbatim in a host file without decoding them (the kernel
// copies them, copy_file_range).
//
// Package disk imports no other diskport package.
package disk

import (
	"io"
	"iter"
)

// SectorSize is the unit of every VMDK, VHD and VHDX offset and of raw
// volumes.
const SectorSize = 512

// An Image is a virtual disk as a format reader presents it.
//
// The contract every implementation keeps (checked by package disktest):
//
//   - ReadAt follows io.ReaderAt: it reads len(p) bytes of the virtual disk
//     at off. A read that reaches past Size returns the bytes before Size and
//     io.EOF; a read starting at or after Size returns 0, io.EOF. A negative
//     off is an error. Ranges that are unallocated, holes or zeroed grains read
//     as zeros. ReadAt is safe for concurrent use by several goroutines.
//   - Size is the virtual size in bytes. It is constant for the life of the
//     Image and a multiple of [SectorSize].
//   - Extents(off, n) yields, in order, the runs covering [off, off+n)
//     clipped to [0, Size) exactly once, each the longest run of uniform kind
//     (see [Extent.Mergeable]). A run of kind [Zero] reads as zeros. A [Data]
//     run may still contain zeros. An error ends the sequence. Extents is
//     safe for concurrent use.
//   - Info describes the image for humans and tools; it does no I/O.
//   - Close releases the Image and the storage it opened itself. Storage
//     passed in by the caller stays the caller's to close.
type Image interface {
	io.ReaderAt
	Size() int64
	Extents(off, n int64) iter.Seq2[Extent, error]
	Info() Info
	io.Closer
}

// A Verifier is an Image whose source carries checksums that hold only
// once every byte has been read: an import manifest's part and whole-file
// SHA-256s, an OVA member's .mf entry. Verify checks them, reading what
// the reads so far skipped, and fails with an error that names the
// checksum (matching [ErrCorrupt] on a mismatch). A converter calls it
// after its last read and before it commits its output: a wrong disk is
// never handed back.
type Verifier interface {
	Verify() error
}

// Info describes an image: what `diskport info` prints.
type Info struct {
	// Format is the container format: "raw", "vmdk", "vhd", "vhdx".
	Format string `json:"format"`
	// Subformat names the variant, such as "monolithicSparse",
	// "streamOptimized", "dynamic" or "fixed". Empty for raw.
	Subformat string `json:"subformat,omitempty"`
	// VirtualSize is the size of the virtual disk in bytes (Image.Size).
	VirtualSize int64 `json:"virtual_size"`
	// FileSize is the size in bytes of the file the image was opened from
	// (for multi-file images, all of them).
	FileSize int64 `json:"file_size"`
	// AllocatedBytes is how many bytes of host storage hold image data and
	// metadata, as far as the reader can tell (for a sparse raw file, the
	// bytes in data runs).
	AllocatedBytes int64 `json:"allocated_bytes"`
	// ClusterSize is the allocation unit: VMDK grain, VHD or VHDX block.
	// Zero for formats without one.
	ClusterSize int64 `json:"cluster_size,omitempty"`
	// Specific holds format-specific fields, keyed in snake_case.
	Specific map[string]any `json:"format_specific,omitempty"`
}
