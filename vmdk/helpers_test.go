package vmdk

import (
	"bytes"
	"compress/bzip2"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
)

// sample returns the bytes of testdata/name, bunzipped when it ends in
// .bz2.
func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(name, ".bz2") {
		b, err = io.ReadAll(bzip2.NewReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return b
}

// hostFile opens path as a disk.HostFile, closed at the end of the test.
func hostFile(t testing.TB, path string) *disk.HostFile {
	t.Helper()
	h, err := disk.OpenHostFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// dirOpener resolves extent names inside dir, regular files only.
func dirOpener(dir string) func(string) (disk.Storage, error) {
	return func(name string) (disk.Storage, error) {
		p := filepath.Join(dir, name)
		st, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		if !st.Mode().IsRegular() {
			return nil, errors.New("not a regular file")
		}
		return disk.OpenHostFile(p)
	}
}

// memOpener resolves extent names from a map of in-memory files.
func memOpener(files map[string][]byte) func(string) (disk.Storage, error) {
	return func(name string) (disk.Storage, error) {
		b, ok := files[name]
		if !ok {
			return nil, os.ErrNotExist
		}
		return disk.NewMemStorage(name, b), nil
	}
}

// openPath opens the image at path with its directory as extent
// directory; the image is closed at the end of the test.
func openPath(t testing.TB, path string, opts Options) *Image {
	t.Helper()
	if opts.OpenExtent == nil {
		opts.OpenExtent = dirOpener(filepath.Dir(path))
	}
	img, err := Open(hostFile(t, path), opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// openMem opens b as an image.
func openMem(b []byte, opts Options) (*Image, error) {
	return Open(disk.NewMemStorage("test.vmdk", b), opts)
}

// wantClass asserts that err is a *disk.Error of class class.
func wantClass(t testing.TB, err error, class error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", class)
	}
	var de *disk.Error
	if !errors.As(err, &de) || !errors.Is(err, class) {
		t.Fatalf("error %q (%T), want class %v", err, err, class)
	}
	t.Logf("%v", err)
}

// imageSHA256 returns the sha256 of the whole virtual disk, skipping the
// zero extents (hashing zeros for them).
func imageSHA256(t testing.TB, img disk.Image) string {
	t.Helper()
	h := sha256.New()
	zero := make([]byte, 1<<20)
	buf := make([]byte, 1<<20)
	for e, err := range img.Extents(0, img.Size()) {
		if err != nil {
			t.Fatalf("Extents: %v", err)
		}
		for off := e.Offset; off < e.End(); {
			n := min(int64(len(buf)), e.End()-off)
			if e.Kind == disk.Zero {
				h.Write(zero[:n])
			} else {
				if _, err := img.ReadAt(buf[:n], off); err != nil && err != io.EOF {
					t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
				}
				h.Write(buf[:n])
			}
			off += n
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// rawFile opens a raw file as an io.ReaderAt for disktest.Check.
func rawFile(t testing.TB, path string) io.ReaderAt {
	t.Helper()
	return hostFile(t, path)
}

// check runs the disk conformance checks, comparing with want when given.
func check(t testing.TB, img disk.Image, want io.ReaderAt) {
	t.Helper()
	disktest.Check(t, img, want)
}
