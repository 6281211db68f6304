package vmdk

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"runtime"
	"strings"

	"github.com/diskport/diskport/disk"
)

// Compression levels of WriteStream, on zlib's scale: MinLevel is the
// fastest, MaxLevel the smallest. The encoder, and so DefaultLevel,
// depends on the build (see Deflater).
const (
	MinLevel = 1
	MaxLevel = 9
)

// DefaultName is the extent file name the writers put in the embedded
// descriptor when WriteOptions.Name is empty.
const DefaultName = "disk.vmdk"

// adapterTypes are the ddb.adapterType values the writers accept: the
// ones VMware documents and qemu-img's adapter_type option takes.
var adapterTypes = []string{"lsilogic", "buslogic", "ide", "legacyESX"}

// WriteOptions configures WriteStream and WriteSparse. The zero value
// writes with DefaultLevel, one worker per CPU, the extent named
// DefaultName and an LSI Logic adapter.
type WriteOptions struct {
	// Workers is how many goroutines read the source's grains (and
	// compress them, for WriteStream); 0 means runtime.GOMAXPROCS(0).
	// Memory stays within a few grains per worker.
	Workers int
	// Level is the zlib compression level of WriteStream's grains, from
	// MinLevel to MaxLevel; 0 means DefaultLevel. WriteSparse ignores it.
	Level int
	// Name is the extent file name written in the embedded descriptor: a
	// bare file name without quotes, control characters, '/', '\\', ':'
	// or "..". Set it to the output file's own name: qemu and VMware
	// ignore it for a single-file disk, but libvmdk opens the extent by
	// it. "" means DefaultName.
	Name string
	// AdapterType is the descriptor's ddb.adapterType, which also chooses
	// the geometry written beside it: "lsilogic" (the default, what
	// VMware exports and ESXi expects), "buslogic", "ide" or "legacyESX".
	AdapterType string
	// Progress, if non-nil, is called from the writing goroutine as the
	// output advances, with the bytes of the source done so far and the
	// source's size; it ends with done == total on success. It is called
	// often (up to once per 64 KiB grain) and should return quickly.
	Progress func(done, total int64)
}

// writeConfig is WriteOptions with the defaults applied and checked.
type writeConfig struct {
	workers  int
	level    int
	name     string
	adapter  string
	progress func(done, total int64)
}

func (o WriteOptions) config() (writeConfig, error) {
	c := writeConfig{workers: o.Workers, level: o.Level, name: o.Name, adapter: o.AdapterType, progress: o.Progress}
	switch {
	case c.workers < 0:
		return c, fmt.Errorf("vmdk: WriteOptions.Workers %d is negative", c.workers)
	case c.workers == 0:
		c.workers = runtime.GOMAXPROCS(0)
	}
	switch {
	case c.level == 0:
		c.level = DefaultLevel
	case c.level < MinLevel || c.level > MaxLevel:
		return c, fmt.Errorf("vmdk: WriteOptions.Level %d (want %d to %d, or 0 for the default)", c.level, MinLevel, MaxLevel)
	}
	if c.name == "" {
		c.name = DefaultName
	}
	if err := checkWriteName(c.name); err != nil {
		return c, err
	}
	if c.adapter == "" {
		c.adapter = "lsilogic"
	}
	ok := false
	for _, a := range adapterTypes {
		ok = ok || a == c.adapter
	}
	if !ok {
		return c, fmt.Errorf("vmdk: WriteOptions.AdapterType %q (want one of %s)", c.adapter, strings.Join(adapterTypes, ", "))
	}
	return c, nil
}

// maxWriteName bounds the extent name so the descriptor stays small.
const maxWriteName = 255

// checkWriteName enforces on the name written what the reader enforces on
// the names it reads (a bare file name), and keeps the quoted extent line
// parseable: no double quote.
func checkWriteName(name string) error {
	switch {
	case len(name) > maxWriteName:
		return fmt.Errorf("vmdk: WriteOptions.Name of %d bytes (at most %d)", len(name), maxWriteName)
	case name == ".", strings.ContainsAny(name, "/\\:\"\x00"), strings.Contains(name, ".."),
		strings.IndexFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return fmt.Errorf("vmdk: WriteOptions.Name %q is not a bare file name (no quotes, control characters, '/', '\\', ':' or \"..\")", name)
	}
	return nil
}

// capacitySectors returns the capacity in sectors of a disk of size bytes:
// a size that is not a whole number of sectors is rounded up, the tail
// reading as zeros. Readers (qemu included) refuse a capacity of 0.
func capacitySectors(size int64) (uint64, error) {
	if size <= 0 {
		return 0, disk.Errorf(formatName, disk.ErrUnsupported, "cannot write a disk of %d bytes: a sparse extent of capacity 0 is not a disk to qemu and VMware", size)
	}
	return (uint64(size) + disk.SectorSize - 1) / disk.SectorSize, nil
}

