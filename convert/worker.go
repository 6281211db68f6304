package convert

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/volume"
)

// converter is one conversion in progress.
type converter struct {
	src      disk.Image
	out      *volume.Writer
	opts     Options
	total    int64 // virtual size
	workers  int
	segments int
	dst      string
	resumed  bool // continuing an interrupted run's output

	next    atomic.Int64    // next segment to hand out
	journal *volume.Journal // nil for a block device
	hash    *orderedHash    // nil without Options.Checksum

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
	c.progress(c.resumedBytes())
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
		if c.journal == nil {
			return
		}
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := c.checkpoint(); err != nil {
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
		if c.opts.Resume && c.journal != nil {
			c.checkpoint()
		}
		return err
	}
	return nil
}

// checkpoint records the finished segments and the checksum's progress in
// the journal.
func (c *converter) checkpoint() error {
	var state []byte
	if c.hash != nil {
		state = hashState(c.hash.snapshot())
	}
	return c.journal.Checkpoint(state)
}

// finished reports whether segment i was finished, by an earlier run when
// resuming.
func (c *converter) finished(i int) bool { return c.journal != nil && c.journal.Done(i) }

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
		if c.finished(i) {
			if c.hash != nil {
				if err := c.hash.submit(i, nil); err != nil {
					return err
				}
			}
			continue
		}
		start := int64(i) * segmentSize
		n := min(segmentSize, c.total-start)
		if c.resumed {
			// What the killed run wrote of an unfinished segment is
			// dropped: the segment is written afresh.
			if err := c.out.Zero(start, n); err != nil {
				return err
			}
		}
		ps, err := c.segment(ctx, i, buf)
		if err != nil {
			return err
		}
		if c.journal != nil {
			c.journal.MarkDone(i)
		}
		c.out.Writeback(start, n)
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
	for x, err := range c.src.Extents(start, n) {
		if err != nil {
			return nil, err
		}
		for e, err := range storedRuns(x) {
			if err != nil {
				return nil, err
			}
			if err := context.Cause(ctx); err != nil {
				return nil, err
			}
			if e.Kind == disk.Zero {
				if err := c.out.FillZero(e.Offset, e.Length); err != nil {
					return nil, err
				}
				ps = append(ps, piece{n: e.Length})
				c.progress(e.Length)
				continue
			}
			if ps, err = c.data(ctx, e, buf, ps); err != nil {
				return nil, err
			}
		}
	}
	if !keep {
		return nil, nil
	}
	return ps, nil
}

// data converts the data run e, appending its pieces to ps when
// checksumming.
func (c *converter) data(ctx context.Context, e disk.Extent, buf []byte, ps []piece) ([]piece, error) {
	keep := c.hash != nil
	// Stored verbatim in a host file, the run's data blocks are copied by
	// the kernel once read for the zero scan. Not when checksumming: the
	// digest must be of the bytes written, so they are written from the
	// buffer that was hashed.
	hf, verbatim := e.Stored.(disk.OSStorage)
	verbatim = verbatim && !keep && !e.Compressed
	for off := e.Offset; off < e.End(); {
		k := min(int64(len(buf)), e.End()-off)
		b := buf[:k]
		if keep {
			b = c.hash.bufs.get()[:k]
		}
		if verbatim {
			if err := c.out.CopyFrom(hf, e.StoredOffset+off-e.Offset, b, off); err != nil {
				return nil, err
			}
		} else if err := readData(c.src, e, off, b); err != nil {
			return nil, err
		} else if err := c.out.Fill(b, off); err != nil {
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
	return ps, nil
}

// readData reads b at off, inside the data run e of src. Bytes stored
// verbatim are read straight from their storage (for a host file, pread
// from the page cache), not through the image; compressed ones through the
// image, which inflates them.
func readData(src disk.Image, e disk.Extent, off int64, b []byte) error {
	if e.Stored != nil && !e.Compressed {
		return disk.ReadFull(e.Stored, "convert", "stored data", b, e.StoredOffset+off-e.Offset)
	}
	if _, err := src.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && off+int64(len(b)) == src.Size()) {
		return err
	}
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
