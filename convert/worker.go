package convert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/diskport/diskport/disk"
)

// converter is one conversion in progress.
type converter struct {
	src      disk.Image
	out      *output
	opts     Options
	total    int64 // virtual size
	workers  int
	segments int

	next    atomic.Int64 // next segment to hand out
	written atomic.Int64
	journal *journal
	hash    *orderedHash // nil without Options.Checksum
	flush   *writeback   // nil with Options.NoSync

	mu   sync.Mutex // serialises progress calls
	done int64
}

// A piece is a run of a converted segment kept for the checksum: bytes, or
// zeros when data is nil. pooled pieces return their buffer to bufPool.
type piece struct {
	n      int64
	data   []byte
	pooled bool
}

// bufList is a bounded free list of buffers for pieces waiting to be
// hashed. The hash window caps how many are in use; the list only keeps
// them from being allocated again.
type bufList chan []byte

func (l bufList) get() []byte {
	select {
	case b := <-l:
		return b
	default:
		return make([]byte, bufferSize)
	}
}

func (l bufList) put(b []byte) {
	select {
	case l <- b[:cap(b)]:
	default:
	}
}

// checkpointEvery is how often the journal records finished segments.
var checkpointEvery = 250 * time.Millisecond

func (c *converter) convert(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if !c.opts.NoSync {
		c.flush = startWriteback(int(c.out.f.Fd()))
		defer c.flush.stop()
	}
	c.progress(c.journal.resumedBytes(c.total))
	var wg sync.WaitGroup
	for range c.workers {
		wg.Go(func() {
			if err := c.work(ctx); err != nil {
				cancel(err)
				if c.hash != nil {
					c.hash.abort(err)
				}
			}
		})
	}
	stop := make(chan struct{})
	var ckpt sync.WaitGroup
	ckpt.Go(func() {
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := c.journal.checkpoint(c.out, c.hash, c.opts.NoSync); err != nil {
					cancel(err)
				}
			}
		}
	})
	wg.Wait()
	close(stop)
	ckpt.Wait()
	if err := context.Cause(ctx); err != nil {
		// Record what was finished, so a resumed run need not redo it.
		if c.opts.Resume {
			c.journal.checkpoint(c.out, c.hash, c.opts.NoSync)
		}
		return err
	}
	return nil
}

// work converts segments until none are left.
func (c *converter) work(ctx context.Context) error {
	buf := make([]byte, bufferSize)
	for {
		i := int(c.next.Add(1) - 1)
		if i >= c.segments {
			return nil
		}
		if c.hash != nil {
			if err := c.hash.admit(i); err != nil {
				return err
			}
		}
		if c.journal.isDone(i) {
			if c.hash != nil {
				if err := c.hash.submit(i, nil); err != nil {
					return err
				}
			}
			continue
		}
		ps, err := c.segment(ctx, i, buf)
		if err != nil {
			return err
		}
		c.journal.markDone(i)
		start := int64(i) * segmentSize
		c.flush.add(start, min(segmentSize, c.total-start))
		if c.hash != nil {
			if err := c.hash.submit(i, ps); err != nil {
				return err
			}
		}
	}
}

// segment converts segment i and, when checksumming, returns its pieces.
func (c *converter) segment(ctx context.Context, i int, buf []byte) ([]piece, error) {
	start := int64(i) * segmentSize
	n := min(segmentSize, c.total-start)
	keep := c.hash != nil
	var ps []piece
	for e, err := range c.src.Extents(start, n) {
		if err != nil {
			return nil, err
		}
		if err := context.Cause(ctx); err != nil {
			return nil, err
		}
		if e.Kind == disk.Zero {
			if c.out.device && !c.opts.DeviceZeroed {
				if err := c.out.zero(e.Offset, e.Length); err != nil {
					return nil, err
				}
			}
			ps = append(ps, piece{n: e.Length})
			c.progress(e.Length)
			continue
		}
		// Bytes stored verbatim are read straight from their storage (for
		// a host file, pread from the page cache: measured cheaper than
		// faulting in a mapping), not through the image.
		var stored disk.Storage
		if !e.Compressed {
			stored = e.Stored
		}
		for off := e.Offset; off < e.End(); {
			k := min(int64(len(buf)), e.End()-off)
			b := buf[:k]
			if keep {
				b = c.hash.bufs.get()[:k]
			}
			if stored != nil {
				if err := disk.ReadFull(stored, "convert", "stored data", b, e.StoredOffset+off-e.Offset); err != nil {
					return nil, err
				}
			} else if _, err := c.src.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && off+k == c.total) {
				return nil, err
			}
			if err := c.write(b, off); err != nil {
				return nil, err
			}
			if keep {
				ps = append(ps, piece{n: k, data: b, pooled: true})
			}
			c.progress(k)
			off += k
			if err := context.Cause(ctx); err != nil {
				return nil, err
			}
		}
	}
	if !keep {
		return nil, nil
	}
	return ps, nil
}

// write writes b at off, skipping whole zero blocks unless the destination
// is a device that is not known to be zero.
func (c *converter) write(b []byte, off int64) error {
	if c.out.device && !c.opts.DeviceZeroed {
		return c.pwrite(b, off)
	}
	for len(b) > 0 {
		z := zeroPrefix(b, off, true)
		b, off = b[z:], off+int64(z)
		d := zeroPrefix(b, off, false)
		if d > 0 {
			if err := c.pwrite(b[:d], off); err != nil {
				return err
			}
		}
		b, off = b[d:], off+int64(d)
	}
	return nil
}

// zeroPrefix returns the length of the longest prefix of b made of blocks
// (aligned to zeroBlock in the volume, b starting at off) that are all
// zero (zero true) or each hold a non-zero byte (zero false).
func zeroPrefix(b []byte, off int64, zero bool) int {
	p := 0
	for p < len(b) {
		k := min(zeroBlock-int((off+int64(p))%zeroBlock), len(b)-p)
		if disk.IsZero(b[p:p+k]) != zero {
			break
		}
		p += k
	}
	return p
}

func (c *converter) pwrite(b []byte, off int64) error {
	if _, err := c.out.f.WriteAt(b, off); err != nil {
		return fmt.Errorf("convert: writing %s at %d: %w", c.out.dst, off, err)
	}
	c.written.Add(int64(len(b)))
	return nil
}

func (c *converter) progress(n int64) {
	if c.opts.Progress == nil || n == 0 {
		return
	}
	c.mu.Lock()
	c.done += n
	c.opts.Progress(c.done, c.total)
	c.mu.Unlock()
}
