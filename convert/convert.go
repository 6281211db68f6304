// Package convert writes a disk.Image out as a raw volume: a sparse regular
// file, or a block device.
//
// The volume is the virtual disk followed by zeros up to the volume size,
// an EBS volume's whole number of GiB by default. Zero runs of the extent
// map are never read: in a file they stay holes, on a device they are
// zeroed unless the caller says the device is already zero. Data runs are
// read in parallel segments; bytes stored verbatim in a memory-mapped file
// are written straight from the mapping, and blocks of zeros inside data
// runs are skipped too. A file volume is written under a temporary name
// beside the destination and renamed into place only when complete and
// flushed, so no half-written volume ever sits under the final name.
package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/diskport/diskport/disk"
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
	// renamed into place (for benchmarks and scratch work).
	NoSync bool
	// DeviceZeroed says a block-device destination already reads as zeros
	// (a fresh EBS volume), so zero runs need not be written.
	DeviceZeroed bool
	// Workers is the number of parallel workers (0: GOMAXPROCS).
	Workers int
	// Progress, when set, is called with the bytes of the virtual disk
	// converted so far and the total. Calls are serialised.
	Progress func(done, total int64)
}

// Result describes a finished conversion.
type Result struct {
	// VirtualSize is the image's virtual size; VolumeSize the volume's.
	VirtualSize, VolumeSize int64
	// WrittenBytes counts the bytes written (zero blocks are not).
	WrittenBytes int64
	// Device reports whether the destination is a block device.
	Device bool
}

// segmentSize is the unit of work handed to a worker.
const segmentSize = 32 << 20

// bufferSize is the most a worker reads at once from a non-mapped source.
const bufferSize = 1 << 20

// zeroBlock is the granularity at which zeros inside data runs are found
// and skipped (qemu-img's default -S 4k).
const zeroBlock = 4096

var zeros = make([]byte, bufferSize)

// Convert writes src as a raw volume to dst (a path: a new file, or an
// existing block device written in place).
func Convert(ctx context.Context, src disk.Image, dst string, opts Options) (*Result, error) {
	virtual := src.Size()
	size, err := VolumeSize(virtual, opts)
	if err != nil {
		return nil, err
	}
	out, err := createOutput(dst, size, opts)
	if err != nil {
		return nil, err
	}
	c := &converter{src: src, out: out, opts: opts, total: virtual}
	if err := c.run(ctx); err != nil {
		out.abort()
		return nil, err
	}
	if out.device && !opts.DeviceZeroed && size > virtual {
		if err := out.zero(virtual, size-virtual); err != nil {
			out.abort()
			return nil, err
		}
	}
	if err := out.commit(opts.NoSync); err != nil {
		return nil, err
	}
	return &Result{VirtualSize: virtual, VolumeSize: size, WrittenBytes: c.written.Load(), Device: out.device}, nil
}

type converter struct {
	src     disk.Image
	out     *output
	opts    Options
	total   int64
	next    atomic.Int64 // next segment start
	written atomic.Int64

	mu   sync.Mutex // serialises progress calls
	done int64
}

func (c *converter) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := c.opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			if err := c.work(ctx); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// work converts segments until none are left.
func (c *converter) work(ctx context.Context) error {
	var buf []byte
	for {
		start := c.next.Add(segmentSize) - segmentSize
		if start >= c.total {
			return nil
		}
		n := min(segmentSize, c.total-start)
		for e, err := range c.src.Extents(start, n) {
			if err != nil {
				return err
			}
			if err := context.Cause(ctx); err != nil {
				return err
			}
			if e.Kind == disk.Zero {
				if c.out.device && !c.opts.DeviceZeroed {
					if err := c.out.zero(e.Offset, e.Length); err != nil {
						return err
					}
				}
				c.progress(e.Length)
				continue
			}
			if o, ok := e.Stored.(disk.OSStorage); ok && !e.Compressed {
				if b, ok := o.Bytes(e.StoredOffset, e.Length); ok {
					if err := c.write(b, e.Offset); err != nil {
						return err
					}
					c.progress(e.Length)
					continue
				}
			}
			if buf == nil {
				buf = make([]byte, bufferSize)
			}
			for off := e.Offset; off < e.End(); {
				k := min(int64(len(buf)), e.End()-off)
				if _, err := c.src.ReadAt(buf[:k], off); err != nil && !(errors.Is(err, io.EOF) && off+k == c.total) {
					return err
				}
				if err := c.write(buf[:k], off); err != nil {
					return err
				}
				c.progress(k)
				off += k
				if err := context.Cause(ctx); err != nil {
					return err
				}
			}
		}
	}
}

// write writes b at off, skipping whole zero blocks unless the destination
// is a device that is not known to be zero.
func (c *converter) write(b []byte, off int64) error {
	if c.out.device && !c.opts.DeviceZeroed {
		return c.pwrite(b, off)
	}
	for len(b) > 0 {
		// Skip zero blocks (aligned to the volume).
		z := 0
		for z < len(b) {
			k := min(zeroBlock-int((off+int64(z))%zeroBlock), len(b)-z)
			if !bytes.Equal(b[z:z+k], zeros[:k]) {
				break
			}
			z += k
		}
		b, off = b[z:], off+int64(z)
		// Gather the following non-zero blocks.
		d := 0
		for d < len(b) {
			k := min(zeroBlock-int((off+int64(d))%zeroBlock), len(b)-d)
			if bytes.Equal(b[d:d+k], zeros[:k]) {
				break
			}
			d += k
		}
		if d > 0 {
			if err := c.pwrite(b[:d], off); err != nil {
				return err
			}
		}
		b, off = b[d:], off+int64(d)
	}
	return nil
}

func (c *converter) pwrite(b []byte, off int64) error {
	if _, err := c.out.f.WriteAt(b, off); err != nil {
		return fmt.Errorf("convert: writing %s at %d: %w", c.out.dst, off, err)
	}
	c.written.Add(int64(len(b)))
	return nil
}

func (c *converter) progress(n int64) {
	if c.opts.Progress == nil {
		return
	}
	c.mu.Lock()
	c.done += n
	c.opts.Progress(c.done, c.total)
	c.mu.Unlock()
}
