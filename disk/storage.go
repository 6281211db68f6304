package disk

import (
	"fmt"
	"io"
	"os"
)

// Storage is the bytes an image is stored in: a host file, a block device,
// or parts fetched from elsewhere. ReadAt must be safe for concurrent use.
// A short read inside [0, Size) is an error, never zeros.
type Storage interface {
	io.ReaderAt
	// Size is the length of the stored bytes.
	Size() int64
	// Name identifies the storage in messages (a path or URL).
	Name() string
}

// An OSStorage is a Storage backed by an open operating-system file, so its
// bytes can be copied by the kernel (copy_file_range).
type OSStorage interface {
	Storage
	// File returns the open file. The caller must not close it or move its
	// offset.
	File() *os.File
}

// A SparseStorage knows where its holes are.
type SparseStorage interface {
	Storage
	// NextData returns the first data run at or after off: [start, end).
	// start == Size() means no more data. A storage whose file system
	// cannot tell reports everything as data.
	NextData(off int64) (start, end int64, err error)
}

// ReadFull reads exactly len(p) bytes at off from s, treating a short read
// as corruption of the named structure.
func ReadFull(s Storage, format, what string, p []byte, off int64) error {
	if off < 0 || off > s.Size() || int64(len(p)) > s.Size()-off {
		return Errorf(format, ErrCorrupt, "%s at byte %d (length %d) past end of file (size %d)", what, off, len(p), s.Size())
	}
	n, err := s.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		return Errorf(format, ErrCorrupt, "%s at byte %d: short read (%d of %d bytes)", what, off, n, len(p))
	}
	return fmt.Errorf("%s: reading %s at byte %d of %s: %w", format, what, off, s.Name(), err)
}
