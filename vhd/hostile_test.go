package vhd

import (
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
)

var be = binary.BigEndian

// hostileBase is a valid dynamic disk: blocks of 512 KiB, BAT at 1536 (4
// entries, one sector), blocks 0 and 2 allocated at sectors 4 and 1029.
func hostileBase() []byte {
	const bs = 512 << 10
	return buildVHD(spec{diskType: TypeDynamic, size: 3*bs + 1024, blockSize: bs, creator: "win ",
		blocks: map[int]specBlock{0: {data: pattern(1, bs)}, 2: {data: pattern(2, bs), bitmap: []byte{0xf0}}}})
}

// hostileDiff is a valid differencing disk with a W2ku locator.
func hostileDiff() []byte {
	return buildVHD(spec{diskType: TypeDifferencing, size: 1 << 20, blockSize: 512 << 10, parentName: "p.vhd",
		locators: []specLocator{{platformW2ku, utf16le(`C:\p.vhd`)}},
		blocks:   map[int]specBlock{1: {data: pattern(3, 512<<10)}}})
}

// editFooters applies fn to both footers (offset 0 and the end) and fixes
// their checksums.
func editFooters(b []byte, fn func(f []byte)) {
	for _, at := range []int{0, len(b) - footerSize} {
		fn(b[at : at+footerSize])
		fixChecksum(b[at:at+footerSize], 64)
	}
}

// editHeader applies fn to the dynamic header at 512 and fixes its
// checksum.
func editHeader(b []byte, fn func(h []byte)) {
	fn(b[512 : 512+headerSize])
	fixChecksum(b[512:512+headerSize], 36)
}

// setBAT sets BAT entry i (the BAT is at 1536).
func setBAT(b []byte, i int, v uint32) { be.PutUint32(b[1536+4*i:], v) }

