package vhdx

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/disk"
)

const benchSize = 64 << 20

// benchSpec is a 64 MiB disk of 1 MiB blocks, all present and in order
// in the file (so they coalesce into one stored run): fixed, dynamic, or
// differencing with every block's bitmap alternating present and absent
// sectors (the slowest layout: one run per sector).
func benchSpec(kind string) spec {
	const bs = 1 << 20
	sp := spec{size: benchSize, fixed: kind == "fixed", diff: kind == "diff", blocks: map[int]specBlock{}}
	n := benchSize / bs
	for i := range n {
		st := uint64(stateFullyPresent)
		var bits []byte
		if kind == "diff" {
			st = statePartiallyPresent
			bits = bitsOf(bs/512, func(k int) bool { return k%2 == 0 })
		}
		sp.blocks[i] = specBlock{state: st, data: pattern(uint64(i), bs), bits: bits}
	}
	if kind == "diff" {
		sp.locator = map[string]string{"parent_linkage": "{" + parentGUID.String() + "}"}
	}
	return sp
}

// benchRead reads all of m in 1 MiB reads, b.N times.
func benchRead(b *testing.B, m disk.Image) {
	buf := make([]byte, 1<<20)
	b.SetBytes(m.Size())
	b.ResetTimer()
	for b.Loop() {
		for off := int64(0); off < m.Size(); off += int64(len(buf)) {
			if _, err := m.ReadAt(buf, off); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
	}
}

// benchFile writes img to a temporary file and opens it.
func benchFile(b *testing.B, img []byte, opts Options) *Image {
	path := filepath.Join(b.TempDir(), "bench.vhdx")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		b.Fatal(err)
	}
	m, err := Open(openFile(b, path), opts)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkRead reads 64 MiB disks of every kind, from memory and from a
// host file.
func BenchmarkRead(b *testing.B) {
	b.Run("dynamic", func(b *testing.B) { benchRead(b, mustOpen(b, "dyn", buildVHDX(benchSpec("dynamic")), Options{})) })
	b.Run("dynamic-file", func(b *testing.B) { benchRead(b, benchFile(b, buildVHDX(benchSpec("dynamic")), Options{})) })
	b.Run("fixed-file", func(b *testing.B) { benchRead(b, benchFile(b, buildVHDX(benchSpec("fixed")), Options{})) })
	b.Run("differencing", func(b *testing.B) {
		psp := benchSpec("dynamic")
		psp.dataWrite = parentGUID
		parent := mustOpen(b, "parent", buildVHDX(psp), Options{})
		benchRead(b, mustOpen(b, "child", buildVHDX(benchSpec("diff")), Options{Parent: parent}))
	})
	b.Run("dirty-log", func(b *testing.B) {
		_, dirty := dirtyPair()
		benchRead(b, mustOpen(b, "dirty", dirty, Options{}))
	})
}

// BenchmarkOpenAndMap opens the 10 GiB dirty-log sample (10240 BAT
// entries, the log replayed) and walks its extent map.
func BenchmarkOpenAndMap(b *testing.B) {
	s := openFile(b, sample(b, "iotest-dirtylog-10G-4M.vhdx"))
	for b.Loop() {
		m, err := Open(s, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, err := range m.Extents(0, m.Size()) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
