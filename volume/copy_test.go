//go:build linux && !portable

package volume

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/diskport/diskport/disk"
)

// source writes b to a new file and opens it as a host file.
func source(t *testing.T, b []byte) *disk.HostFile {
	t.Helper()
	name := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := disk.OpenHostFile(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// copyChunk is how much each CopyFrom call of the tests copies: what a
// converter's worker reads at once.
const copyChunk = 1 << 20

// copyAll fills [off, off+n) of w from src at srcOff with CopyFrom, a
// chunk at a time, and checks that each chunk's buffer holds the bytes
// read.
func copyAll(t *testing.T, w *Writer, src *disk.HostFile, want []byte, srcOff, off, n int64) error {
	t.Helper()
	buf := make([]byte, copyChunk)
	for done := int64(0); done < n; done += copyChunk {
		b := buf[:min(copyChunk, n-done)]
		if err := w.CopyFrom(src, srcOff+done, b, off+done); err != nil {
			return err
		}
		if want != nil && !bytes.Equal(b, want[srcOff+done:srcOff+done+int64(len(b))]) {
			t.Errorf("CopyFrom at %d: the buffer does not hold the bytes read", off+done)
		}
	}
	return nil
}

// TestCopyFrom copies stored bytes in the kernel, from a source offset that
// is not block-aligned (a VHD block's data follows its 512-byte bitmap),
// from two goroutines at once: the volume holds exactly the bytes, and the
// zero blocks among them are holes, as Fill leaves them.
func TestCopyFrom(t *testing.T) {
	const size = 32 << 20
	const skew = 512
	src := make([]byte, size+skew)
	copy(src[skew:], pattern(size, 7))
	// Zero blocks inside the data: 1 MiB at 4 MiB, one 4 KiB block at 9 MiB.
	clear(src[skew+4<<20 : skew+5<<20])
	clear(src[skew+9<<20 : skew+9<<20+4096])
	h := source(t, src)

	dir := t.TempDir()
	fill := filepath.Join(dir, "fill")
	w, err := Create(fill, size, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Fill(src[skew:], 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(dir, "copy")
	w, err = Create(dst, size, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for half := range int64(2) {
		wg.Go(func() {
			off := half * size / 2
			if err := copyAll(t, w, h, src, skew+off, off, size/2); err != nil {
				t.Errorf("CopyFrom at %d: %v", off, err)
			}
		})
	}
	wg.Wait()
	if w.noCopy.Load() {
		t.Error("the kernel refused to copy between two files of one file system")
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, dst), src[skew:]) {
		t.Fatal("the copied volume differs from its source")
	}
	if a, b := allocated(t, dst), allocated(t, fill); a != b {
		t.Errorf("the copied volume allocates %d bytes, Fill's %d", a, b)
	}
	if a := allocated(t, dst); a > size-(1<<20) {
		t.Errorf("the copied volume allocates %d bytes: its zero blocks were not skipped", a)
	}
}

// TestCopyFromShrunkSource truncates the source after it was opened: the
// copy fails with an error naming the source.
func TestCopyFromShrunkSource(t *testing.T) {
	const size = 8 << 20
	h := source(t, pattern(size, 3))
	if err := os.Truncate(h.Name(), 4096); err != nil {
		t.Fatal(err)
	}
	w, err := Create(filepath.Join(t.TempDir(), "vol"), size, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	err = copyAll(t, w, h, nil, 0, 0, size)
	if err == nil || !strings.Contains(err.Error(), h.Name()) {
		t.Fatalf("copying from a shrunk source: %v; want an error naming %s", err, h.Name())
	}
	t.Log(err)
}

// TestCopyFromRefused: the kernel refuses a copy from another file system
// (tmpfs), and a block device is not copied to: CopyFrom writes the bytes
// it read instead, zero blocks skipped in the file as Fill skips them.
func TestCopyFromRefused(t *testing.T) {
	const size = 4 << 20
	shm, err := os.MkdirTemp("/dev/shm", "diskport-")
	if err != nil {
		t.Fatalf("a tmpfs at /dev/shm is needed: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	src := pattern(size, 5)
	clear(src[1<<20 : 2<<20])
	name := filepath.Join(shm, "src")
	if err := os.WriteFile(name, src, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := disk.OpenHostFile(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	dst := filepath.Join(t.TempDir(), "vol")
	w, err := Create(dst, size, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := copyAll(t, w, h, src, 0, 0, size); err != nil {
		t.Fatalf("CopyFrom across file systems: %v", err)
	}
	if !w.noCopy.Load() {
		t.Error("copy_file_range from a tmpfs into another file system was not refused")
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readFile(t, dst), src) {
		t.Fatal("the volume written across file systems differs from its source")
	}
	if a := allocated(t, dst); a > size-(1<<20) {
		t.Errorf("the volume allocates %d bytes: its zero blocks were not skipped", a)
	}

	dev := loopDevice(t, size)
	w, err = Create(dev, size, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	h2 := source(t, src)
	if err := copyAll(t, w, h2, src, 0, 0, size); err != nil {
		t.Fatalf("CopyFrom onto a block device: %v", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readDevice(t, dev, size), src) {
		t.Fatal("the block device differs from its source")
	}
}
