package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/internal/testimg"
)

// goldenSize is the virtual size of the benchmark images: big enough that
// per-call overhead does not dominate, small enough that `go test -bench`
// is quick.
const goldenSize = 128 << 20

// A format is an image made by qemu-img from the golden disk.
type format struct {
	name     string // sub-benchmark name
	qemu     string // qemu-img's -O
	opts     string // qemu-img's -o ("" for none)
	diskport string // diskport.Options.Format
}

var formats = []format{
	{"raw", "raw", "", "raw"},
	{"monolithicSparse", "vmdk", "subformat=monolithicSparse", "vmdk"},
	{"streamOptimized", "vmdk", "subformat=streamOptimized", "vmdk"},
	{"twoGbMaxExtentSparse", "vmdk", "subformat=twoGbMaxExtentSparse", "vmdk"},
	{"monolithicFlat", "vmdk", "subformat=monolithicFlat", "vmdk"},
	{"vhd-dynamic", "vpc", "subformat=dynamic", "vhd"},
	{"vhd-fixed", "vpc", "subformat=fixed", "vhd"},
	{"vhdx-dynamic", "vhdx", "subformat=dynamic", "vhdx"},
	{"vhdx-fixed", "vhdx", "subformat=fixed", "vhdx"},
}

// image returns the path of f's image of the golden disk, building (or
// finding in the cache) both.
func image(b *testing.B, f format) string {
	b.Helper()
	golden := testimg.Golden(b, testimg.Spec{Size: goldenSize, Seed: 1, ZeroPercent: 25})
	if f.qemu == "raw" {
		return golden
	}
	return testimg.Make(b, golden, f.qemu, f.opts)
}

// BenchmarkOpenRead opens each image and reads its whole virtual disk
// with ReadAt in 1 MiB chunks from one goroutine.
func BenchmarkOpenRead(b *testing.B) {
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) {
			path := image(b, f)
			buf := make([]byte, 1<<20)
			b.ResetTimer()
			for b.Loop() {
				img, err := diskport.Open(path, diskport.Options{Format: f.diskport})
				if err != nil {
					b.Fatal(err)
				}
				size := img.Size()
				b.SetBytes(size)
				for off := int64(0); off < size; off += int64(len(buf)) {
					if _, err := img.ReadAt(buf, off); err != nil && err != io.EOF {
						b.Fatal(err)
					}
				}
				img.Close()
			}
		})
	}
}

// convertOnce opens path and converts it to dst with opts, the output
// removed beforehand outside the timer.
func convertOnce(b *testing.B, path, dst string, f format, opts convert.Options) {
	b.StopTimer()
	if err := os.Remove(dst); err != nil && !os.IsNotExist(err) {
		b.Fatal(err)
	}
	b.StartTimer()
	img, err := diskport.Open(path, diskport.Options{Format: f.diskport})
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	b.SetBytes(img.Size())
	res, err := convert.Convert(context.Background(), img, dst, opts)
	if err != nil {
		b.Fatal(err)
	}
	if res.VolumeSize != img.Size() {
		b.Fatalf("volume is %d bytes, want the virtual size %d", res.VolumeSize, img.Size())
	}
}

// BenchmarkConvert converts each image to a sparse raw file without
// flushing it, with the default number of workers.
func BenchmarkConvert(b *testing.B) {
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) {
			path := image(b, f)
			dst := filepath.Join(b.TempDir(), "volume.raw")
			opts := convert.Options{NoSync: true, ExactSize: true, Force: true}
			for b.Loop() {
				convertOnce(b, path, dst, f, opts)
			}
		})
	}
}

// BenchmarkConvertWorkers converts the images whose reading costs CPU
// with 1, 2 and 4 workers: the per-core throughput (streamOptimized: the
// inflate rate) and how it scales.
func BenchmarkConvertWorkers(b *testing.B) {
	for _, f := range formats {
		if f.name != "streamOptimized" && f.name != "monolithicSparse" && f.name != "vhd-dynamic" {
			continue
		}
		for _, workers := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("%s/workers=%d", f.name, workers), func(b *testing.B) {
				path := image(b, f)
				dst := filepath.Join(b.TempDir(), "volume.raw")
				opts := convert.Options{NoSync: true, ExactSize: true, Force: true, Workers: workers}
				for b.Loop() {
					convertOnce(b, path, dst, f, opts)
				}
			})
		}
	}
}
