//go:build linux && !portable

package volume

import "golang.org/x/sys/unix"

// A writeback starts the kernel writing finished segments of the output to
// disk while later ones are still being converted, so that in the durable
// mode the final fdatasync has little left to wait for. Without it the
// dirty pages of the whole volume are written only at the end, after all
// the CPU work, and the flush then takes most of a durable conversion's
// time; started early, the writeout overlaps the conversion
// (bench/RESULTS.md has the durable mode's times).
//
// Ranges are handed to one goroutine that calls sync_file_range
// (SYNC_FILE_RANGE_WRITE: start writeout, do not wait for it), since the
// call can block while the device's queue is full and workers must not.
// When the goroutine falls behind, ranges are dropped: the final fdatasync
// writes whatever is still dirty.
type writeback struct {
	fd   int
	ch   chan [2]int64
	done chan struct{}
}

// startWriteback returns a writeback for the file descriptor fd.
func startWriteback(fd int) *writeback {
	w := &writeback{fd: fd, ch: make(chan [2]int64, 64), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for r := range w.ch {
			// An error (a filesystem without the call) only loses the
			// head start; fdatasync reports real write errors.
			unix.SyncFileRange(w.fd, r[0], r[1], unix.SYNC_FILE_RANGE_WRITE)
		}
	}()
	return w
}

// add asks for writeout of [off, off+n) to start, without waiting.
func (w *writeback) add(off, n int64) {
	if w == nil {
		return
	}
	select {
	case w.ch <- [2]int64{off, n}:
	default:
	}
}

// stop waits for the goroutine to finish the ranges it was given.
func (w *writeback) stop() {
	if w == nil {
		return
	}
	close(w.ch)
	<-w.done
}
