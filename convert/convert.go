// Package convert writes a disk.Image out as a raw volume: a sparse regular
// file, or a block device.
//
// The volume is the virtual disk followed by zeros up to the volume size,
// an EBS volume's whole number of GiB by default. The work is cut into
// segments converted in parallel, so CPU-bound reads (inflating the grains
// of a streamOptimized VMDK) use every core, and written with positional
// writes in any order. Zero runs of the extent map are never read: in a
// file they stay holes, on a device they are zeroed unless the caller says
// the device already reads as zeros. Data stored verbatim in a host file
// (raw, flat extents, uncompressed grains, VHD and VHDX blocks) bypasses the
// format reader: a long run is first split by its storage's own holes
// (SEEK_DATA: a flat extent or fixed VHD made from a sparse disk is sparse
// itself, and its holes are never read), then read with pread into the
// worker's reused buffer, where zero blocks are found (a word at a time)
// and skipped, and the runs of data blocks are copied from the source
// inside the kernel with copy_file_range (volume.Writer.CopyFrom), which
// costs less system time than writing them from the buffer
// (bench/RESULTS.md). Where the kernel cannot copy (another file system, a
// block device), and when a checksum is asked (the digest must be of the
// bytes written), they are written from the buffer. The source is never
// memory-mapped: the faults of a mapping cost more than pread's copy.
//
// The volume is written through package volume: a file under a temporary
// name beside the destination with a small journal of the finished
// segments, flushed (unless NoSync) and renamed into place only when
// complete, so no half-written volume ever sits under the final name.
// Unless NoSync, writeout of each finished segment starts at once
// (sync_file_range), so the disk writes overlap the conversion and the
// final flush has little left to do. A run that was killed at any point can
// be continued with Options.Resume, which redoes only the unfinished
// segments, or starts over (Result.StartedOver) when the killed run left
// no usable journal.
//
// Memory stays bounded whatever the image size: each worker holds one
// buffer, and with a checksum at most a few segments wait to be hashed.
package convert

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/volume"
)

// Options control a conversion.
type Options struct {
	// VolumeSize is the size of the volume in bytes; 0 for the virtual
	// size rounded up to a whole GiB. It must hold the virtual disk.
	VolumeSize int64
	// ExactSize makes the volume exactly the virtual size.
	ExactSize bool
	// Force overwrites an existing destination file.
	Force bool
	// NoSync skips flushing the volume to stable storage before it is
	// renamed into place (for benchmarks and scratch work). A resumable
	// run without sync survives the process being killed, not a crash of
	// the machine.
	NoSync bool
	// DeviceZeroed says a block-device destination already reads as zeros
	// (a fresh EBS volume), so zero runs need not be written.
	DeviceZeroed bool
	// Resume continues an interrupted (even killed) conversion into the
	// same destination, redoing only unfinished work. When the
	// interrupted run left no usable journal (killed before its first
	// checkpoint), the conversion starts from zero and
	// Result.StartedOver says so; a partial file is never trusted. It is
	// refused when the source or the options changed. With Resume, a
	// failed or cancelled run keeps its temporary output and journal for
	// the next try.
	Resume bool
	// Checksum computes the SHA-256 of the volume and of its virtual-disk
	// part as the data passes through.
	Checksum bool
	// Workers is the number of parallel workers (0: GOMAXPROCS, at most 8).
	Workers int
	// Progress, when set, is called with the bytes of the virtual disk
	// converted so far and the total. Calls are serialised.
	Progress func(done, total int64)
	// Verify, when set, is called once the whole image has been converted
	// and before the volume is committed, after the source's own checks
	// (an image that is a disk.Verifier is verified first, always). Its
	// error fails the conversion: a server checks its lease here.
	Verify func() error
}

// Result describes a finished conversion.
type Result struct {
	// VirtualSize is the image's virtual size; VolumeSize the volume's.
	VirtualSize, VolumeSize int64
	// WrittenBytes counts the bytes this run wrote (zero blocks are not
	// written).
	WrittenBytes int64
	// ResumedBytes counts the bytes of the virtual disk an earlier,
	// interrupted run had already converted.
	ResumedBytes int64
	// Device reports whether the destination is a block device.
	Device bool
	// StartedOver, set when Options.Resume found nothing it could
	// continue (no partial output, no journal, an unreadable one), says
	// why the run started from zero, e.g. "no journal: starting over".
	StartedOver string
	// SHA256 is the digest of the whole volume and VirtualSHA256 that of
	// its first VirtualSize bytes, when Options.Checksum is set.
	SHA256, VirtualSHA256 []byte
}

