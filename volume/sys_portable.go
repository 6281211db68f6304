//go:build !linux || portable

package volume

import (
	"os"

	"github.com/diskport/diskport/disk"
)

// The portable side of the writer: files only, written with pwrite; zero
// runs are skipped (Fill), which leaves holes wherever the file system
// makes them for a file sized with Truncate (on Windows, once SetSparse
// has marked it); writeback is one fsync at Commit.

// blockDevices says this build writes block devices: only Linux does.
const blockDevices = false

// zeroRange punches a hole where the OS has a call for it (Windows:
// sparse_windows.go); an error means the caller writes zeros.
func (w *Writer) zeroRange(off, n int64) error { return punchHole(w.f, off, n) }

// datasync flushes f to stable storage: fsync (F_FULLFSYNC on macOS,
// FlushFileBuffers on Windows, as os.File.Sync does).
func datasync(f *os.File) error { return f.Sync() }

// copyRange copies nothing: copy_file_range is Linux-only, and CopyFrom
// writes from its buffer.
func (w *Writer) copyRange(src disk.OSStorage, srcOff, off, n int64) (int64, error) {
	return 0, nil
}

// A writeback does nothing on the portable build: without
// sync_file_range the data is written out by the fsync at Commit.
type writeback struct{}

// startWriteback returns nil: there is no early writeout to start.
func startWriteback(int) *writeback { return nil }

// add does nothing.
func (w *writeback) add(off, n int64) {}

// stop does nothing.
func (w *writeback) stop() {}
