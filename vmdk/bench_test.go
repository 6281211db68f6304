package vmdk

import (
	"bytes"
	stdzlib "compress/zlib"
	"io"
	"os"
	"testing"

	kpzlib "github.com/klauspost/compress/zlib"

	"github.com/diskport/diskport/internal/testimg"
)

const benchSize = 64 << 20

// benchImage opens a qemu-made image of a 64 MiB golden disk.
func benchImage(b *testing.B, opts string) *Image {
	golden := testimg.Golden(b, testimg.Spec{Size: benchSize, Seed: 42})
	return openPath(b, testimg.Make(b, golden, "vmdk", opts), Options{})
}

// readAll reads img end to end in chunks of n bytes.
func readAll(b *testing.B, img *Image, n int) {
	buf := make([]byte, n)
	for off := int64(0); off < img.Size(); off += int64(n) {
		if _, err := img.ReadAt(buf, off); err != nil && err != io.EOF {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadSparse(b *testing.B) {
	img := benchImage(b, "")
	b.SetBytes(img.Size())
	for b.Loop() {
		readAll(b, img, 1<<20)
	}
}

func BenchmarkReadStream(b *testing.B) {
	img := benchImage(b, "subformat=streamOptimized")
	b.SetBytes(img.Size())
	for b.Loop() {
		readAll(b, img, 1<<20)
	}
}

// 4 KiB reads: the grain cache inflates each grain once.
func BenchmarkReadStream4K(b *testing.B) {
	img := benchImage(b, "subformat=streamOptimized")
	b.SetBytes(img.Size())
	for b.Loop() {
		readAll(b, img, 4<<10)
	}
}

func BenchmarkWalkStream(b *testing.B) {
	golden := testimg.Golden(b, testimg.Spec{Size: benchSize, Seed: 42})
	data, err := os.ReadFile(testimg.Make(b, golden, "vmdk", "subformat=streamOptimized"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	for b.Loop() {
		if err := WalkStream(bytes.NewReader(data), func(int64, []byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// benchGrains returns zlib streams of 64 KiB grains of the golden disk,
// compressed as qemu does, and their total inflated size.
func benchGrains(b *testing.B) ([][]byte, int64) {
	img := benchImage(b, "subformat=streamOptimized")
	var out [][]byte
	var total int64
	for g, err := range img.Grains() {
		if err != nil {
			b.Fatal(err)
		}
		raw := make([]byte, g.CompressedSize)
		if _, err := g.Storage.ReadAt(raw, g.StoredOffset); err != nil {
			b.Fatal(err)
		}
		out = append(out, raw)
		total += g.Size
	}
	return out, total
}

// BenchmarkInflate measures Inflate (the reader's bounded inflate).
func BenchmarkInflate(b *testing.B) {
	grains, total := benchGrains(b)
	dst := make([]byte, 64<<10)
	b.SetBytes(total)
	for b.Loop() {
		for _, g := range grains {
			if _, err := Inflate(dst, g); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkInflateStd and BenchmarkInflateKlauspost compare the two zlib
// implementations on the same grains, reusing readers as Inflate does.
func BenchmarkInflateStd(b *testing.B) {
	grains, total := benchGrains(b)
	dst := make([]byte, 64<<10)
	var zr io.ReadCloser
	b.SetBytes(total)
	for b.Loop() {
		for _, g := range grains {
			var err error
			if zr == nil {
				zr, err = stdzlib.NewReader(bytes.NewReader(g))
			} else {
				err = zr.(stdzlib.Resetter).Reset(bytes.NewReader(g), nil)
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(zr, dst); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkInflateKlauspost(b *testing.B) {
	grains, total := benchGrains(b)
	dst := make([]byte, 64<<10)
	var zr io.ReadCloser
	b.SetBytes(total)
	for b.Loop() {
		for _, g := range grains {
			var err error
			if zr == nil {
				zr, err = kpzlib.NewReader(bytes.NewReader(g))
			} else {
				err = zr.(kpzlib.Resetter).Reset(bytes.NewReader(g), nil)
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(zr, dst); err != nil {
				b.Fatal(err)
			}
		}
	}
}
