package convert

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/diskport/diskport/internal/atomicfile"
	"github.com/diskport/diskport/volume"
)

// FileOptions configure [WriteFile].
type FileOptions struct {
	// Force replaces a regular file at the destination; without it an
	// existing destination is a *volume.ExistsError.
	Force bool
	// NoSync does not flush the file to stable storage before it is
	// renamed into place (benchmarks, scratch work).
	NoSync bool
	// Checksum computes the SHA-256 of the file written.
	Checksum bool
}

// FileResult describes a file [WriteFile] wrote.
type FileResult struct {
	// Size is the file's size in bytes.
	Size int64
	// SHA256 is its digest, when FileOptions.Checksum is set.
	SHA256 []byte
}

// WriteFile creates the image file dst with write, which writes the image
// into f (an io.Writer at offset 0, and an io.WriterAt for a layout that
// writes its tables after its data) and returns its size. The file is
// written under a temporary name beside dst, flushed (unless NoSync),
// checked to be the size write returned, and only then renamed into
// place, the directory flushed too: a failed or cancelled write (ctx
// ends, write fails, the disk fills up) leaves nothing at dst. Skipped
// ranges of f stay holes: an image's sparse layout stays sparse.
func WriteFile(ctx context.Context, dst string, opts FileOptions, write func(f *os.File) (int64, error)) (*FileResult, error) {
	if st, err := os.Lstat(dst); err == nil {
		switch {
		case !st.Mode().IsRegular():
			return nil, fmt.Errorf("convert: %s exists and is not a regular file", dst)
		case !opts.Force:
			return nil, &volume.ExistsError{Path: dst}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("convert: %w", err)
	}
	dir := filepath.Dir(dst)
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".diskport-partial-*")
	if err != nil {
		return nil, fmt.Errorf("convert: creating a file in %s: %w", dir, errors.Unwrap(err))
	}
	tmp := f.Name()
	volume.SetSparse(f) // where it fails, the file is written whole
	res, err := writeTemp(ctx, f, opts, write)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("convert: closing %s: %w", dst, cerr)
	}
	switch {
	case err != nil:
	case opts.NoSync:
		err = os.Rename(tmp, dst)
	default:
		err = atomicfile.Rename(tmp, dst) // and the directory flushed
	}
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	return res, nil
}

// writeTemp writes the image into f, then flushes and checks it.
func writeTemp(ctx context.Context, f *os.File, opts FileOptions, write func(f *os.File) (int64, error)) (*FileResult, error) {
	n, err := write(f)
	if err == nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o644); err != nil { // CreateTemp's 0600 is for the partial file
		return nil, err
	}
	if st.Size() != n {
		return nil, fmt.Errorf("convert: the image is %d bytes but %d were written", n, st.Size())
	}
	if !opts.NoSync {
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("convert: flushing the image: %w", err)
		}
	}
	res := &FileResult{Size: n}
	if opts.Checksum {
		// The file is in the page cache: hashing it back costs a read,
		// and holds for a layout written out of order too.
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, n)); err != nil {
			return nil, fmt.Errorf("convert: hashing the image: %w", err)
		}
		res.SHA256 = h.Sum(nil)
	}
	return res, nil
}
