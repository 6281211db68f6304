package convert

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// output is where a volume is written: a temporary file beside the
// destination, renamed into place on success, or a block device written in
// place.
type output struct {
	f       *os.File
	dst     string // the final name
	tmp     string // the temporary name; "" for a device
	device  bool
	size    int64 // volume size
	resumed bool  // the temporary file of an earlier run was reopened
}

// partialName returns the temporary name a conversion to dst writes to.
func partialName(dst string) string {
	return filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".diskport-partial")
}

// createOutput prepares dst for a volume of size bytes.
func createOutput(dst string, size int64, opts Options) (*output, error) {
	st, err := os.Stat(dst)
	switch {
	case err == nil && st.Mode()&fs.ModeDevice != 0 && st.Mode()&fs.ModeCharDevice == 0:
		return openDevice(dst, size)
	case err == nil && st.IsDir():
		return nil, fmt.Errorf("convert: destination %s is a directory", dst)
	case err == nil && !opts.Force:
		return nil, fmt.Errorf("convert: destination %s exists (use --force to overwrite it)", dst)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("convert: %w", err)
	}
	tmp := partialName(dst)
	flags := os.O_RDWR | os.O_CREATE | os.O_TRUNC
	resumed := false
	if opts.Resume {
		if _, err := os.Stat(tmp); err == nil {
			flags, resumed = os.O_RDWR, true
		}
	}
	f, err := os.OpenFile(tmp, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	o := &output{f: f, dst: dst, tmp: tmp, size: size, resumed: resumed}
	if err := f.Truncate(size); err != nil {
		o.abort()
		return nil, fmt.Errorf("convert: sizing %s to %d bytes: %w", tmp, size, err)
	}
	return o, nil
}

func openDevice(dst string, size int64) (*output, error) {
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	n, err := f.Seek(0, 2)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("convert: size of %s: %w", dst, err)
	}
	if n < size {
		f.Close()
		return nil, fmt.Errorf("convert: block device %s holds %d bytes, the volume needs %d", dst, n, size)
	}
	return &output{f: f, dst: dst, device: true, size: size}, nil
}

// zero makes [off, off+n) of a device read as zeros.
func (o *output) zero(off, n int64) error {
	r := [2]uint64{uint64(off), uint64(n)}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, o.f.Fd(), unix.BLKZEROOUT, uintptr(unsafe.Pointer(&r[0])))
	if errno == 0 {
		return nil
	}
	zeros := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := o.f.WriteAt(zeros[:k], off); err != nil {
			return fmt.Errorf("convert: zeroing %s at %d: %w", o.dst, off, err)
		}
		off += k
		n -= k
	}
	return nil
}

// commit makes the volume durable (unless noSync) and gives it its final
// name.
func (o *output) commit(noSync bool) error {
	if !noSync {
		if err := unix.Fdatasync(int(o.f.Fd())); err != nil {
			o.abort()
			return fmt.Errorf("convert: flushing %s: %w", o.dst, err)
		}
	}
	if err := o.f.Close(); err != nil {
		o.abort()
		return fmt.Errorf("convert: %w", err)
	}
	if o.device {
		return nil
	}
	if err := os.Rename(o.tmp, o.dst); err != nil {
		os.Remove(o.tmp)
		return fmt.Errorf("convert: %w", err)
	}
	if !noSync {
		if d, err := os.Open(filepath.Dir(o.dst)); err == nil {
			err = d.Sync()
			d.Close()
			if err != nil {
				return fmt.Errorf("convert: syncing directory of %s: %w", o.dst, err)
			}
		}
	}
	return nil
}

// abort closes the output and removes the temporary file and journal.
func (o *output) abort() {
	o.f.Close()
	if o.tmp != "" {
		os.Remove(o.tmp)
		os.Remove(journalName(o.dst))
		os.Remove(journalName(o.dst) + ".new")
	}
}

// fail ends a failed run: the temporary output and its journal are kept for
// a resumed run when keep is set, else removed.
func (o *output) fail(keep bool) {
	if keep && o.tmp != "" {
		o.f.Close()
		return
	}
	o.abort()
}
