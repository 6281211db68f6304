package vhd

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/diskport/diskport/disk"
)

// WriteOptions control WriteDynamic and WriteFixed. The zero value is
// ready to use.
type WriteOptions struct {
	// Workers is how many goroutines read, zero-test and write the
	// source's blocks at once; 0 means GOMAXPROCS, at least 4 and at
	// most 8. The reads and writes are system calls that block their
	// thread, so a few more workers than cores keep the cores busy.
	Workers int
	// Progress, when non-nil, is called as the source is consumed with
	// the bytes of the virtual disk done so far and the virtual size.
	// Calls come one at a time, in increasing order of done, the last
	// with done == total on success.
	Progress func(done, total int64)
	// UniqueID is the footer's unique id; all zeros means a random one
	// (version 4 UUID), as every new disk should have.
	UniqueID [16]byte
	// Time is the creation time stamped in the footer; zero means now.
	// It is stored in whole seconds since 2000-01-01 UTC.
	Time time.Time
}

// Creator fields written in the footer. qemu takes the virtual size from
// the CHS geometry for every creator application but a few it knows to
// use the current size ("win ", "qem2", "d2v ", "CTXS", "tap\0"); with the
// geometry the specification's algorithm gives, which rounds down, any
// other creator would have qemu (and Virtual PC) cut the disk short. "win "
// with host OS "Wi2k" and version 10.0 is what Hyper-V writes, the
// creator qemu has recognised the longest; Hyper-V, Azure and VirtualBox
// read the current size whatever the creator.
var (
	creatorApp     = [4]byte{'w', 'i', 'n', ' '}
	creatorOS      = [4]byte{'W', 'i', '2', 'k'}
	creatorVersion = uint32(0x000a0000)
)

// MaxWriteSize is the largest virtual size WriteDynamic and WriteFixed
// accept: 0xff000000 sectors (2040 GiB), the largest VHD qemu opens and
// the largest dynamic VHD whose blocks 32-bit sector numbers can address.
const MaxWriteSize = DefaultMaxVirtualSize

// writeBlockSize is the dynamic disks' block size, the specification's
// default and what qemu and Hyper-V use; WriteFixed reads in chunks of the
// same size.
const writeBlockSize = 2 << 20

// minWorkers and maxWorkers bound the default worker count: past a few
// workers the source or the destination is the bottleneck, and each
// worker holds a block-sized buffer.
const (
	minWorkers = 4
	maxWorkers = 8
)

// workers returns the worker count opts asks for.
func (o *WriteOptions) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return min(max(runtime.GOMAXPROCS(0), minWorkers), maxWorkers)
}

// checkSource returns the virtual size to write for src: its size rounded
// up to a whole sector. It refuses a disk larger than MaxWriteSize before
// anything is written.
func checkSource(src disk.Image, what string) (int64, error) {
	n := src.Size()
	if n < 0 {
		return 0, disk.Errorf("vhd", disk.ErrCorrupt, "writing a %s disk: source size %d is negative", what, n)
	}
	if n > MaxWriteSize {
		return 0, disk.Errorf("vhd", disk.ErrTooLarge, "writing a %s disk: source of %d bytes exceeds the VHD limit of %d bytes (2040 GiB)", what, n, int64(MaxWriteSize))
	}
	return (n + disk.SectorSize - 1) / disk.SectorSize * disk.SectorSize, nil
}

// newFooter returns the footer of a new disk of size bytes (a multiple of
// 512) and the given type and data offset.
func newFooter(size int64, diskType uint32, dataOffset uint64, opts *WriteOptions) (*footer, error) {
	f := &footer{
		features:       featuresReserved,
		version:        formatVersion,
		dataOffset:     dataOffset,
		creatorApp:     creatorApp,
		creatorVersion: creatorVersion,
		creatorOS:      creatorOS,
		originalSize:   uint64(size),
		currentSize:    uint64(size),
		diskType:       diskType,
		uniqueID:       opts.UniqueID,
	}
	f.cylinders, f.heads, f.sectors = chsGeometry(uint64(size) / disk.SectorSize)
	t := opts.Time
	if t.IsZero() {
		t = time.Now()
	}
	// The field holds 32 bits of seconds: clamp times outside 2000–2136.
	f.timestamp = uint32(min(max(t.Unix()-timestampBase.Unix(), 0), 1<<32-1))
	if f.uniqueID == [16]byte{} {
		if _, err := rand.Read(f.uniqueID[:]); err != nil {
			return nil, fmt.Errorf("vhd: generating the unique id: %w", err)
		}
		f.uniqueID[6] = f.uniqueID[6]&0x0f | 0x40 // version 4
		f.uniqueID[8] = f.uniqueID[8]&0x3f | 0x80 // RFC 4122 variant
	}
	return f, nil
}

// readSource reads len(p) bytes of the virtual disk at off, treating a
// short read as an error.
func readSource(src disk.Image, p []byte, off int64) error {
	n, err := src.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		return fmt.Errorf("vhd: reading source at byte %d: short read (%d of %d bytes)", off, n, len(p))
	}
	return fmt.Errorf("vhd: reading source at byte %d: %w", off, err)
}

// sourceRuns calls fn for the runs of [0, size) in order, each of kind
// disk.Data (to read) or disk.Zero (known zeros, not read), covering
// [0, size) exactly. The source's extent map decides; a gap in it is read
// as data (never assumed zero), and [src.Size(), size) — the rounding to a
// whole sector of a source that breaks the contract — is zero. fn
// returning false stops the walk.
func sourceRuns(src disk.Image, size int64, fn func(e disk.Extent) bool) error {
	srcSize := min(src.Size(), size)
	pos := int64(0)
	for e, err := range src.Extents(0, srcSize) {
		if err != nil {
			return fmt.Errorf("vhd: mapping source at byte %d: %w", pos, err)
		}
		if e.Offset < pos || e.End() > srcSize || e.Length <= 0 {
			return fmt.Errorf("vhd: mapping source: extent [%d, %d) out of order after byte %d", e.Offset, e.End(), pos)
		}
		if e.Offset > pos && !fn(disk.Extent{Offset: pos, Length: e.Offset - pos, Kind: disk.Data}) {
			return nil
		}
		if e.Kind != disk.Zero {
			e.Kind = disk.Data
		}
		if !fn(e) {
			return nil
		}
		pos = e.End()
	}
	if pos < srcSize {
		if !fn(disk.Extent{Offset: pos, Length: srcSize - pos, Kind: disk.Data}) {
			return nil
		}
		pos = srcSize
	}
	if pos < size {
		fn(disk.Extent{Offset: pos, Length: size - pos, Kind: disk.Zero})
	}
	return nil
}

// storedFile returns the host file holding the bytes of e verbatim and
// the offset in it of e's first byte; nil when there is none (the bytes
// must be read through the image).
func storedFile(e disk.Extent) (*os.File, int64) {
	if e.Kind != disk.Data || e.Compressed {
		return nil, 0
	}
	s, ok := e.Stored.(disk.OSStorage)
	if !ok || s.File() == nil {
		return nil, 0
	}
	return s.File(), e.StoredOffset
}