// geometry returns the cylinders, heads and sectors per track VMware
// writes for a disk of capacity sectors: 16 heads and 63 sectors for IDE;
// for SCSI adapters 64/32 below 1 GiB, 128/32 below 2 GiB and 255/63
// above (a 30 MiB VMware export says 30/64/32, a 16 GiB one 2088/255/63).
func geometry(capacity uint64, adapter string) (c, h, s uint64) {
	maxC := uint64(65535)
	switch {
	case adapter == "ide":
		h, s, maxC = 16, 63, 16383
	case capacity < 1<<21:
		h, s = 64, 32
	case capacity < 1<<22:
		h, s = 128, 32
	default:
		h, s = 255, 63
	}
	c = min(max(capacity/(h*s), 1), maxC)
	return c, h, s
}

// virtualHWVersion is the ddb.virtualHWVersion the writers declare: what
// the VMware (vSphere) export among the samples says. It names the oldest
// virtual hardware the disk needs, not the VM's, so a low value is the
// compatible one.
const virtualHWVersion = "10"

// newDescriptor returns the embedded descriptor of a single-extent sparse
// disk of capacity sectors, laid out as VMware writes it (trailing spaces
// on the header lines included): a fresh random CID and longContentID,
// no parent.
func newDescriptor(createType, access string, capacity uint64, c writeConfig) string {
	var id [20]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	cid := binary.LittleEndian.Uint32(id[16:])
	if cid >= 0xfffffffe {
		// Some software reads ffffffff as "no parent" and fffffffe as
		// "disk full of zeros".
		cid &^= 1 << 31
	}
	cyl, heads, secs := geometry(capacity, c.adapter)
	var b strings.Builder
	fmt.Fprintf(&b, "# Disk DescriptorFile\nversion=1 \nCID=%08x \nparentCID=ffffffff \ncreateType=%q \n\n", cid, createType)
	fmt.Fprintf(&b, "# Extent description\n%s %d SPARSE %q\n\n", access, capacity, c.name)
	fmt.Fprintf(&b, "# The Disk Data Base \n#DDB\n\n")
	fmt.Fprintf(&b, "ddb.adapterType = %q\n", c.adapter)
	fmt.Fprintf(&b, "ddb.geometry.cylinders = \"%d\"\nddb.geometry.heads = \"%d\"\nddb.geometry.sectors = \"%d\"\n", cyl, heads, secs)
	fmt.Fprintf(&b, "ddb.longContentID = %q\n", hex.EncodeToString(id[:16]))
	// toolsInstallType 4 (open-vm-tools) and toolsVersion 2^31-1 ("unknown")
	// are what VMware's own open-vmdk writes for an image without tools
	// installed by VMware.
	fmt.Fprintf(&b, "ddb.toolsInstallType = \"4\"\nddb.toolsVersion = \"2147483647\"\n")
	fmt.Fprintf(&b, "ddb.virtualHWVersion = %q\n", virtualHWVersion)
	return b.String()
}

// marshal encodes h as a 512-byte KDMV header (or stream footer) into b,
// padding included.
func (h *sparseHeader) marshal(b []byte) {
	b = b[:headerSize]
	clear(b)
	le := binary.LittleEndian
	copy(b, magicKDMV)
	le.PutUint32(b[4:], h.Version)
	le.PutUint32(b[8:], h.Flags)
	le.PutUint64(b[12:], h.Capacity)
	le.PutUint64(b[20:], h.GrainSize)
	le.PutUint64(b[28:], h.DescriptorOffset)
	le.PutUint64(b[36:], h.DescriptorSize)
	le.PutUint32(b[44:], h.NumGTEsPerGT)
	le.PutUint64(b[48:], h.RGDOffset)
	le.PutUint64(b[56:], h.GDOffset)
	le.PutUint64(b[64:], h.OverHead)
	if h.UncleanShutdown {
		b[72] = 1
	}
	copy(b[73:77], h.NewlineBytes[:])
	le.PutUint16(b[77:], h.CompressAlgorithm)
}

// newlineDetector is what bytes 73..76 of a header hold when the
// newline-detector flag is set.
var newlineDetector = [4]byte{'\n', ' ', '\r', '\n'}

// Grain geometry of the files the writers make: 64 KiB grains, 512
// entries per grain table, as VMware and qemu write them.
const (
	writeGrainSecs  = 128
	writeGrainBytes = writeGrainSecs * disk.SectorSize
	writeGTEs       = 512
	writeGTSecs     = writeGTEs * 4 / disk.SectorSize
	groupBytes      = writeGTEs * writeGrainBytes // virtual bytes one grain table covers
)

// sectorsFor returns the whole sectors n bytes occupy.
func sectorsFor(n uint64) uint64 { return (n + disk.SectorSize - 1) / disk.SectorSize }

// putMarker encodes a metadata marker into the 512-byte b.
func putMarker(b []byte, numSectors uint64, typ uint32) {
	b = b[:disk.SectorSize]
	clear(b)
	binary.LittleEndian.PutUint64(b, numSectors)
	binary.LittleEndian.PutUint32(b[12:], typ)
}

// putTable encodes entries as little-endian u32s into b, which it pads
// with zeros to its length.
func putTable(b []byte, entries []uint32) {
	clear(b)
	for i, e := range entries {
		binary.LittleEndian.PutUint32(b[4*i:], e)
	}
}
