//go:build linux

package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/internal/testimg"
	"golang.org/x/sys/unix"
)

// The host-copy benchmarks copy the data runs of the raw golden disk
// (found with SEEK_DATA/SEEK_HOLE) into a new sparse file three ways, the
// choices a converter has for bytes stored verbatim: from a memory mapping
// of the source, through a reused buffer with pread, and with
// copy_file_range. The first two skip 4 KiB blocks of zeros as the
// converter does; copy_file_range cannot look at the bytes. The numbers
// (and the CPU each costs: run with -cpuprofile or under perf stat) guide
// which path the converter takes for RAW, flat VMDK extents and VHD
// blocks.

// dataRuns returns the data runs of f, a file of size bytes.
func dataRuns(b *testing.B, f *os.File, size int64) [][2]int64 {
	var runs [][2]int64
	for off := int64(0); off < size; {
		d, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if err != nil {
			break // ENXIO: no data after off
		}
		h, err := unix.Seek(int(f.Fd()), d, unix.SEEK_HOLE)
		if err != nil {
			b.Fatal(err)
		}
		runs = append(runs, [2]int64{d, h})
		off = h
	}
	return runs
}

var zeroBlock = make([]byte, 4096)

// writeNonZero writes the blocks of p (at off) that are not all zeros.
func writeNonZero(b *testing.B, out *os.File, p []byte, off int64) {
	isZero := func(q []byte) bool { return q[0] == 0 && bytes.Equal(q, zeroBlock[:len(q)]) }
	for i := 0; i < len(p); {
		k := min(len(zeroBlock), len(p)-i)
		if isZero(p[i : i+k]) {
			i += k
			continue
		}
		j := i + k
		for j < len(p) {
			k := min(len(zeroBlock), len(p)-j)
			if isZero(p[j : j+k]) {
				break
			}
			j += k
		}
		if _, err := out.WriteAt(p[i:j], off+int64(i)); err != nil {
			b.Fatal(err)
		}
		i = j
	}
}

// hostCopy times copyRuns, which copies the data runs of the golden disk from
// src into out.
func hostCopy(b *testing.B, copyRuns func(b *testing.B, src, out *os.File, runs [][2]int64)) {
	golden := testimg.Golden(b, testimg.Spec{Size: goldenSize, Seed: 1, ZeroPercent: 25})
	src, err := os.Open(golden)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	runs := dataRuns(b, src, goldenSize)
	dst := filepath.Join(b.TempDir(), "volume.raw")
	b.SetBytes(goldenSize)
	for b.Loop() {
		b.StopTimer()
		os.Remove(dst)
		out, err := os.Create(dst)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := out.Truncate(goldenSize); err != nil {
			b.Fatal(err)
		}
		copyRuns(b, src, out, runs)
		out.Close()
	}
}

// BenchmarkHostCopy compares the three ways of copying verbatim bytes.
func BenchmarkHostCopy(b *testing.B) {
	const chunk = 256 << 10
	b.Run("mmap", func(b *testing.B) {
		hostCopy(b, func(b *testing.B, src, out *os.File, runs [][2]int64) {
			m, err := unix.Mmap(int(src.Fd()), 0, goldenSize, unix.PROT_READ, unix.MAP_SHARED)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Munmap(m)
			for _, r := range runs {
				for off := r[0]; off < r[1]; off += chunk {
					n := min(chunk, r[1]-off)
					writeNonZero(b, out, m[off:off+n], off)
				}
			}
		})
	})
	b.Run("pread", func(b *testing.B) {
		buf := make([]byte, chunk)
		hostCopy(b, func(b *testing.B, src, out *os.File, runs [][2]int64) {
			for _, r := range runs {
				for off := r[0]; off < r[1]; off += chunk {
					n := min(chunk, r[1]-off)
					if _, err := src.ReadAt(buf[:n], off); err != nil {
						b.Fatal(err)
					}
					writeNonZero(b, out, buf[:n], off)
				}
			}
		})
	})
	b.Run("copy_file_range", func(b *testing.B) {
		hostCopy(b, func(b *testing.B, src, out *os.File, runs [][2]int64) {
			for _, r := range runs {
				in, o := r[0], r[0]
				for in < r[1] {
					n, err := unix.CopyFileRange(int(src.Fd()), &in, int(out.Fd()), &o, int(r[1]-in), 0)
					if err != nil {
						b.Fatal(err)
					}
					if n == 0 {
						b.Fatalf("copy_file_range: no progress at %d", in)
					}
				}
			}
		})
	})
}