// segmentSize is the unit of work handed to a worker, of resume
// bookkeeping and of progress.
const segmentSize = 8 << 20

// bufferSize is the most a worker reads at once: the buffer it scans for
// zero blocks, small enough to stay in the CPU's cache between the read
// and the scan.
const bufferSize = 1 << 20

var zeros = make([]byte, bufferSize)

// Convert writes src as a raw volume to dst (a path: a new file, or an
// existing block device written in place), through a volume.Writer.
func Convert(ctx context.Context, src disk.Image, dst string, opts Options) (*Result, error) {
	virtual := src.Size()
	size, err := VolumeSize(virtual, opts)
	if err != nil {
		return nil, err
	}
	segments := int((virtual + segmentSize - 1) / segmentSize)
	spec, err := journalSpec(src, segments)
	if err != nil {
		return nil, err
	}
	out, err := volume.Create(dst, size, volume.Options{Force: opts.Force, NoSync: opts.NoSync,
		DeviceZeroed: opts.DeviceZeroed, Resume: opts.Resume, Journal: spec})
	if err != nil {
		return nil, err
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = min(runtime.GOMAXPROCS(0), 8)
	}
	c := &converter{src: src, out: out, journal: out.Journal(), opts: opts, total: virtual, workers: workers,
		segments: segments, dst: dst, resumed: out.Resumed()}
	res, err := c.run(ctx, size)
	if err != nil {
		if opts.Resume {
			out.Keep()
		} else {
			out.Abort()
		}
		return nil, err
	}
	if err := out.Commit(); err != nil {
		return nil, err
	}
	return res, nil
}

// ConvertInto writes src into out, a volume the caller created (with
// volume.Create, of the size it wants, at least src's) and commits or
// aborts itself: for a caller that owns the volume's life, such as a
// server writing many. Options that shape the destination (VolumeSize,
// ExactSize, Force, NoSync, DeviceZeroed, Resume) are out's own and are
// ignored here; out must have no journal (resume is Convert's).
func ConvertInto(ctx context.Context, src disk.Image, out *volume.Writer, opts Options) (*Result, error) {
	virtual := src.Size()
	if out.Size() < virtual {
		return nil, fmt.Errorf("convert: the volume is %d bytes, smaller than the image (%d bytes)", out.Size(), virtual)
	}
	if out.Journal() != nil {
		return nil, errors.New("convert: ConvertInto takes a volume without a journal (Convert resumes)")
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = min(runtime.GOMAXPROCS(0), 8)
	}
	c := &converter{src: src, out: out, opts: opts, total: virtual, workers: workers,
		segments: int((virtual + segmentSize - 1) / segmentSize)}
	return c.run(ctx, out.Size())
}

func (c *converter) run(ctx context.Context, size int64) (*Result, error) {
	if c.opts.Checksum {
		c.hash = newOrderedHash(c)
	}
	if err := c.convert(ctx); err != nil {
		return nil, err
	}
	if v, ok := c.src.(disk.Verifier); ok {
		if err := v.Verify(); err != nil {
			return nil, err
		}
	}
	if c.opts.Verify != nil {
		if err := c.opts.Verify(); err != nil {
			return nil, err
		}
	}
	res := &Result{VirtualSize: c.total, VolumeSize: size, ResumedBytes: c.resumedBytes(),
		Device: c.out.Device(), StartedOver: c.out.StartedOver()}
	if err := c.out.FillZero(c.total, size-c.total); err != nil {
		return nil, err
	}
	res.WrittenBytes = c.out.Written()
	if c.hash != nil {
		res.VirtualSHA256 = c.hash.h.Sum(nil)
		if err := c.hash.zeros(size - c.total); err != nil {
			return nil, err
		}
		res.SHA256 = c.hash.h.Sum(nil)
	}
	return res, nil
}

// resumedBytes returns the bytes of the virtual disk earlier runs finished.
func (c *converter) resumedBytes() int64 {
	if c.journal == nil {
		return 0
	}
	var n int64
	for _, i := range c.journal.Resumed() {
		n += min(segmentSize, c.total-int64(i)*segmentSize)
	}
	return n
}
