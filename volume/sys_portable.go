//go:build !linux || portable

package volume

import (
	"errors"
	"os"

	"github.com/diskport/diskport/disk"
)

// The portable side of the writer: files only, written with pwrite; zero
// runs are skipped (Fill), which leaves holes wherever the file system
// makes them for a file sized with Truncate; writeback is one fsync at
// Commit.

// blockDevices says this build writes block devices: only Linux does.
const blockDevices = false

// punchesHoles says Zero leaves holes in a file rather than writing zeros.
const punchesHoles = false

// errNoZeroRange sends Zero to writing zeros.
var errNoZeroRange = errors.New("volume: no portable way to punch a hole")

// zeroRange has no portable call to make: Zero writes zeros.
func (w *Writer) zeroRange(off, n int64) error { return errNoZeroRange }

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
