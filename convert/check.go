package convert

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/diskport/diskport/disk"
)

// CheckOptions configure [Check].
type CheckOptions struct {
	// Workers is the number of segments read at once; 0 means one per
	// CPU, at most 8 (as Convert).
	Workers int
	// Progress, when set, is called with the bytes checked so far and the
	// virtual size.
	Progress func(done, total int64)
	// MaxProblems stops the check after this many problems; 0 means 100.
	MaxProblems int
}

// A Problem is one range of the image that cannot be read.
type Problem struct {
	// Offset is where in the virtual disk the failing segment starts
	// (the reader's error says where exactly, in the image file).
	Offset, Length int64
	// Err is the reader's error: what is wrong, and where.
	Err error
}

func (p Problem) Error() string {
	return fmt.Sprintf("virtual bytes %d-%d: %v", p.Offset, p.Offset+p.Length-1, p.Err)
}

// CheckResult is what [Check] found.
type CheckResult struct {
	// VirtualSize is the image's size; DataBytes and ZeroBytes how much of
	// it was read as data and as zero runs.
	VirtualSize, DataBytes, ZeroBytes int64
	// Problems are the failing segments, in offset order; empty when the
	// image reads whole. Corrupt images fail here as Convert would fail.
	Problems []Problem
}

// Check reads all of src as [Convert] does — every table, every stored
// block, every compressed grain inflated — without writing anything, and
// reports the ranges that fail; then, as Convert does, the checksums its
// source carries (an image that is a disk.Verifier). An image Check passes is one Convert
// converts, and an image Check faults is one Convert refuses. The error is
// for what stops the check itself (ctx cancelled); the image's own
// defects are in the result's Problems.
func Check(ctx context.Context, src disk.Image, opts CheckOptions) (*CheckResult, error) {
	total := src.Size()
	segments := int((total + segmentSize - 1) / segmentSize)
	workers := opts.Workers
	if workers <= 0 {
		workers = min(runtime.GOMAXPROCS(0), 8)
	}
	maxProblems := opts.MaxProblems
	if maxProblems <= 0 {
		maxProblems = 100
	}
	res := &CheckResult{VirtualSize: total}
	var (
		next, done, data, zero atomic.Int64
		mu                     sync.Mutex
		wg                     sync.WaitGroup
	)
	progress := func(n int64) {
		d := done.Add(n)
		if opts.Progress != nil {
			mu.Lock()
			opts.Progress(d, total)
			mu.Unlock()
		}
	}
	for range workers {
		wg.Go(func() {
			buf := make([]byte, bufferSize)
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= segments {
					return
				}
				start := int64(i) * segmentSize
				n := min(segmentSize, total-start)
				d, z, err := checkSegment(ctx, src, start, n, buf)
				data.Add(d)
				zero.Add(z)
				progress(n)
				if err == nil || ctx.Err() != nil {
					continue
				}
				mu.Lock()
				res.Problems = append(res.Problems, Problem{Offset: start, Length: n, Err: err})
				full := len(res.Problems) >= maxProblems
				mu.Unlock()
				if full {
					next.Store(int64(segments))
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	sort.Slice(res.Problems, func(a, b int) bool { return res.Problems[a].Offset < res.Problems[b].Offset })
	res.DataBytes, res.ZeroBytes = data.Load(), zero.Load()
	// The checksums the source carries, as Convert checks them before it
	// commits: a problem of the whole image.
	if v, ok := src.(disk.Verifier); ok && len(res.Problems) == 0 {
		if err := v.Verify(); err != nil {
			res.Problems = append(res.Problems, Problem{Offset: 0, Length: total, Err: err})
		}
	}
	return res, nil
}

// checkSegment reads [start, start+n) of src as Convert's segment does,
// into buf, and returns the data and zero bytes it saw.
func checkSegment(ctx context.Context, src disk.Image, start, n int64, buf []byte) (data, zero int64, err error) {
	for e, err := range src.Extents(start, n) {
		if err != nil {
			return data, zero, err
		}
		if e.Kind == disk.Zero {
			zero += e.Length
			continue
		}
		for off := e.Offset; off < e.End(); off += int64(len(buf)) {
			if err := ctx.Err(); err != nil {
				return data, zero, err
			}
			b := buf[:min(int64(len(buf)), e.End()-off)]
			if err := readData(src, e, off, b); err != nil {
				return data, zero, err
			}
			data += int64(len(b))
		}
	}
	return data, zero, nil
}
