package vmdk

import (
	"encoding/binary"
	"math/bits"

	"github.com/diskport/diskport/disk"
)

const formatName = "vmdk"

// Magic numbers at offset 0 of the binary extent files.
const (
	magicKDMV = "KDMV" // hosted sparse extent (VMDK4)
	magicCOWD = "COWD" // ESX vmfsSparse extent (VMDK3)
)

// Header flags (VMware's SPARSEFLAG_* names).
const (
	flagValidNewline = 1 << 0  // bytes 73..76 hold "\n \r\n"
	flagRedundantGD  = 1 << 1  // rgdOffset is valid
	flagZeroedGTE    = 1 << 2  // GTE 1 means a zeroed grain (version >= 2)
	flagCompressed   = 1 << 16 // grains compressed with compressAlgorithm
	flagEmbeddedLBA  = 1 << 17 // grains carry a marker; metadata markers present
	incompatFlags    = 0xFFFF0000
	knownIncompat    = flagCompressed | flagEmbeddedLBA
)

const (
	compressNone    = 0
	compressDeflate = 1
	gdAtEnd         = ^uint64(0) // gdOffset of a stream whose footer holds the real header
	gteZeroed       = 1          // the zeroed-grain GTE value
	headerSize      = 512
	maxGrainSectors = 2048 // 1 MiB grains
	minGrainSectors = 8
	maxGTEsPerGT    = 512
	minGTEsPerGT    = 128
	// maxDescriptorBytes bounds every descriptor read, embedded or not.
	maxDescriptorBytes = 1<<20 - 1
	// maxSparseSectors is the largest capacity a sparse extent can address
	// with 32-bit sector offsets (qemu's VMDK_EXTENT_MAX_SECTORS).
	maxSparseSectors = 1 << 32
)

// A sparseHeader is the 512-byte header of a hosted sparse extent
// (SparseExtentHeader in VMware's vmware_vmdk.h), also the layout of a
// stream's footer.
type sparseHeader struct {
	Version           uint32
	Flags             uint32
	Capacity          uint64 // sectors
	GrainSize         uint64 // sectors
	DescriptorOffset  uint64 // sectors
	DescriptorSize    uint64 // sectors
	NumGTEsPerGT      uint32
	RGDOffset         uint64 // sectors
	GDOffset          uint64 // sectors
	OverHead          uint64 // sectors
	UncleanShutdown   bool
	NewlineBytes      [4]byte
	CompressAlgorithm uint16
}

// parseSparseHeader decodes b (at least 512 bytes starting with KDMV)
// without validating it.
func parseSparseHeader(b []byte) sparseHeader {
	le := binary.LittleEndian
	var h sparseHeader
	h.Version = le.Uint32(b[4:])
	h.Flags = le.Uint32(b[8:])
	h.Capacity = le.Uint64(b[12:])
	h.GrainSize = le.Uint64(b[20:])
	h.DescriptorOffset = le.Uint64(b[28:])
	h.DescriptorSize = le.Uint64(b[36:])
	h.NumGTEsPerGT = le.Uint32(b[44:])
	h.RGDOffset = le.Uint64(b[48:])
	h.GDOffset = le.Uint64(b[56:])
	h.OverHead = le.Uint64(b[64:])
	h.UncleanShutdown = b[72] != 0
	copy(h.NewlineBytes[:], b[73:77])
	h.CompressAlgorithm = le.Uint16(b[77:])
	return h
}

