package bundle

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/atomicfile"
)

// Dir is a bundle stored as files in a directory: a Sink, Remover and
// Source. Object names with "/" are files in subdirectories; names that
// would leave the directory are refused.
type Dir string

// file returns the path of object name in d.
func (d Dir) file(name string) (string, error) {
	clean := path.Clean(name)
	if name == "" || path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") || strings.ContainsAny(name, "\\\x00") {
		return "", disk.Errorf("bundle", disk.ErrUnsafe, "object name %q leaves the bundle directory", truncate(name, 80))
	}
	return filepath.Join(string(d), filepath.FromSlash(clean)), nil
}

// Put writes data to the file name by atomicfile's rule, so a reader
// never sees a partial object. Objects are readable by their owner only
// (0600).
func (d Dir) Put(ctx context.Context, name string, data []byte) error {
	p, err := d.file(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(p, data, 0o600)
}

// Remove deletes the file name; a missing file is not an error.
func (d Dir) Remove(ctx context.Context, name string) error {
	p, err := d.file(name)
	if err != nil {
		return err
	}
	err = os.Remove(p)
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

// Get reads the file name, refusing one over limit bytes.
func (d Dir) Get(ctx context.Context, name string, limit int64) ([]byte, error) {
	p, err := d.file(name)
	if err != nil {
		return nil, err
	}
	f, err := disk.OpenFile(p, disk.FileOptions{}) // regular files only, never blocking on a FIFO
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, disk.Errorf("bundle", disk.ErrTooLarge, "%s is %d bytes, over the %d-byte limit", f.Name(), st.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, disk.Errorf("bundle", disk.ErrTooLarge, "%s grew over the %d-byte limit", f.Name(), limit)
	}
	return data, nil
}

// String returns the directory path.
func (d Dir) String() string { return fmt.Sprint(string(d)) }
