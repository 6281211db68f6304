package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/atomicfile"
)

// Options control how a volume is written.
type Options struct {
	// Force overwrites an existing destination file. (A block device is
	// always written in place.)
	Force bool
	// NoSync skips flushing the volume (and the journal) to stable storage
	// (for benchmarks and scratch work): the volume then survives the
	// process being killed, not a crash of the machine.
	NoSync bool
	// DeviceZeroed says a block-device destination already reads as zeros
	// (a fresh EBS volume), so zeros need not be written to it.
	DeviceZeroed bool
	// Resume continues the interrupted run that wrote the temporary file
	// of dst, if its journal matches Journal. It needs Journal and a file
	// destination.
	Resume bool
	// Journal, when set, makes a file volume keep a resume journal of
	// Journal.Segments segments. A block device keeps none.
	Journal *JournalSpec
}

// A Writer writes one volume. Its write methods may be called from several
// goroutines at once; Commit, Abort and Keep end it and must be called once,
// after every write has returned.
type Writer struct {
	f           *os.File
	dst         string // the final name
	tmp         string // the temporary name; "" for a device
	device      bool
	fresh       bool // unwritten space reads as zeros
	size        int64
	noSync      bool
	startedOver string
	resumed     bool
	journal     *Journal
	flush       *writeback // nil with NoSync
	written     atomic.Int64
	// writing serialises writes to a file: the filesystem holds the
	// inode's lock through a buffered write's copy (ext4, XFS), and a
	// second writer spins in the kernel on it, burning CPU.
	writing sync.Mutex
	noCopy  atomic.Bool // copy_file_range was refused: CopyFrom writes from its buffer
}

// PartialName returns the temporary name a file volume for dst is written
// under until Commit.
func PartialName(dst string) string {
	return filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".diskport-partial")
}

// An ExistsError is a destination that exists, refused without
// Options.Force. errors.Is(err, fs.ErrExist) matches it.
type ExistsError struct {
	Path string
}

func (e *ExistsError) Error() string {
	return "volume: destination " + e.Path + " exists (Options.Force overwrites it)"
}

// Is reports whether target is fs.ErrExist.
func (e *ExistsError) Is(target error) bool { return target == fs.ErrExist }

