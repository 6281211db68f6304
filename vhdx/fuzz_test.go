package vhdx

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/diskport/diskport/disk"
)

// fuzzSeeds returns small VHDXs to start fuzzing from: the tests' dynamic,
// fixed, differencing and dirty images, and each sample's first 4 MiB (its
// header section, log, metadata and BAT; the whole samples, 30-260 MiB,
// would make every fuzzing step crawl).
func fuzzSeeds(t testing.TB) [][]byte {
	fixed := hostileSpec()
	fixed.fixed = true
	fixed.blocks = map[int]specBlock{}
	for i := range 6 {
		fixed.blocks[i] = specBlock{state: stateFullyPresent, data: pattern(uint64(i), 4096)}
	}
	_, csp := chainSpecs(4096)
	csp.size = 3 << 20
	delete(csp.blocks, 5)
	delete(csp.blocks, 6)
	delete(csp.blocks, 7)
	_, dirty := dirtyPair()
	seeds := [][]byte{hostileBase(), buildVHDX(fixed), buildVHDX(csp), dirty}
	for _, name := range []string{"iotest-dynamic-1G.vhdx", "iotest-dirtylog-10G-4M.vhdx", "test-disk2vhd.vhdx"} {
		f, err := os.Open(sample(t, name))
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 4<<20)
		n, err := io.ReadFull(f, b)
		f.Close()
		if err != nil && err != io.ErrUnexpectedEOF {
			t.Fatal(err)
		}
		seeds = append(seeds, b[:n])
	}
	return seeds
}

// FuzzOpen opens arbitrary bytes as a VHDX, with and without a parent, and
// walks and reads what opens: no panic, only typed errors, extents inside
// their storage, zero runs reading as zeros.
func FuzzOpen(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	parent := &memImage{pattern(7, 3<<20)}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := disk.NewMemStorage("fuzz.vhdx", b)
		Probe(s)
		for _, opts := range []Options{{}, {Parent: parent}} {
			m, err := Open(s, opts)
			if err != nil {
				var de *disk.Error
				if !errors.As(err, &de) {
					t.Fatalf("untyped error %T: %v", err, err)
				}
				continue
			}
			exerciseImage(t, m)
		}
	})
}

// exerciseImage walks m's extents and reads around them, checking the
// contract cheaply: a bounded number of reads.
func exerciseImage(t *testing.T, m *Image) {
	_ = m.Info()
	size := m.Size()
	if size < 0 || size%disk.SectorSize != 0 {
		t.Fatalf("Size %d", size)
	}
	var pos int64
	buf := make([]byte, 64<<10)
	n := 0
	for e, err := range m.Extents(0, size) {
		if err != nil {
			var de *disk.Error
			if !errors.As(err, &de) {
				t.Fatalf("Extents: untyped error %v", err)
			}
			return
		}
		if e.Offset != pos || e.Length <= 0 {
			t.Fatalf("extent %+v at %d", e, pos)
		}
		pos = e.End()
		if e.Stored != nil && (e.StoredOffset < 0 || e.StoredOffset+e.Length > e.Stored.Size()) {
			t.Fatalf("extent %+v past its storage (%d bytes)", e, e.Stored.Size())
		}
		if n++; n > 100 {
			continue // keep walking, stop reading
		}
		p := buf[:min(int64(len(buf)), e.Length)]
		if _, err := m.ReadAt(p, e.Offset); err != nil && err != io.EOF {
			t.Fatalf("ReadAt(%d): %v", e.Offset, err)
		}
		if e.Kind == disk.Zero && !isZero(p) {
			t.Fatalf("zero extent %+v reads data", e)
		}
	}
	if pos != size {
		t.Fatalf("extents end at %d, size %d", pos, size)
	}
	m.Close()
}
