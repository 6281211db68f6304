package vhd

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/disk"
)

const benchSize = 64 << 20

// benchDynamic builds a 64 MiB dynamic disk of 2 MiB blocks, all
// allocated; with partial set, every block's bitmap marks every other
// sector present (the slowest layout: one run per sector).
func benchDynamic(partial bool) []byte {
	const bs = 2 << 20
	blocks := map[int]specBlock{}
	var bm []byte
	if partial {
		bm = bitmapOf(bs/512, func(i int) bool { return i%2 == 0 })
	}
	for i := range benchSize / bs {
		blocks[i] = specBlock{data: pattern(uint64(i), bs), bitmap: bm}
	}
	return buildVHD(spec{diskType: TypeDynamic, size: benchSize, blockSize: bs, blocks: blocks})
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

// BenchmarkReadDynamic reads a fully allocated dynamic disk from memory.
func BenchmarkReadDynamic(b *testing.B) {
	benchRead(b, mustOpen(b, "dyn", benchDynamic(false), Options{}))
}

// BenchmarkReadDynamicFile reads the same disk from a host file (mapped).
func BenchmarkReadDynamicFile(b *testing.B) {
	path := filepath.Join(b.TempDir(), "dyn.vhd")
	if err := os.WriteFile(path, benchDynamic(false), 0o644); err != nil {
		b.Fatal(err)
	}
	m, err := Open(openFile(b, path), Options{})
	if err != nil {
		b.Fatal(err)
	}
	benchRead(b, m)
}

// BenchmarkReadDynamicPartial reads a dynamic disk whose bitmaps
// alternate present and absent sectors.
func BenchmarkReadDynamicPartial(b *testing.B) {
	benchRead(b, mustOpen(b, "dyn", benchDynamic(true), Options{}))
}

// BenchmarkReadFixed reads a fixed disk from memory.
func BenchmarkReadFixed(b *testing.B) {
	img := buildVHD(spec{diskType: TypeFixed, size: benchSize, fixedData: pattern(1, benchSize)})
	benchRead(b, mustOpen(b, "fixed", img, Options{}))
}

// BenchmarkReadDifferencing reads a differencing disk (every other sector
// present) through a fully allocated dynamic parent.
func BenchmarkReadDifferencing(b *testing.B) {
	parent := mustOpen(b, "parent", benchDynamic(false), Options{})
	const bs = 2 << 20
	blocks := map[int]specBlock{}
	bm := bitmapOf(bs/512, func(i int) bool { return i%2 == 0 })
	for i := 0; i < benchSize/bs; i += 2 {
		blocks[i] = specBlock{data: pattern(uint64(100+i), bs), bitmap: bm}
	}
	child := buildVHD(spec{diskType: TypeDifferencing, size: benchSize, blockSize: bs, uniqueID: [16]byte{9}, parentID: parent.UniqueID(), blocks: blocks})
	benchRead(b, mustOpen(b, "child", child, Options{Parent: parent}))
}

// BenchmarkOpenAndMap127G opens the 127 GiB Hyper-V sample (65024 BAT
// entries) and walks its extent map.
func BenchmarkOpenAndMap127G(b *testing.B) {
	s := openFile(b, sample(b, "hyperv2012r2-dynamic.vhd"))
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