// Remove removes the file volume dst and whatever an unfinished run left
// beside it (the temporary file, the resume journal and its unfinished
// replacement). Names that do not exist are not an error.
func Remove(dst string) error {
	var errs []error
	for _, p := range []string{dst, PartialName(dst), JournalName(dst), JournalName(dst) + ".new"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Create prepares dst for a volume of size bytes: a new file (an existing
// one only with opts.Force; with opts.Resume the temporary file of an
// interrupted run is continued), or an existing block device of at least
// size bytes, written in place.
func Create(dst string, size int64, opts Options) (*Writer, error) {
	if size < 0 {
		return nil, fmt.Errorf("volume: negative size %d for %s", size, dst)
	}
	if opts.Resume && opts.Journal == nil {
		return nil, fmt.Errorf("volume: cannot resume into %s without a journal", dst)
	}
	st, err := os.Stat(dst)
	switch {
	case err == nil && st.Mode()&fs.ModeDevice != 0 && st.Mode()&fs.ModeCharDevice == 0:
		if opts.Resume {
			return nil, fmt.Errorf("volume: cannot resume onto block device %s: it keeps no journal", dst)
		}
		return openDevice(dst, size, opts)
	case err == nil && st.IsDir():
		return nil, fmt.Errorf("volume: destination %s is a directory", dst)
	case err == nil && !st.Mode().IsRegular():
		return nil, fmt.Errorf("volume: destination %s is not a regular file or block device (%s)", dst, st.Mode().Type())
	case err == nil && !opts.Force:
		return nil, &ExistsError{Path: dst}
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("volume: %w", err)
	}
	w := &Writer{dst: dst, tmp: PartialName(dst), fresh: true, size: size, noSync: opts.NoSync}
	if opts.Resume {
		if err := w.resume(opts.Journal); err != nil {
			return nil, err
		}
	}
	if w.f == nil {
		// A new run: the old journal goes before the file it describes is
		// truncated, so no journal ever describes a file it did not see.
		if err := removeJournal(dst, !opts.NoSync); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(w.tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("volume: %w", err)
		}
		w.f = f
		SetSparse(f) // where it fails, the file is written whole
		if opts.Journal != nil {
			w.journal = newJournal(w, *opts.Journal)
		}
	}
	if err := w.f.Truncate(size); err != nil {
		w.Abort()
		return nil, fmt.Errorf("volume: sizing %s to %d bytes: %w", w.tmp, size, err)
	}
	w.startWriteback()
	return w, nil
}

// resume reopens the temporary file of an interrupted run with its journal.
// When there is nothing to continue, w.f stays nil (a new run) and
// w.startedOver says why.
func (w *Writer) resume(spec *JournalSpec) error {
	f, err := os.OpenFile(w.tmp, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		w.startedOver = "no partial output to resume: starting over"
		return nil
	}
	if err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	j, why, err := loadJournal(w, f, *spec)
	if err != nil {
		f.Close()
		return err
	}
	if j == nil {
		f.Close()
		w.startedOver = why + ": starting over"
		return nil
	}
	w.f, w.journal, w.resumed = f, j, true
	return nil
}

func openDevice(dst string, size int64, opts Options) (*Writer, error) {
	if !blockDevices {
		return nil, fmt.Errorf("volume: destination %s is a block device: only the Linux build writes block devices", dst)
	}
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	n, err := f.Seek(0, 2)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("volume: size of %s: %w", dst, err)
	}
	if n < size {
		f.Close()
		return nil, fmt.Errorf("volume: block device %s holds %d bytes, the volume needs %d", dst, n, size)
	}
	w := &Writer{f: f, dst: dst, device: true, fresh: opts.DeviceZeroed, size: size, noSync: opts.NoSync}
	w.startWriteback()
	return w, nil
}

func (w *Writer) startWriteback() {
	if !w.noSync {
		w.flush = startWriteback(int(w.f.Fd()))
	}
}

// Device reports whether the volume is a block device written in place.
func (w *Writer) Device() bool { return w.device }

// Size returns the volume's size in bytes.
func (w *Writer) Size() int64 { return w.size }

// Journal returns the resume journal, or nil when the volume keeps none
// (no Options.Journal, or a block device).
func (w *Writer) Journal() *Journal { return w.journal }

// Resumed reports whether the writer continues the temporary file of an
// interrupted run: the segments its journal lists as done hold their data;
// any other range may hold some of what the killed run wrote, and is best
// reset with Zero before it is filled again.
func (w *Writer) Resumed() bool { return w.resumed }

// StartedOver returns why a run asked to resume (Options.Resume) found
// nothing it could continue and started from zero, such as "no journal:
// starting over"; "" when it resumed or was not asked to.
func (w *Writer) StartedOver() string { return w.startedOver }

// Written returns the bytes written to the volume so far (skipped zero
// blocks and zeroed ranges are not counted).
func (w *Writer) Written() int64 { return w.written.Load() }

// WriteAt writes all of b at off, as io.WriterAt.
func (w *Writer) WriteAt(b []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(b)) > w.size {
		return 0, fmt.Errorf("volume: writing %d bytes at %d past the end of %s (%d bytes)", len(b), off, w.dst, w.size)
	}
	if !w.device {
		w.writing.Lock()
	}
	n, err := w.f.WriteAt(b, off)
	if !w.device {
		w.writing.Unlock()
	}
	w.written.Add(int64(n))
	if err != nil {
		return n, fmt.Errorf("volume: writing %s at %d: %w", w.dst, off, err)
	}
	return n, nil
}

// zeroBlock is the granularity at which Fill finds and skips zeros (the
// volume's blocks; qemu-img's default -S 4k).
const zeroBlock = 4096

// Fill writes b at off into a range not written since Create (or made
// zero by Zero since): where the volume's unwritten space reads as zeros (a
// file, a device created with DeviceZeroed), whole zero blocks, aligned in
// the volume, are skipped, leaving holes in a file; elsewhere every byte is
// written.
func (w *Writer) Fill(b []byte, off int64) error {
	if !w.fresh {
		_, err := w.WriteAt(b, off)
		return err
	}
	for len(b) > 0 {
		z := zeroPrefix(b, off, true)
		b, off = b[z:], off+int64(z)
		d := zeroPrefix(b, off, false)
		if d > 0 {
			if _, err := w.WriteAt(b[:d], off); err != nil {
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

// FillZero makes [off, off+n), a range not written since Create, read as
// zeros: nothing to do where unwritten space reads as zeros, else Zero.
func (w *Writer) FillZero(off, n int64) error {
	if w.fresh {
		return nil
	}
	return w.Zero(off, n)
}

// Zero makes [off, off+n) read as zeros, whatever was written there: on
// Linux a file gets a hole (fallocate PUNCH_HOLE), a device is zeroed
// (BLKZEROOUT); on Windows a file gets a hole (FSCTL_SET_ZERO_DATA);
// where the call is refused, and on other systems, zeros are written.
func (w *Writer) Zero(off, n int64) error {
	if off < 0 || n < 0 || off+n > w.size {
		return fmt.Errorf("volume: zeroing %d bytes at %d past the end of %s (%d bytes)", n, off, w.dst, w.size)
	}
	if n == 0 {
		return nil
	}
	if w.zeroRange(off, n) == nil {
		return nil
	}
	zeros := make([]byte, min(n, 1<<20)) // only where the kernel cannot zero
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := w.f.WriteAt(zeros[:k], off); err != nil {
			return fmt.Errorf("volume: zeroing %s at %d: %w", w.dst, off, err)
		}
		off += k
		n -= k
	}
	return nil
}

// Writeback starts the kernel writing [off, off+n), a finished range, to
// stable storage without waiting for it (nothing with NoSync).
func (w *Writer) Writeback(off, n int64) { w.flush.add(off, n) }

func (w *Writer) stopWriteback() {
	w.flush.stop()
	w.flush = nil
}

// sync flushes the volume's data to stable storage unless NoSync.
func (w *Writer) sync() error {
	if w.noSync {
		return nil
	}
	if err := datasync(w.f); err != nil {
		return fmt.Errorf("volume: flushing %s: %w", w.dst, err)
	}
	return nil
}

// Commit finishes the volume: it is flushed to stable storage (unless
// NoSync), its journal removed and, for a file, renamed to its final name
// and the directory synced. On error the temporary file is removed.
func (w *Writer) Commit() error {
	w.stopWriteback()
	if err := w.sync(); err != nil {
		w.Abort()
		return err
	}
	if err := w.f.Close(); err != nil {
		w.Abort()
		return fmt.Errorf("volume: %w", err)
	}
	if w.device {
		return nil
	}
	// The journal goes first: killed between the two steps, a resumed run
	// finds a partial file without a journal and starts over.
	removeJournal(w.dst, false)
	if err := w.rename(w.tmp, w.dst); err != nil {
		os.Remove(w.tmp)
		return fmt.Errorf("volume: %w", err)
	}
	return nil
}

// rename renames tmp, written and synced, to dst by atomicfile's rule;
// with NoSync the directory is not synced either.
func (w *Writer) rename(tmp, dst string) error {
	if w.noSync {
		return os.Rename(tmp, dst)
	}
	return atomicfile.Rename(tmp, dst)
}

// Abort ends a failed run: the file is closed and a temporary file and its
// journal removed. A device is left as it is.
func (w *Writer) Abort() {
	w.stopWriteback()
	w.f.Close()
	if !w.device {
		removeJournal(w.dst, false)
		os.Remove(w.tmp)
	}
}

// Keep ends an interrupted run that may be resumed: the file is closed and
// a temporary file and its journal are kept for Options.Resume. (Call
// Journal.Checkpoint first to record the latest finished segments.) Without
// a journal, Keep is Abort.
func (w *Writer) Keep() {
	if w.journal == nil {
		w.Abort()
		return
	}
	w.stopWriteback()
	w.f.Close()
}

// ReadAt reads back what the volume holds at off (for checksums of
// segments an earlier run wrote).
func (w *Writer) ReadAt(b []byte, off int64) (int, error) { return w.f.ReadAt(b, off) }
