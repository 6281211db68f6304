package bench

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/vmdk"
)

// compressedGrains returns the grains of the streamOptimized benchmark
// image with their compressed bytes read into memory, so inflating them
// measures the CPU alone.
func compressedGrains(b *testing.B) ([]vmdk.Grain, [][]byte, int64) {
	b.Helper()
	h, err := disk.OpenHostFile(image(b, formats[2]))
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

// BenchmarkInflate inflates every grain of the streamOptimized image from
// memory: on one core (serial), and on all cores (parallel, grains handed
// out one at a time). MB/s counts inflated bytes.
func BenchmarkInflate(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		grains, data, total := compressedGrains(b)
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
	b.Run("parallel", func(b *testing.B) {
		grains, data, total := compressedGrains(b)
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
