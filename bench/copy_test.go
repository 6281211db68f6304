//go:build linux

package bench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
	"golang.org/x/sys/unix"
)

// The host-copy benchmarks copy the data runs of the raw golden disk
// (found with SEEK_DATA/SEEK_HOLE) into a new sparse file, the ways a
// converter has for bytes stored verbatim: written from a memory mapping
// of the source or from a reused buffer filled by pread; copied with
// copy_file_range alone, which cannot look at the bytes; and copied with
// copy_file_range after a zero-block scan of the mapping or of a pread
// buffer (the converter's path: volume.Writer.CopyFrom). All but the bare
// copy_file_range skip 4 KiB blocks of zeros as the converter does. The
// numbers (and the CPU each costs: run with -cpuprofile or under perf
// stat) guide which path the converter takes for RAW, flat VMDK extents
// and VHD blocks. How the source's page cache was filled matters to the
// mapping: a file just written is cached in small folios, each page a
// fault or a mapping of its own.

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

// zeroBlock is the size of the zero blocks the copies skip.
const zeroBlock = 4096

// nonZero calls fn with each run [i, j) of p's blocks that are not all
// zeros.
func nonZero(p []byte, fn func(i, j int)) {
	for i := 0; i < len(p); {
		k := min(zeroBlock, len(p)-i)
		if disk.IsZero(p[i : i+k]) {
			i += k
			continue
		}
		j := i + k
		for j < len(p) {
			k := min(zeroBlock, len(p)-j)
			if disk.IsZero(p[j : j+k]) {
				break
			}
			j += k
		}
		fn(i, j)
		i = j
	}
}

// writeNonZero writes the blocks of p (at off) that are not all zeros.
func writeNonZero(b *testing.B, out *os.File, p []byte, off int64) {
	nonZero(p, func(i, j int) {
		if _, err := out.WriteAt(p[i:j], off+int64(i)); err != nil {
			b.Fatal(err)
		}
	})
}

// copyNonZero copies from src the blocks of p, read from src at off, that
// are not all zeros, with copy_file_range.
func copyNonZero(b *testing.B, src, out *os.File, p []byte, off int64) {
	nonZero(p, func(i, j int) { copyRange(b, src, out, off+int64(i), off+int64(j)) })
}

// copyRange copies [from, to) of src into out with copy_file_range.
func copyRange(b *testing.B, src, out *os.File, from, to int64) {
	in, o := from, from
	for in < to {
		n, err := unix.CopyFileRange(int(src.Fd()), &in, int(out.Fd()), &o, int(to-in), 0)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			b.Fatalf("copy_file_range: no progress at %d", in)
		}
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

// BenchmarkHostCopy compares the ways of copying verbatim bytes.
func BenchmarkHostCopy(b *testing.B) {
	const chunk = 1 << 20 // convert's buffer
	mapped := func(each func(b *testing.B, src, out *os.File, p []byte, off int64)) func(b *testing.B) {
		return func(b *testing.B) {
			hostCopy(b, func(b *testing.B, src, out *os.File, runs [][2]int64) {
				m, err := unix.Mmap(int(src.Fd()), 0, goldenSize, unix.PROT_READ, unix.MAP_SHARED)
				if err != nil {
					b.Fatal(err)
				}
				defer unix.Munmap(m)
				for _, r := range runs {
					for off := r[0]; off < r[1]; off += chunk {
						n := min(chunk, r[1]-off)
						each(b, src, out, m[off:off+n], off)
					}
				}
			})
		}
	}
	read := func(each func(b *testing.B, src, out *os.File, p []byte, off int64)) func(b *testing.B) {
		return func(b *testing.B) {
			buf := make([]byte, chunk)
			hostCopy(b, func(b *testing.B, src, out *os.File, runs [][2]int64) {
				for _, r := range runs {
					for off := r[0]; off < r[1]; off += chunk {
						n := min(chunk, r[1]-off)
						if _, err := src.ReadAt(buf[:n], off); err != nil {
							b.Fatal(err)
						}
						each(b, src, out, buf[:n], off)
					}
				}
			})
		}
	}
	write := func(b *testing.B, _, out *os.File, p []byte, off int64) { writeNonZero(b, out, p, off) }
	b.Run("mmap", mapped(write))
	b.Run("pread", read(write))
	b.Run("copy_file_range", func(b *testing.B) {
		hostCopy(b, func(b *testing.B, src, out *os.File, runs [][2]int64) {
			for _, r := range runs {
				copyRange(b, src, out, r[0], r[1])
			}
		})
	})
	b.Run("mmap+copy_file_range", mapped(copyNonZero))
	b.Run("pread+copy_file_range", read(copyNonZero))
}
