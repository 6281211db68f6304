//go:build linux

package bench

import (
	"bytes"
	stdzlib "compress/zlib"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	kpzlib "github.com/klauspost/compress/zlib"

	"github.com/diskport/diskport/bench/realdisk"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/vmdk"
)

// realSpec is the real-content disk the inflate benchmarks use: smaller
// than bench/compare's headline one, so a first run builds it in a minute,
// but holding the same kinds of files (the Go toolchain, then shared
// libraries).
var realSpec = realdisk.Spec{Size: 1 << 30, Files: 512 << 20}

// streamImage returns a streamOptimized VMDK of the benchmark disk named
// by which: "golden" (the synthetic golden disk) or "real" (realSpec).
func streamImage(b *testing.B, which string) string {
	b.Helper()
	if which == "golden" {
		return image(b, formats[2])
	}
	info, err := realdisk.Build(testimg.CacheDir(b), realSpec, b.Logf)
	if err != nil {
		b.Fatal(err)
	}
	return testimg.Make(b, info.Path, "vmdk", "subformat=streamOptimized")
}

// compressedGrains returns the grains of a streamOptimized image with
// their compressed bytes read into memory, so inflating them measures the
// CPU alone.
func compressedGrains(b *testing.B, path string) ([]vmdk.Grain, [][]byte, int64) {
	b.Helper()
	h, err := disk.OpenHostFile(path)
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	img, err := vmdk.Open(h, vmdk.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	var (
		grains []vmdk.Grain
		data   [][]byte
		total  int64
	)
	for g, err := range img.Grains() {
		if err != nil {
			b.Fatal(err)
		}
		p := make([]byte, g.CompressedSize)
		if err := disk.ReadFull(g.Storage, "vmdk", "grain", p, g.StoredOffset); err != nil {
			b.Fatal(err)
		}
		grains = append(grains, g)
		data = append(data, p)
		total += g.Length
	}
	if len(grains) == 0 {
		b.Fatal("the streamOptimized image has no compressed grains")
	}
	return grains, data, total
}

// BenchmarkInflate inflates every grain of a streamOptimized image from
// memory with vmdk.InflateGrain (the build's inflater: libdeflate with
// cgo, the pure-Go path with -tags purego): on one core (serial), and on
// all cores (parallel, grains handed out one at a time), for the real-
// content disk and the synthetic golden one. MB/s counts inflated bytes.
func BenchmarkInflate(b *testing.B) {
	b.Logf("inflater: %s", vmdk.Inflater())
	for _, which := range []string{"real", "golden"} {
		b.Run(which+"/serial", func(b *testing.B) {
			grains, data, total := compressedGrains(b, streamImage(b, which))
			dst := make([]byte, grains[0].Size)
			b.SetBytes(total)
			for b.Loop() {
				for i, g := range grains {
					if err := vmdk.InflateGrain(dst, data[i], g); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		b.Run(which+"/parallel", func(b *testing.B) {
			grains, data, total := compressedGrains(b, streamImage(b, which))
			b.SetBytes(total)
			for b.Loop() {
				var next atomic.Int64
				var wg sync.WaitGroup
				var failed atomic.Pointer[error]
				for range runtime.GOMAXPROCS(0) {
					wg.Go(func() {
						dst := make([]byte, grains[0].Size)
						for {
							i := int(next.Add(1) - 1)
							if i >= len(grains) {
								return
							}
							if err := vmdk.InflateGrain(dst, data[i], grains[i]); err != nil {
								failed.Store(&err)
								return
							}
						}
					})
				}
				wg.Wait()
				if err := failed.Load(); err != nil {
					b.Fatal(*err)
				}
			}
		})
	}
}

// BenchmarkInflateDecoders inflates the same grains on one core with each
// zlib decoder: the build's vmdk.Inflate, and the compress/zlib and
// klauspost/compress/zlib readers reused across grains (without the
// bounds vmdk.Inflate enforces, so a little flattered).
func BenchmarkInflateDecoders(b *testing.B) {
	readers := map[string]func(io.Reader) (io.ReadCloser, error){
		"std":       stdzlib.NewReader,
		"klauspost": kpzlib.NewReader,
	}
	for _, which := range []string{"real", "golden"} {
		b.Run(which+"/vmdk.Inflate", func(b *testing.B) {
			_, data, total := compressedGrains(b, streamImage(b, which))
			dst := make([]byte, 64<<10)
			b.SetBytes(total)
			for b.Loop() {
				for _, z := range data {
					if _, err := vmdk.Inflate(dst, z); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
		for _, name := range []string{"std", "klauspost"} {
			b.Run(which+"/"+name, func(b *testing.B) {
				_, data, total := compressedGrains(b, streamImage(b, which))
				dst := make([]byte, 64<<10)
				var zr io.ReadCloser
				b.SetBytes(total)
				for b.Loop() {
					for _, z := range data {
						var err error
						if zr == nil {
							zr, err = readers[name](bytes.NewReader(z))
						} else {
							err = zr.(interface {
								Reset(io.Reader, []byte) error
							}).Reset(bytes.NewReader(z), nil)
						}
						if err != nil {
							b.Fatal(err)
						}
						if _, err := io.ReadFull(zr, dst); err != nil && err != io.ErrUnexpectedEOF {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