// validate checks the fields of h that do not depend on where the grain
// directory is: version, flags, newline detector, grain and table sizes,
// capacity and the embedded descriptor's location. fileSectors is the file
// size in whole sectors.
func (h *sparseHeader) validate(name string, fileSectors uint64) error {
	if h.Version < 1 || h.Version > 3 {
		return disk.Errorf(formatName, disk.ErrUnsupported, "%s: sparse extent version %d (want 1, 2 or 3)", name, h.Version)
	}
	if unknown := h.Flags & incompatFlags &^ knownIncompat; unknown != 0 {
		return disk.Errorf(formatName, disk.ErrUnsupported, "%s: unknown incompatible header flags %#x", name, unknown)
	}
	if h.Flags&flagValidNewline != 0 && h.NewlineBytes != [4]byte{'\n', ' ', '\r', '\n'} {
		return disk.Errorf(formatName, disk.ErrCorrupt, "%s: newline detector bytes %q, want \"\\n \\r\\n\": the file was corrupted by a text-mode (CR/LF) transfer", name, h.NewlineBytes[:])
	}
	switch {
	case h.CompressAlgorithm > compressDeflate:
		return disk.Errorf(formatName, disk.ErrUnsupported, "%s: compression algorithm %d", name, h.CompressAlgorithm)
	case h.compressed() && h.Flags&flagCompressed == 0:
		return disk.Errorf(formatName, disk.ErrCorrupt, "%s: compression algorithm %d without the compressed-grains flag", name, h.CompressAlgorithm)
	case !h.compressed() && h.Flags&flagCompressed != 0:
		return disk.Errorf(formatName, disk.ErrCorrupt, "%s: compressed-grains flag without a compression algorithm", name)
	case h.compressed() && !h.markers():
		return disk.Errorf(formatName, disk.ErrUnsupported, "%s: compressed grains without grain markers", name)
	case !h.compressed() && h.markers():
		return disk.Errorf(formatName, disk.ErrUnsupported, "%s: grain markers on uncompressed grains", name)
	}
	if g := h.GrainSize; g < minGrainSectors || g > maxGrainSectors || g&(g-1) != 0 {
		return disk.Errorf(formatName, disk.ErrUnsupported, "%s: grain size %d sectors (want a power of 2 from %d to %d)", name, g, minGrainSectors, maxGrainSectors)
	}
	if n := h.NumGTEsPerGT; n < minGTEsPerGT || n > maxGTEsPerGT || n&(n-1) != 0 {
		return disk.Errorf(formatName, disk.ErrUnsupported, "%s: %d entries per grain table (want a power of 2 from %d to %d)", name, n, minGTEsPerGT, maxGTEsPerGT)
	}
	if h.Capacity == 0 {
		if h.DescriptorOffset != 0 {
			return disk.Errorf(formatName, disk.ErrUnsafe, "%s: capacity 0 with an embedded descriptor (a descriptor file disguised as a sparse extent)", name)
		}
		return disk.Errorf(formatName, disk.ErrCorrupt, "%s: capacity 0", name)
	}
	if !h.compressed() && h.Capacity > maxSparseSectors {
		return disk.Errorf(formatName, disk.ErrTooLarge, "%s: capacity %d sectors exceeds the 2^32 sectors a sparse extent addresses", name, h.Capacity)
	}
	if h.Capacity > maxCapacitySectors {
		return disk.Errorf(formatName, disk.ErrTooLarge, "%s: capacity %d sectors is beyond any supported size", name, h.Capacity)
	}
	if (h.DescriptorOffset == 0) != (h.DescriptorSize == 0) {
		return disk.Errorf(formatName, disk.ErrCorrupt, "%s: embedded descriptor at sector %d with size %d sectors", name, h.DescriptorOffset, h.DescriptorSize)
	}
	if h.DescriptorOffset != 0 {
		end, ok := addSectors(h.DescriptorOffset, h.DescriptorSize)
		if !ok || end > fileSectors {
			return disk.Errorf(formatName, disk.ErrCorrupt, "%s: embedded descriptor at sector %d (%d sectors) past end of file (%d sectors)", name, h.DescriptorOffset, h.DescriptorSize, fileSectors)
		}
	}
	return nil
}

// maxCapacitySectors bounds a header's capacity before any product with it
// is formed: 2^47 sectors (64 PiB), far above Options.MaxVirtualSize.
const maxCapacitySectors = 1 << 47

func (h *sparseHeader) compressed() bool { return h.CompressAlgorithm == compressDeflate }
func (h *sparseHeader) markers() bool    { return h.Flags&flagEmbeddedLBA != 0 }

// gtCoverage returns the sectors one grain table covers.
func (h *sparseHeader) gtCoverage() uint64 { return uint64(h.NumGTEsPerGT) * h.GrainSize }

// gdEntries returns the number of grain directory entries the capacity
// needs.
func (h *sparseHeader) gdEntries() uint64 {
	c := h.gtCoverage()
	return (h.Capacity + c - 1) / c
}

// addSectors returns a+b and whether it neither overflows nor exceeds
// the sector count whose byte offset fits in an int64.
func addSectors(a, b uint64) (uint64, bool) {
	s, carry := bits.Add64(a, b, 0)
	return s, carry == 0 && s <= 1<<54
}

// sectorBytes returns s*512 and whether it fits in an int64.
func sectorBytes(s uint64) (int64, bool) {
	if s > 1<<54 {
		return 0, false
	}
	return int64(s) * disk.SectorSize, true
}
