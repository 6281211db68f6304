package vmdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/diskport/diskport/disk"
)

// A grainJob carries one grain of the source through the writers'
// pipeline: read and tested for zeros (and compressed, for a stream) by a
// worker, then handed to the single goroutine that writes the output in
// grain order. Jobs and their buffers are recycled, so memory stays at a
// few grains per worker whatever the disk's size.
type grainJob struct {
	index int64  // grain number in the virtual disk
	buf   []byte // the grain's bytes, writeGrainBytes long, zero-padded past the source's end
	out   []byte // the stream's grain marker, compressed bytes and padding
	zero  bool   // the grain reads as zeros: write nothing
	err   error
	done  chan struct{}
}

// A grainPipe reads the grains of src that its extent map says may hold
// data, in parallel, and delivers them in ascending order.
type grainPipe struct {
	src     disk.Image
	size    int64
	workers int
	// work, if non-nil, runs on the worker for every grain that is not
	// all zeros (the stream compresses it).
	work func(j *grainJob) error
	// newOut sizes a job's out buffer (nil: none).
	newOut func() []byte
}

// run calls emit for every grain that may hold data, in ascending grain
// order, from the calling goroutine; all-zero grains come with zero set.
// It stops at the first error of the source, of work, of emit, or of ctx.
func (p *grainPipe) run(ctx context.Context, emit func(j *grainJob) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	nJobs := 2*p.workers + 2
	free := make(chan *grainJob, nJobs)
	for range nJobs {
		j := &grainJob{buf: make([]byte, writeGrainBytes), done: make(chan struct{}, 1)}
		if p.newOut != nil {
			j.out = p.newOut()
		}
		free <- j
	}
	// Both queues hold every job at once, so sends never block.
	work := make(chan *grainJob, nJobs)
	order := make(chan *grainJob, nJobs)

	var wg sync.WaitGroup
	for range p.workers {
		wg.Go(func() {
			for j := range work {
				if ctx.Err() != nil {
					j.err = ctx.Err()
				} else {
					j.err = p.process(j)
				}
				j.done <- struct{}{}
			}
		})
	}

	var mapErr error // set by the producer before it closes order
	go func() {
		defer close(order)
		defer close(work)
		mapErr = p.produce(ctx, free, work, order)
	}()

	var err error
	for j := range order {
		<-j.done
		if err == nil {
			err = j.err
			if err == nil {
				err = emit(j)
			}
			if err != nil {
				cancel()
			}
		}
		j.err, j.zero = nil, false
		free <- j
	}
	wg.Wait()
	if err == nil {
		err = mapErr
	}
	if err == nil {
		// A cancellation the producer noticed ends the queue early.
		err = ctx.Err()
	}
	return err
}

// produce walks the source's extent map and queues each grain that a
// data run touches, once, in ascending order.
func (p *grainPipe) produce(ctx context.Context, free <-chan *grainJob, work, order chan<- *grainJob) error {
	next := int64(0) // first grain not yet queued
	for e, err := range p.src.Extents(0, p.size) {
		if err != nil {
			return fmt.Errorf("vmdk: mapping the source's extents at byte %d: %w", next*writeGrainBytes, err)
		}
		if e.Kind != disk.Data || e.Length <= 0 {
			continue
		}
		first := max(e.Offset/writeGrainBytes, next)
		last := (e.End() - 1) / writeGrainBytes
		for g := first; g <= last; g++ {
			var j *grainJob
			select {
			case j = <-free:
			case <-ctx.Done():
				return nil // run reports ctx's error
			}
			j.index = g
			work <- j
			order <- j
		}
		next = max(next, last+1)
	}
	return nil
}

// process reads grain j.index of the source, tests it for zeros, and runs
// work on it when it holds data.
func (p *grainPipe) process(j *grainJob) error {
	off := j.index * writeGrainBytes
	n := min(writeGrainBytes, p.size-off)
	k, err := p.src.ReadAt(j.buf[:n], off)
	if int64(k) < n {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("vmdk: reading source at byte %d: %w", off+int64(k), err)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("vmdk: reading source at byte %d: %w", off, err)
	}
	clear(j.buf[n:])
	if disk.IsZero(j.buf[:n]) {
		j.zero = true
		return nil
	}
	if p.work != nil {
		return p.work(j)
	}
	return nil
}
