package vhd

import (
	"context"
	"os"
	"sync"
)

// A task is a piece of the virtual disk a writer handles as a unit: a
// dynamic disk's block, or a chunk or zero run of a fixed disk.
type task struct {
	seq    int64 // commit order, from 0
	off, n int64 // the virtual range [off, off+n)
	// lo and hi bound the bytes [off+lo, off+hi) to read; the rest of
	// the range is known to be zeros. lo == hi: nothing to read.
	lo, hi int64
	// file, when non-nil, holds [off+lo, off+hi) verbatim from byte
	// fileOff, so the bytes can be copied inside the kernel.
	file    *os.File
	fileOff int64
	zero    bool  // set by load: the range reads as zeros
	copy    bool  // set by load: the bytes are to be copied from file
	at      int64 // where commit placed the task in the output
}

// A pipeline runs tasks through workers: each worker loads a task (reads
// and zero-tests it, in parallel with the others) into its own buffer,
// then commits it under a lock in task order (placing it in the output,
// reporting progress), then finishes it outside the lock (writing it at
// the place commit chose). Ordering only the cheap commit keeps the
// output's layout deterministic while reads and writes overlap.
type pipeline struct {
	workers int
	newBuf  func() []byte
	load    func(t *task, buf []byte) error
	commit  func(t *task, buf []byte) error
	finish  func(t *task, buf []byte) error // may be nil
}

// run feeds the tasks gen emits to the workers and returns the first
// error of gen, a worker or ctx. gen's emit returns false once the run is
// failing; gen should then return.
func (p *pipeline) run(ctx context.Context, gen func(emit func(task) bool) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		turn = sync.NewCond(&mu)
		next int64 // seq of the task to commit next
		err  error // the first error
	)
	fail := func(e error) {
		mu.Lock()
		if err == nil {
			err = e
		}
		turn.Broadcast()
		mu.Unlock()
		cancel()
	}
	tasks := make(chan task, p.workers)
	var wg sync.WaitGroup
	for range p.workers {
		wg.Go(func() {
			var buf []byte
			for t := range tasks {
				if e := ctx.Err(); e != nil {
					// A dropped task must still release the workers
					// waiting for their turn after it: fail does.
					fail(e)
					continue
				}
				if buf == nil && p.newBuf != nil {
					buf = p.newBuf()
				}
				if e := p.load(&t, buf); e != nil {
					fail(e)
					continue
				}
				mu.Lock()
				for next != t.seq && err == nil {
					turn.Wait()
				}
				if err != nil {
					mu.Unlock()
					continue
				}
				e := p.commit(&t, buf)
				next++
				turn.Broadcast()
				mu.Unlock()
				if e != nil {
					fail(e)
					continue
				}
				if p.finish != nil {
					if e := p.finish(&t, buf); e != nil {
						fail(e)
					}
				}
			}
		})
	}
	var seq int64
	genErr := gen(func(t task) bool {
		t.seq = seq
		select {
		case tasks <- t:
			seq++
			return true
		case <-ctx.Done():
			return false
		}
	})
	close(tasks)
	wg.Wait()
	if genErr != nil {
		return genErr
	}
	if err != nil {
		return err
	}
	return ctx.Err()
}
