package vhd

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/diskport/diskport/disk"
)

// builtVHDs returns small valid VHDs: dynamic, differencing (with
// locators of three platforms) and fixed.
func builtVHDs() [][]byte {
	const bs = 4096
	dyn := buildVHD(spec{diskType: TypeDynamic, size: 5*bs + 1024, blockSize: bs, creator: "win ",
		blocks: map[int]specBlock{0: {data: pattern(1, bs)}, 2: {data: pattern(2, bs), bitmap: []byte{0x5a}}, 5: {data: pattern(3, 1024)}}})
	diff := buildVHD(spec{diskType: TypeDifferencing, size: 4 * bs, blockSize: bs, parentName: `C:\base.vhd`,
		locators: []specLocator{{platformW2ku, utf16le(`C:\base.vhd`)}, {platformW2ru, utf16le(`.\base.vhd`)}, {platformMacX, []byte("file:///base.vhd")}},
		blocks:   map[int]specBlock{1: {data: pattern(4, bs), bitmap: []byte{0x81}}, 3: {data: pattern(5, bs)}}})
	fixed := buildVHD(spec{diskType: TypeFixed, size: 3000, fixedData: pattern(6, 3000), creator: "qem2"})
	return [][]byte{dyn, diff, fixed}
}

// fuzzSeeds returns small valid and broken VHDs to start fuzzing from.
func fuzzSeeds(t testing.TB) [][]byte {
	seeds := builtVHDs()
	// Large samples make the fuzzer's minimisation crawl: only afl5.
	for _, name := range []string{"afl5.img"} {
		b, err := os.ReadFile(sample(t, name))
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzOpen opens arbitrary bytes as a VHD, with and without a parent, and
// walks and reads what opens: no panic, only typed errors, extents inside
// their storage, zero runs reading as zeros.
func FuzzOpen(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	parent := &memImage{pattern(7, 20000)}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := disk.NewMemStorage("fuzz.vhd", b)
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

// exerciseImage walks img's extents and reads around them, checking the
// contract cheaply: a bounded number of extents and reads.
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
			t.Fatalf("Extents: %v", err)
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
	if size > 0 {
		if _, err := m.ReadAt(buf, max(0, size-int64(len(buf)))); err != nil && err != io.EOF {
			t.Fatalf("ReadAt(end): %v", err)
		}
	}
	m.Close()
}

// FuzzFooter decodes arbitrary 512-byte footers.
func FuzzFooter(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b[len(b)-footerSize:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = append(b, make([]byte, footerSize)...)[:footerSize]
		fixChecksum(b, 64) // reach past the checksum
		if ft, err := parseFooter(b, 0); err == nil {
			_ = ft.qemuSectors()
			_ = ft.creatorVersionString()
		}
	})
}

// FuzzHeader decodes arbitrary dynamic headers and their locators.
func FuzzHeader(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		if len(b) >= 512+headerSize {
			f.Add(b[512 : 512+headerSize])
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = append(b, make([]byte, headerSize)...)[:headerSize]
		fixChecksum(b, 36)
		h, err := parseHeader(b, 512)
		if err != nil {
			return
		}
		if bm := h.bitmapBytes(); bm == 0 || bm%disk.SectorSize != 0 {
			t.Fatalf("bitmap %d bytes for block size %d", bm, h.blockSize)
		}
		s := disk.NewMemStorage("h", b)
		if _, err := readLocators(s, h, uint64(len(b))); err != nil {
			var de *disk.Error
			if !errors.As(err, &de) {
				t.Fatalf("untyped error %v", err)
			}
		}
	})
}
