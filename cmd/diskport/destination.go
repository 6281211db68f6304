package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/disk"

	"github.com/diskport/diskport/volume"
)

// existsHint gives a destination that exists the CLI's advice, the same in
// every verb that writes a volume (convert, unbundle).
func existsHint(err error) error {
	var ee *volume.ExistsError
	if errors.As(err, &ee) {
		return &hinted{"destination " + ee.Path + " exists (give --force to overwrite it)", err}
	}
	return err
}

// destError words an error creating the destination dst in the user's
// terms: which directory, and why, never the temporary names diskport
// writes beside dst (its partial output and journal).
func destError(err error, dst string) error {
	var errno syscall.Errno
	if err == nil || !errors.As(err, &errno) {
		return err
	}
	dir := filepath.Dir(dst)
	var pe *fs.PathError
	ours := errors.As(err, &pe) && (pe.Path == dir ||
		filepath.Dir(pe.Path) == dir && strings.HasPrefix(filepath.Base(pe.Path), "."+filepath.Base(dst)+".diskport-"))
	if !ours && !strings.Contains(err.Error(), "creating a file in "+dir+":") {
		return err
	}
	why := errno.Error()
	switch {
	case errors.Is(errno, fs.ErrNotExist):
		why = "it does not exist"
	case errno == syscall.EROFS:
		why = "it is on a read-only file system"
	case errno == syscall.EPERM:
		why = "it does not allow new files (operation not permitted: an immutable or append-only directory?)"
	case errno == syscall.EACCES:
		why = "it is not writable (permission denied)"
	case errno == syscall.ENOTDIR:
		why = "it is not a directory"
	}
	return &hinted{fmt.Sprintf("cannot write %s into directory %s: %s", filepath.Base(dst), dir, why), err}
}

// partialLeft refuses a new conversion into dst when an interrupted one
// left its partial output or journal there: only --resume continues it
// and only --force throws it away.
func partialLeft(dst string) error {
	for _, p := range []string{volume.PartialName(dst), volume.JournalName(dst)} {
		if _, err := os.Lstat(p); err == nil {
			return &hinted{fmt.Sprintf("an interrupted conversion into %s left its partial output: give --resume to continue it, or --force to start over", dst), fs.ErrExist}
		}
	}
	return nil
}

// streamVolume writes the raw volume of src to w front to back, as
// `convert SRC -` does: the virtual disk's bytes (holes and zero runs as
// zeros), then zeros up to the volume's size. It checks the source's own
// checksums (a manifest's, an OVA's .mf) at the end; the bytes are gone
// by then, so a mismatch is the run's failure.
func streamVolume(ctx context.Context, src disk.Image, w io.Writer, opts convert.Options) (*convert.Result, error) {
	virtual := src.Size()
	size, err := convert.VolumeSize(virtual, opts)
	if err != nil {
		return nil, err
	}
	res := &convert.Result{VirtualSize: virtual, VolumeSize: size}
	var whole, part hash.Hash
	out := w
	if opts.Checksum {
		whole, part = sha256.New(), sha256.New()
		out = io.MultiWriter(w, whole, part)
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		n := min(int64(len(buf)), size-off)
		if off < virtual {
			n = min(n, virtual-off)
			if _, err := src.ReadAt(buf[:n], off); err != nil && !(errors.Is(err, io.EOF) && off+n == virtual) {
				return nil, err
			}
		} else {
			clear(buf[:n])
		}
		if _, err := out.Write(buf[:n]); err != nil {
			return nil, err
		}
		off += n
		res.WrittenBytes += n
		if off == virtual && part != nil {
			// Chunks end at the virtual size: past it, only the volume's
			// hash goes on.
			res.VirtualSHA256 = part.Sum(nil)
			out = io.MultiWriter(w, whole)
		}
		if opts.Progress != nil {
			opts.Progress(min(off, virtual), virtual)
		}
	}
	if v, ok := src.(disk.Verifier); ok {
		if err := v.Verify(); err != nil {
			return nil, err
		}
	}
	if whole != nil {
		res.SHA256 = whole.Sum(nil)
	}
	return res, nil
}
