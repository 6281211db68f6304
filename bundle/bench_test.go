package bundle

import (
	"context"
	"crypto/sha1"
	"io"
	"testing"

	"github.com/klauspost/compress/flate"
)

// discardSink stores nothing.
type discardSink struct{}

func (discardSink) Put(ctx context.Context, name string, data []byte) error { return nil }

// benchVolume is 64 MiB of the mixed random/text/zero data of testData.
func benchVolume(b *testing.B) []byte {
	b.Helper()
	return testData(64<<20, 9)
}

// BenchmarkWrite measures the whole bundling pass (tar, SHA-1, parallel
// gzip, AES-128-CBC, part SHA-1s) over a volume in memory; MB/s is of the
// volume.
func BenchmarkWrite(b *testing.B) {
	for _, level := range []int{1, 6} {
		b.Run(map[int]string{1: "level1", 6: "level6"}[level], func(b *testing.B) {
			vol := benchVolume(b)
			img := memImage(b, vol)
			opt := testOptions("bench")
			opt.Level = level
			b.SetBytes(int64(len(vol)))
			b.ResetTimer()
			for b.Loop() {
				if _, err := Write(context.Background(), img, discardSink{}, opt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The stages alone, to see which bounds the pass.

func BenchmarkStageSHA1(b *testing.B) {
	vol := benchVolume(b)
	b.SetBytes(int64(len(vol)))
	for b.Loop() {
		sha1.Sum(vol)
	}
}

func BenchmarkStageAES(b *testing.B) {
	vol := benchVolume(b)
	b.SetBytes(int64(len(vol)))
	for b.Loop() {
		w, _ := newCBCWriter(io.Discard, []byte("0123456789abcdef"), []byte("fedcba9876543210"))
		w.Write(vol)
		w.Close()
	}
}

func BenchmarkStageGzip(b *testing.B) {
	vol := benchVolume(b)
	for _, c := range []struct {
		name           string
		level, workers int
	}{{"level6-serial", 6, 1}, {"level6-parallel", 6, 0}, {"level1-parallel", 1, 0}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(vol)))
			for b.Loop() {
				z, _ := newPgzipWriter(io.Discard, c.level, c.workers)
				z.Write(vol)
				z.Close()
			}
		})
	}
	b.Run("level6-one-flate-writer", func(b *testing.B) {
		b.SetBytes(int64(len(vol)))
		for b.Loop() {
			w, _ := flate.NewWriter(io.Discard, 6)
			w.Write(vol)
			w.Close()
		}
	})
}

// BenchmarkExtract measures unbundling from a directory into memory.
func BenchmarkExtract(b *testing.B) {
	vol := benchVolume(b)
	dir := Dir(b.TempDir())
	if _, err := Write(context.Background(), memImage(b, vol), dir, testOptions("bench")); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(vol)))
	for b.Loop() {
		r, err := Open(context.Background(), dir, ManifestName("bench"), ReadOptions{Key: userKey()})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Extract(context.Background(), discardAt{}); err != nil {
			b.Fatal(err)
		}
	}
}
