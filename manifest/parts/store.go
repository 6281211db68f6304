package parts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/diskport/diskport/disk"
)

// A Store fetches the bytes of a file's parts: from a directory
// ([DirStore]), over HTTP from the presigned URLs ([HTTPStore]), or from an
// S3 bucket ([S3Store]).
type Store interface {
	// OpenPart returns a reader of the n bytes of part p starting at byte
	// off of the part (0 <= off, off+n <= p.Length). The reader reports an
	// error, never a clean EOF, if the stored part is shorter; a store that
	// can tell that the stored part's length is not p.Length reports so.
	OpenPart(ctx context.Context, p *Part, off, n int64) (io.ReadCloser, error)
	// Where names where part p is fetched from, for messages.
	Where(p *Part) string
}

// A PartError is the failure of one part: which part, where it came from,
// and what went wrong. errors.Is(err, disk.ErrCorrupt) holds for a part
// whose length or checksum is wrong.
type PartError struct {
	Part  Part
	Where string
	Err   error
}

// Error names the part's index and byte range.
func (e *PartError) Error() string {
	msg := e.Err.Error()
	msg = strings.TrimPrefix(msg, "manifest: ")
	if e.Where != "" {
		return fmt.Sprintf("manifest: %s from %s: %s", &e.Part, e.Where, msg)
	}
	return fmt.Sprintf("manifest: %s: %s", &e.Part, msg)
}

// Unwrap returns the underlying error.
func (e *PartError) Unwrap() error { return e.Err }

// fetchPart reads part p whole into buf (len(buf) >= p.Length), checking
// its length and, when it has one, its SHA-256.
func fetchPart(ctx context.Context, store Store, p *Part, buf []byte) ([]byte, error) {
	buf = buf[:p.Length]
	wrap := func(err error) error { return &PartError{Part: *p, Where: store.Where(p), Err: err} }
	rc, err := store.OpenPart(ctx, p, 0, p.Length)
	if err != nil {
		return nil, wrap(err)
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, buf)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return nil, wrap(errorf(disk.ErrCorrupt, "truncated: %d of %d bytes", n, p.Length))
	}
	if err != nil {
		return nil, wrap(err)
	}
	var one [1]byte
	if k, _ := rc.Read(one[:]); k > 0 {
		return nil, wrap(errorf(disk.ErrCorrupt, "longer than its byte range (%d bytes)", p.Length))
	}
	if p.SHA256 != "" {
		sum := sha256.Sum256(buf)
		if got := hex.EncodeToString(sum[:]); got != p.SHA256 {
			return nil, wrap(errorf(disk.ErrCorrupt, "checksum mismatch: sha256 %s, manifest says %s", got, p.SHA256))
		}
	}
	return buf, nil
}

// A DirStore keeps parts in files in a directory, each named by the last
// element of its key (so `uuid/disk.img.part0` is Dir/disk.img.part0).
type DirStore struct {
	Dir string
}

// Path returns the file part p is read from. Keys whose last element is
// empty, "." or ".." are refused.
func (d DirStore) Path(p *Part) (string, error) {
	k := p.Key
	if i := strings.LastIndexAny(k, "/\\"); i >= 0 {
		k = k[i+1:]
	}
	if k == "" || k == "." || k == ".." {
		return "", errorf(disk.ErrUnsafe, "part %d key %q names no file", p.Index, p.Key)
	}
	return filepath.Join(d.Dir, k), nil
}

// Where returns the part's file name.
func (d DirStore) Where(p *Part) string {
	path, err := d.Path(p)
	if err != nil {
		return d.Dir
	}
	return path
}

// OpenPart opens the part's file, checking its size against the part's.
func (d DirStore) OpenPart(ctx context.Context, p *Part, off, n int64) (io.ReadCloser, error) {
	path, err := d.Path(p)
	if err != nil {
		return nil, err
	}
	f, err := disk.OpenFile(path, disk.FileOptions{})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errorf(disk.ErrCorrupt, "missing: %v", err)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.Size() != p.Length {
		f.Close()
		if st.Size() < p.Length {
			return nil, errorf(disk.ErrCorrupt, "truncated: file has %d bytes", st.Size())
		}
		return nil, errorf(disk.ErrCorrupt, "file has %d bytes, more than its byte range", st.Size())
	}
	return &sectionCloser{io.NewSectionReader(f, off, n), f}, nil
}

type sectionCloser struct {
	*io.SectionReader
	f *os.File
}

func (s *sectionCloser) Close() error { return s.f.Close() }
