package raw

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
)

func writeSparse(t *testing.T, size int64, data map[int64][]byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	for off, b := range data {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func TestGoldenConformance(t *testing.T) {
	for _, size := range []int64{512, 4096, 1<<20 + 517, 3<<20 + 65536 + 1} {
		g := testimg.Golden(t, testimg.Spec{Size: size, Seed: uint64(size)})
		img, err := OpenFile(g)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(g)
		padded := make([]byte, img.Size())
		copy(padded, want)
		if img.Size() != (size+511)/512*512 {
			t.Fatalf("size %d: virtual size %d, want rounded up to 512", size, img.Size())
		}
		disktest.Check(t, img, bytes.NewReader(padded))
		img.Close()
	}
}

func TestHolesAreZeroExtents(t *testing.T) {
	const mib = 1 << 20
	p := writeSparse(t, 10*mib, map[int64][]byte{5 * mib: bytes.Repeat([]byte{0xab}, 4096)})
	img, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	exts := disktest.CheckExtents(t, img)
	var data int64
	for _, e := range exts {
		if e.Kind == disk.Data {
			data += e.Length
			if e.Offset > 5*mib || e.End() < 5*mib+4096 {
				t.Errorf("data run %+v does not cover the written block", e)
			}
			if e.Stored == nil || e.StoredOffset != e.Offset {
				t.Errorf("data run %+v not stored verbatim at its own offset", e)
			}
		}
	}
	// Holes are reported at file-system block granularity; most of the
	// file must be a hole.
	if data == 0 || data > mib {
		t.Fatalf("%d bytes of data runs in a file with 4 KiB written", data)
	}
	disktest.Check(t, img, nil)
	if img.Info().AllocatedBytes > mib {
		t.Errorf("allocated bytes %d for a mostly sparse file", img.Info().AllocatedBytes)
	}
}

func TestOddSizePadding(t *testing.T) {
	p := writeSparse(t, 1000, map[int64][]byte{0: bytes.Repeat([]byte{1}, 1000)})
	img, err := OpenFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.Size() != 1024 {
		t.Fatalf("Size = %d, want 1024", img.Size())
	}
	b := make([]byte, 100)
	n, err := img.ReadAt(b, 950)
	if n != 74 || err != io.EOF {
		t.Fatalf("ReadAt(950) = %d, %v", n, err)
	}
	if !bytes.Equal(b[:50], bytes.Repeat([]byte{1}, 50)) || !bytes.Equal(b[50:74], make([]byte, 24)) {
		t.Fatalf("padding does not read as zeros: %v", b[:74])
	}
	exts := disktest.CheckExtents(t, img)
	last := exts[len(exts)-1]
	if last.Kind != disk.Zero || last.End() != 1024 || last.Offset > 1000 {
		t.Fatalf("last extent %+v, want the padding as a zero run", last)
	}
	disktest.Check(t, img, nil)
}

func TestEmptyAndMemory(t *testing.T) {
	img, err := Open(disk.NewMemStorage("empty", nil))
	if err != nil {
		t.Fatal(err)
	}
	if img.Size() != 0 {
		t.Fatalf("Size = %d", img.Size())
	}
	disktest.Check(t, img, nil)
	b := bytes.Repeat([]byte("abc"), 700)
	img, err = Open(disk.NewMemStorage("mem", b))
	if err != nil {
		t.Fatal(err)
	}
	disktest.Check(t, img, nil)
}

func TestNotAFile(t *testing.T) {
	if _, err := OpenFile(t.TempDir()); err == nil {
		t.Fatal("opened a directory")
	}
}