// TestHostile opens hand-damaged images and checks each is refused with
// the right class and message, within a bounded allocation.
func TestHostile(t *testing.T) {
	cases := []struct {
		name  string
		base  func() []byte
		edit  func(b []byte) []byte
		opts  Options
		class error
		msg   string
	}{
		{"block size 0", hostileBase, func(b []byte) []byte {
			editHeader(b, func(h []byte) { be.PutUint32(h[32:], 0) })
			return b
		}, Options{}, disk.ErrCorrupt, "block size 0 is not a power of two"},
		{"block size not a power of 2", hostileBase, func(b []byte) []byte {
			editHeader(b, func(h []byte) { be.PutUint32(h[32:], 3<<19) })
			return b
		}, Options{}, disk.ErrCorrupt, "not a power of two"},
		{"block size 256", hostileBase, func(b []byte) []byte {
			editHeader(b, func(h []byte) { be.PutUint32(h[32:], 256) })
			return b
		}, Options{}, disk.ErrCorrupt, "at least 512"},
		{"block size 2 GiB", hostileBase, func(b []byte) []byte {
			editHeader(b, func(h []byte) { be.PutUint32(h[32:], 1<<31) })
			return b
		}, Options{}, disk.ErrTooLarge, "exceeds"},
		{"max table entries 2^32-1", hostileBase, func(b []byte) []byte {
			editHeader(b, func(h []byte) { be.PutUint32(h[28:], 0xFFFFFFFF) })
			return b
		}, Options{}, disk.ErrCorrupt, "BAT at byte 1536 (4294967295 entries, 17179869180 bytes) past end of file"},
		{"max table entries 0x40000001 (afl5)", hostileBase, func(b []byte) []byte {
			editHeader(b, func(h []byte) { be.PutUint32(h[28:], 0x40000001) })
			return b
		}, Options{}, disk.ErrCorrupt, "past end of file"},
		{"max table entries too few", hostileBase, func(b []byte) []byte {
			editHeader(b, func(h []byte) { be.PutUint32(h[28:], 3) })
			return b
		}, Options{}, disk.ErrCorrupt, "BAT has 3 entries"},
		{"BAT past EOF", hostileBase, func(b []byte) []byte {
			editHeader(b, func(h []byte) { be.PutUint64(h[16:], uint64(len(b))) })
			return b
		}, Options{}, disk.ErrCorrupt, "past end of file"},
		{"BAT offset 2^64-1", hostileBase, func(b []byte) []byte {
			editHeader(b, func(h []byte) { be.PutUint64(h[16:], ^uint64(0)) })
			return b
		}, Options{}, disk.ErrCorrupt, "past end of file"},
		{"BAT over the footer copy", hostileBase, func(b []byte) []byte {
			editHeader(b, func(h []byte) { be.PutUint64(h[16:], 0) })
			return b
		}, Options{}, disk.ErrCorrupt, "overlaps the footer copy"},
		{"BAT over the header", hostileBase, func(b []byte) []byte {
			editHeader(b, func(h []byte) { be.PutUint64(h[16:], 1024) })
			return b
		}, Options{}, disk.ErrCorrupt, "overlaps the dynamic header"},
		{"block in the BAT", hostileBase, func(b []byte) []byte { setBAT(b, 1, 3); return b }, Options{}, disk.ErrCorrupt, "block 1 at byte 1536 (524800 bytes) overlaps the BAT"},
		{"block on the header", hostileBase, func(b []byte) []byte { setBAT(b, 1, 2); return b }, Options{}, disk.ErrCorrupt, "overlaps the dynamic header"},
		{"block on the footer copy", hostileBase, func(b []byte) []byte { setBAT(b, 1, 0); return b }, Options{}, disk.ErrCorrupt, "overlaps the footer copy"},
		{"block past EOF", hostileBase, func(b []byte) []byte { setBAT(b, 1, 0xFFFFFFFE); return b }, Options{}, disk.ErrCorrupt, "block 1 at sector 4294967294 (524800 bytes) past end of file"},
		{"block over the trailing footer", hostileBase, func(b []byte) []byte {
			setBAT(b, 1, uint32(len(b)/512-1025))
			return b
		}, Options{}, disk.ErrCorrupt, "past end of file"},
		{"blocks overlap", hostileBase, func(b []byte) []byte { setBAT(b, 1, 5); return b }, Options{}, disk.ErrCorrupt, "blocks 0 (sector 4) and 1 (sector 5) overlap"},
		{"same block twice", hostileBase, func(b []byte) []byte { setBAT(b, 3, 4); return b }, Options{}, disk.ErrCorrupt, "overlap"},
		{"truncated", hostileBase, func(b []byte) []byte { return b[:len(b)-4096] }, Options{}, disk.ErrCorrupt, "past end of file"},
		{"truncated to 300 bytes", hostileBase, func(b []byte) []byte { return b[:300] }, Options{}, disk.ErrCorrupt, "too short"},
		{"truncated to the footer copy", hostileBase, func(b []byte) []byte { return b[:512] }, Options{}, disk.ErrCorrupt, "dynamic header at byte 512 (1024 bytes) past end of file"},
		{"bad checksums", hostileBase, func(b []byte) []byte {
			b[100]++
			b[len(b)-400]++
			return b
		}, Options{}, disk.ErrCorrupt, "and the copy at offset 0"},
		{"bad header checksum", hostileBase, func(b []byte) []byte { b[512+800]++; return b }, Options{}, disk.ErrCorrupt, "dynamic header at byte 512: checksum"},
		{"bad header cookie", hostileBase, func(b []byte) []byte {
			editHeader(b, func(h []byte) { copy(h, "cxspars!") })
			return b
		}, Options{}, disk.ErrCorrupt, "cookie"},
		{"header version 2", hostileBase, func(b []byte) []byte {
			editHeader(b, func(h []byte) { be.PutUint32(h[24:], 0x00020000) })
			return b
		}, Options{}, disk.ErrUnsupported, "header version"},
		{"header past EOF", hostileBase, func(b []byte) []byte {
			editFooters(b, func(f []byte) { be.PutUint64(f[16:], 1<<40) })
			return b
		}, Options{}, disk.ErrCorrupt, "dynamic header at byte 1099511627776"},
		{"header at 0", hostileBase, func(b []byte) []byte {
			editFooters(b, func(f []byte) { be.PutUint64(f[16:], 0) })
			return b
		}, Options{}, disk.ErrCorrupt, "overlaps the footer copy"},
		{"size 2^64-1", hostileBase, func(b []byte) []byte {
			editFooters(b, func(f []byte) { be.PutUint64(f[48:], ^uint64(0)) })
			return b
		}, Options{}, disk.ErrTooLarge, "exceeds"},
		{"size 2041 GiB", hostileBase, func(b []byte) []byte {
			editFooters(b, func(f []byte) { be.PutUint64(f[48:], 2041<<30) })
			return b
		}, Options{}, disk.ErrTooLarge, "exceeds the 2190433320960-byte limit"},
		{"size above MaxVirtualSize", hostileBase, func(b []byte) []byte { return b }, Options{MaxVirtualSize: 1 << 20}, disk.ErrTooLarge, "exceeds the 1048576-byte limit"},
		{"size 1 TiB, tiny BAT", hostileBase, func(b []byte) []byte {
			editFooters(b, func(f []byte) { be.PutUint64(f[48:], 1<<40) })
			return b
		}, Options{}, disk.ErrCorrupt, "BAT has 4 entries"},
		{"disk type 5", hostileBase, func(b []byte) []byte {
			editFooters(b, func(f []byte) { be.PutUint32(f[60:], 5) })
			return b
		}, Options{}, disk.ErrUnsupported, "disk type 5"},
		{"footer version 2", hostileBase, func(b []byte) []byte {
			editFooters(b, func(f []byte) { be.PutUint32(f[12:], 0x00020000) })
			return b
		}, Options{}, disk.ErrUnsupported, "file format version"},
		{"not a VHD", func() []byte { return pattern(9, 8192) }, func(b []byte) []byte { return b }, Options{}, disk.ErrFormatMismatch, "no \"conectix\" cookie"},
		{"tiny", func() []byte { return []byte("hello") }, func(b []byte) []byte { return b }, Options{}, disk.ErrFormatMismatch, "too short"},
		{"511-byte footer", func() []byte {
			b := buildVHD(spec{diskType: TypeFixed, size: 4096})
			return append(b[:4096], b[4096:4096+511]...)
		}, func(b []byte) []byte { return b }, Options{}, disk.ErrUnsupported, "511-byte footer"},
		{"fixed, truncated", func() []byte { return buildVHD(spec{diskType: TypeFixed, size: 1 << 20}) }, func(b []byte) []byte {
			return append(b[:4096], b[len(b)-512:]...)
		}, Options{}, disk.ErrCorrupt, "truncated"},
		{"locator past EOF", hostileDiff, func(b []byte) []byte {
			editHeader(b, func(h []byte) { be.PutUint64(h[576+16:], uint64(len(b))) })
			return b
		}, Options{Parent: &memImage{}}, disk.ErrCorrupt, "parent locator 0 (W2ku): data at byte"},
		{"locator offset overflow", hostileDiff, func(b []byte) []byte {
			editHeader(b, func(h []byte) { be.PutUint64(h[576+16:], ^uint64(0)-4) })
			return b
		}, Options{Parent: &memImage{}}, disk.ErrCorrupt, "past end of file"},
		{"locator too long", hostileDiff, func(b []byte) []byte {
			editHeader(b, func(h []byte) { be.PutUint32(h[576+8:], 1<<30) })
			return b
		}, Options{Parent: &memImage{}}, disk.ErrCorrupt, "data length 1073741824 exceeds"},
		{"block over the locator", hostileDiff, func(b []byte) []byte {
			setBAT(b, 0, 4) // the locator data follows the one-sector BAT
			return b
		}, Options{Parent: &memImage{}}, disk.ErrCorrupt, "overlaps the parent locator 0 (W2ku)"},
		{"differencing without parent", hostileDiff, func(b []byte) []byte { return b }, Options{}, disk.ErrUnsafe, `needs its parent "p.vhd"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.edit(c.base())
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			m, err := Open(disk.NewMemStorage("hostile.vhd", b), c.opts)
			runtime.ReadMemStats(&after)
			if err == nil {
				m.Close()
				t.Fatalf("Open succeeded, want %v", c.class)
			}
			if !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q (class %v), want class %v mentioning %q", err, errors.Unwrap(err), c.class, c.msg)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(2*len(b))+1<<20 {
				t.Errorf("Open allocated %d bytes for a %d-byte file", alloc, len(b))
			}
		})
	}
}

// TestBaseImagesValid makes sure the hostile cases start from images that
// open, so each failure is the edit's doing.
func TestBaseImagesValid(t *testing.T) {
	m := mustOpen(t, "base", hostileBase(), Options{})
	checkAgainstSpec(t, m)
	mustOpen(t, "diff", hostileDiff(), Options{Parent: &memImage{make([]byte, 1<<20)}})
}

// TestTrailingFooterDamaged: a dynamic disk whose trailing footer has a
// bad checksum opens from the copy at offset 0 and says so in Info; one
// whose copy is damaged opens from the trailing footer.
func TestTrailingFooterDamaged(t *testing.T) {
	for _, c := range []struct {
		name string
		at   func(b []byte) int
		note bool
	}{
		{"trailing", func(b []byte) int { return len(b) - 300 }, true},
		{"copy", func(b []byte) int { return 300 }, false},
		{"trailing cookie", func(b []byte) int { return len(b) - 512 }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := hostileBase()
			b[c.at(b)] ^= 0x40
			m := mustOpen(t, "damaged.vhd", b, Options{})
			note, ok := m.Info().Specific["footer"].(string)
			if ok != c.note || (ok && !strings.Contains(note, "copy at offset 0")) {
				t.Errorf("Info footer note %q (present %v), want present %v", note, ok, c.note)
			}
			checkAgainstSpec(t, m)
		})
	}
}

// checkAgainstSpec checks a hostileBase image reads as built.
func checkAgainstSpec(t *testing.T, m *Image) {
	t.Helper()
	const bs = 512 << 10
	want := make([]byte, 3*bs+1024)
	copy(want, pattern(1, bs))
	copy(want[2*bs:], pattern(2, 4*512)) // bitmap 0xf0: the first 4 sectors
	got := make([]byte, len(want))
	if _, err := m.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("byte %d differs", i)
	}
}

// TestHugeMaxVirtualSize: a caller's huge limit does not let the size
// arithmetic overflow.
func TestHugeMaxVirtualSize(t *testing.T) {
	b := hostileBase()
	editFooters(b, func(f []byte) { be.PutUint64(f[48:], 1<<63-1) })
	_, err := Open(disk.NewMemStorage("huge.vhd", b), Options{MaxVirtualSize: 1<<63 - 1})
	if !errors.Is(err, disk.ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
}
