package bundle

import (
	"context"
	"crypto/sha1"
	"hash/crc32"
	"io"
	"iter"
	"testing"

	"github.com/klauspost/compress/flate"

	"github.com/diskport/diskport/disk"
)

// Every benchmark reports, besides wall-clock MB/s, "MB/cpu-s": volume
// bytes per CPU-second of the whole process (user+system, all goroutines).
// On a machine shared with other work the wall clock says little; the CPU
// cost per byte of each stage says which one bounds the pass.

// measure runs f b.N times over n bytes and reports MB/s and MB/cpu-s.
func measure(b *testing.B, n int64, f func()) {
	b.SetBytes(n)
	b.ResetTimer()
	start := cpuTime()
	iters := 0
	for b.Loop() {
		f()
		iters++
	}
	if cpu := (cpuTime() - start).Seconds(); cpu > 0 {
		b.ReportMetric(float64(iters)*float64(n)/cpu/1e6, "MB/cpu-s")
	}
}

// discardSink stores nothing.
type discardSink struct{}

func (discardSink) Put(ctx context.Context, name string, data []byte) error { return nil }

// benchVolume is 64 MiB of the mixed random/text/zero data of testData.
func benchVolume(b *testing.B) []byte {
	b.Helper()
	return testData(64<<20, 9)
}

// BenchmarkWrite measures the whole bundling pass (tar, SHA-1, parallel
// gzip, AES-128-CBC, part SHA-1s) over volumes that need no disk I/O:
// mixed random/text/zero data in memory, incompressible noise made on the
// fly, and a sparse all-zero volume. MB/s is of the volume.
func BenchmarkWrite(b *testing.B) {
	for _, c := range []struct {
		name  string
		level int
		img   func(b *testing.B) disk.Image
	}{
		{"mixed-level6", 6, func(b *testing.B) disk.Image { return memImage(b, benchVolume(b)) }},
		{"mixed-level1", 1, func(b *testing.B) disk.Image { return memImage(b, benchVolume(b)) }},
		{"mixed-level9", 9, func(b *testing.B) disk.Image { return memImage(b, benchVolume(b)) }},
		{"noise-level6", 6, func(b *testing.B) disk.Image { return noiseImage{64 << 20} }},
		{"zeros-level6", 6, func(b *testing.B) disk.Image { return zeroImage{256 << 20} }},
	} {
		b.Run(c.name, func(b *testing.B) {
			img := c.img(b)
			opt := testOptions("bench")
			opt.Level = c.level
			measure(b, img.Size(), func() {
				if _, err := Write(context.Background(), img, discardSink{}, opt); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// zeroImage is a sparse volume that is one zero extent.
type zeroImage struct{ size int64 }

func (z zeroImage) Size() int64     { return z.size }
func (z zeroImage) Info() disk.Info { return disk.Info{Format: "raw", VirtualSize: z.size} }
func (z zeroImage) Close() error    { return nil }

func (z zeroImage) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	return len(p), nil
}

func (z zeroImage) Extents(off, l int64) iter.Seq2[disk.Extent, error] {
	return func(yield func(disk.Extent, error) bool) {
		s, e := disk.ClipRange(off, l, z.size)
		if e > s {
			yield(disk.Extent{Offset: s, Length: e - s, Kind: disk.Zero}, nil)
		}
	}
}

// The stages alone, over the mixed volume, to see which bounds the pass.

func BenchmarkStageCRC32(b *testing.B) {
	vol := benchVolume(b)
	measure(b, int64(len(vol)), func() { crc32.ChecksumIEEE(vol) })
}

func BenchmarkStageSHA1(b *testing.B) {
	vol := benchVolume(b)
	measure(b, int64(len(vol)), func() { sha1.Sum(vol) })
}

func BenchmarkStageAES(b *testing.B) {
	vol := benchVolume(b)
	measure(b, int64(len(vol)), func() {
		w, _ := newCBCWriter(io.Discard, []byte("0123456789abcdef"), []byte("fedcba9876543210"))
		w.Write(vol)
		w.Close()
	})
}

func BenchmarkStageGzip(b *testing.B) {
	vol := benchVolume(b)
	for _, c := range []struct {
		name           string
		level, workers int
	}{{"level6-1worker", 6, 1}, {"level6-parallel", 6, 0}, {"level1-parallel", 1, 0}, {"level9-parallel", 9, 0}} {
		b.Run(c.name, func(b *testing.B) {
			measure(b, int64(len(vol)), func() {
				z, _ := newPgzipWriter(io.Discard, c.level, c.workers)
				z.Write(vol)
				z.Close()
			})
		})
	}
	b.Run("level6-one-flate-stream", func(b *testing.B) {
		measure(b, int64(len(vol)), func() {
			w, _ := flate.NewWriter(io.Discard, 6)
			w.Write(vol)
			w.Close()
		})
	})
}

// BenchmarkExtract measures unbundling from a directory into memory.
func BenchmarkExtract(b *testing.B) {
	vol := benchVolume(b)
	dir := Dir(b.TempDir())
	if _, err := Write(context.Background(), memImage(b, vol), dir, testOptions("bench")); err != nil {
		b.Fatal(err)
	}
	measure(b, int64(len(vol)), func() {
		r, err := Open(context.Background(), dir, ManifestName("bench"), ReadOptions{Key: userKey()})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Extract(context.Background(), discardAt{}); err != nil {
			b.Fatal(err)
		}
	})
}
