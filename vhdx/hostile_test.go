package vhdx

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
)

// hostileSpec is a valid dynamic disk: 6 MiB of 1 MiB blocks, blocks 0
// and 2 present at 4 and 5 MiB, block 4 in the zero state.
func hostileSpec() spec {
	return spec{size: 6 << 20, blocks: map[int]specBlock{
		0: {state: stateFullyPresent, data: pattern(1, 1<<20)},
		2: {state: stateFullyPresent, data: pattern(2, 1<<20)},
		4: {state: stateZero},
	}}
}

// hostileBase is hostileSpec's image with 2 MiB of free space at the end
// (6-8 MiB), where tests put extra regions.
func hostileBase() []byte { return append(buildVHDX(hostileSpec()), make([]byte, 2<<20)...) }

// editHeaders applies fn to both headers and fixes their checksums.
func editHeaders(b []byte, fn func(h []byte)) {
	for _, at := range []int{header1At, header2At} {
		fn(b[at : at+headerSize])
		fixHeader(b, at)
	}
}

// editRegions applies fn to both region tables and fixes their checksums.
func editRegions(b []byte, fn func(r []byte)) {
	for _, at := range []int{regionTable1At, regionTable2At} {
		fn(b[at : at+regionTableSize])
		fixRegionTable(b, at)
	}
}

// item returns metadata item i's bytes (0 file parameters, 1 virtual
// size, 2 disk id, 3 logical sector size, 4 physical sector size).
func item(b []byte, i int) []byte {
	e := b[bMetaAt+32+32*i:]
	return b[bMetaAt+int(le.Uint32(e[16:])):]
}

// metaEntry returns metadata table entry i.
func metaEntry(b []byte, i int) []byte { return b[bMetaAt+32+32*i:][:32] }

// setBAT sets BAT entry i.
func setBAT(b []byte, i int, v uint64) { le.PutUint64(b[bBATAt+8*i:], v) }

// TestHostile opens hand-damaged images and checks each is refused with
// the right class and message, within a bounded allocation.
func TestHostile(t *testing.T) {
	edit := func(fn func(b []byte)) func(b []byte) []byte {
		return func(b []byte) []byte { fn(b); return b }
	}
	cases := []struct {
		name  string
		edit  func(b []byte) []byte
		opts  Options
		class error
		msg   string
	}{
		{"signature", edit(func(b []byte) { b[0] = 'V' }), Options{}, disk.ErrFormatMismatch, `signature "Vhdxfile"`},
		{"truncated header section", func(b []byte) []byte { return b[:512<<10] }, Options{}, disk.ErrCorrupt, "shorter than the 1048576-byte header section"},
		{"both headers damaged", edit(func(b []byte) { b[header1At+100]++; b[header2At+100]++ }), Options{}, disk.ErrCorrupt, "no valid header"},
		{"same sequence, different headers", edit(func(b []byte) {
			b[header2At+200] = 1
			fixHeader(b, header2At)
		}), Options{}, disk.ErrCorrupt, "same sequence number 1 but differ"},
		{"version 2", edit(func(b []byte) { editHeaders(b, func(h []byte) { le.PutUint16(h[66:], 2) }) }), Options{}, disk.ErrUnsupported, "version 2"},
		{"log version 1", edit(func(b []byte) {
			editHeaders(b, func(h []byte) { h[48] = 1; le.PutUint16(h[64:], 1) })
		}), Options{}, disk.ErrUnsupported, "log version 1"},
		{"both region tables damaged", edit(func(b []byte) { b[regionTable1At+100]++; b[regionTable2At+100]++ }), Options{}, disk.ErrCorrupt, "no valid region table"},
		{"region entry count", edit(func(b []byte) { editRegions(b, func(r []byte) { le.PutUint32(r[8:], 2048) }) }), Options{}, disk.ErrCorrupt, "2048 entries"},
		{"unknown required region", edit(func(b []byte) {
			editRegions(b, func(r []byte) {
				le.PutUint32(r[8:], 3)
				e := r[16+64:]
				e[0] = 0x77
				le.PutUint64(e[16:], 6<<20)
				le.PutUint32(e[24:], 1<<20)
				le.PutUint32(e[28:], 1)
			})
		}), Options{}, disk.ErrUnsupported, "unknown region marked required"},
		{"region misaligned", edit(func(b []byte) { editRegions(b, func(r []byte) { le.PutUint64(r[16+16:], 3<<20+4096) }) }), Options{}, disk.ErrCorrupt, "not a multiple of 1 MiB"},
		{"region past end of file", edit(func(b []byte) { editRegions(b, func(r []byte) { le.PutUint64(r[16+16:], 1<<40) }) }), Options{}, disk.ErrCorrupt, "past end of file"},
		{"regions overlap", edit(func(b []byte) { editRegions(b, func(r []byte) { le.PutUint64(r[16+16:], bMetaAt) }) }), Options{}, disk.ErrCorrupt, "overlaps the BAT region"},
		{"region GUID twice", edit(func(b []byte) {
			editRegions(b, func(r []byte) { copy(r[48:64], r[16:32]); le.PutUint64(r[48+16:], 7<<20) })
		}), Options{}, disk.ErrCorrupt, "GUID appears twice"},
		{"no BAT region", edit(func(b []byte) { editRegions(b, func(r []byte) { r[16] ^= 0xff; le.PutUint32(r[16+28:], 0) }) }), Options{}, disk.ErrCorrupt, "no BAT region"},
		{"metadata signature", edit(func(b []byte) { b[bMetaAt] = 'M' }), Options{}, disk.ErrCorrupt, `signature "Metadata"`},
		{"metadata entry count", edit(func(b []byte) { le.PutUint16(b[bMetaAt+10:], 2048) }), Options{}, disk.ErrCorrupt, "2048 entries"},
		{"metadata item of 2 MiB", edit(func(b []byte) { le.PutUint32(metaEntry(b, 1)[20:], 2<<20) }), Options{}, disk.ErrCorrupt, "exceeds 1 MiB"},
		{"metadata item inside the table", edit(func(b []byte) { le.PutUint32(metaEntry(b, 1)[16:], 100) }), Options{}, disk.ErrCorrupt, "inside the metadata table"},
		{"metadata item past the region", edit(func(b []byte) { le.PutUint32(metaEntry(b, 1)[16:], 1<<20-4) }), Options{}, disk.ErrCorrupt, "past the end of the 1048576-byte metadata region"},
		{"metadata items overlap", edit(func(b []byte) { le.PutUint32(metaEntry(b, 1)[16:], 64<<10+4) }), Options{}, disk.ErrCorrupt, "overlaps item"},
		{"unknown required metadata item", edit(func(b []byte) { metaEntry(b, 2)[0] ^= 0xff }), Options{}, disk.ErrUnsupported, "unknown metadata item marked required"},
		{"no file parameters", edit(func(b []byte) { metaEntry(b, 0)[0] ^= 0xff; le.PutUint32(metaEntry(b, 0)[24:], 0) }), Options{}, disk.ErrCorrupt, "no file parameters"},
		{"block size 0 (CVE-2014-0148)", edit(func(b []byte) { le.PutUint32(item(b, 0), 0) }), Options{}, disk.ErrCorrupt, "block size 0 is not a power of two"},
		{"block size 512 KiB", edit(func(b []byte) { le.PutUint32(item(b, 0), 512<<10) }), Options{}, disk.ErrCorrupt, "CVE-2014-0148"},
		{"block size 3 MiB", edit(func(b []byte) { le.PutUint32(item(b, 0), 3<<20) }), Options{}, disk.ErrCorrupt, "not a power of two"},
		{"block size 512 MiB", edit(func(b []byte) { le.PutUint32(item(b, 0), 512<<20) }), Options{}, disk.ErrCorrupt, "from 1 MiB to 256 MiB"},
		{"logical sector 0 (CVE-2014-0148)", edit(func(b []byte) { le.PutUint32(item(b, 3), 0) }), Options{}, disk.ErrCorrupt, "logical sector size 0"},
		{"logical sector 1024", edit(func(b []byte) { le.PutUint32(item(b, 3), 1024) }), Options{}, disk.ErrCorrupt, "want 512 or 4096"},
		{"physical sector 1", edit(func(b []byte) { le.PutUint32(item(b, 4), 1) }), Options{}, disk.ErrCorrupt, "physical sector size 1"},
		{"virtual size off the sector", edit(func(b []byte) { le.PutUint64(item(b, 1), 6<<20+100) }), Options{}, disk.ErrCorrupt, "not a multiple of the 512-byte logical sector"},
		{"virtual size 128 TiB", edit(func(b []byte) { le.PutUint64(item(b, 1), 128<<40) }), Options{}, disk.ErrTooLarge, "64 TiB"},
		{"virtual size over the caller's limit", func(b []byte) []byte { return b }, Options{MaxVirtualSize: 4 << 20}, disk.ErrTooLarge, "exceeds the 4194304-byte limit"},
		{"64 TiB, BAT of 1 MiB", edit(func(b []byte) { le.PutUint64(item(b, 1), 64<<40) }), Options{}, disk.ErrCorrupt, "holds 131072 entries, the disk needs 67125247"},
		{"HasParent without a locator", edit(func(b []byte) { le.PutUint32(item(b, 0)[4:], flagHasParent) }), Options{}, disk.ErrCorrupt, "without a parent locator"},
		{"reserved state 4", edit(func(b []byte) { setBAT(b, 1, 4) }), Options{}, disk.ErrCorrupt, "reserved state 4"},
		{"partially present in a dynamic disk", edit(func(b []byte) { setBAT(b, 1, 6<<20|statePartiallyPresent) }), Options{}, disk.ErrCorrupt, "partially present in a disk without a parent"},
		{"block in the header section", edit(func(b []byte) { setBAT(b, 1, stateFullyPresent) }), Options{}, disk.ErrCorrupt, "block 1 at byte 0 is inside the header section"},
		{"block on the log", edit(func(b []byte) { setBAT(b, 1, bLogAt|stateFullyPresent) }), Options{}, disk.ErrCorrupt, "block 1 at byte 1048576 (1048576 bytes) overlaps the log"},
		{"block on the metadata", edit(func(b []byte) { setBAT(b, 1, bMetaAt|stateFullyPresent) }), Options{}, disk.ErrCorrupt, "overlaps the metadata region"},
		{"block on the BAT", edit(func(b []byte) { setBAT(b, 1, bBATAt|stateFullyPresent) }), Options{}, disk.ErrCorrupt, "overlaps the BAT region"},
		{"block past end of file", edit(func(b []byte) { setBAT(b, 1, 8<<20|stateFullyPresent) }), Options{}, disk.ErrCorrupt, "block 1 at byte 8388608 (1048576 bytes) past end of file"},
		{"block offset 2^63", edit(func(b []byte) { setBAT(b, 1, 1<<63|stateFullyPresent) }), Options{}, disk.ErrCorrupt, "inside the header section"},
		{"block offset near 2^63", edit(func(b []byte) { setBAT(b, 1, (1<<63-1)&entryOffsetMask|stateFullyPresent) }), Options{}, disk.ErrCorrupt, "past end of file"},
		{"two blocks at one offset", edit(func(b []byte) { setBAT(b, 1, 4<<20|stateFullyPresent) }), Options{}, disk.ErrCorrupt, "overlap"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.edit(hostileBase())
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			m, err := Open(disk.NewMemStorage("hostile.vhdx", b), c.opts)
			runtime.ReadMemStats(&after)
			if err == nil {
				m.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q (class %v), want class %v mentioning %q", err, errors.Unwrap(err), c.class, c.msg)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(2*len(b))+4<<20 {
				t.Errorf("allocated %d bytes for a %d-byte file", alloc, len(b))
			}
			t.Log(err)
		})
	}
}

// TestTolerated: damage the reader works around, and states it reads.
func TestTolerated(t *testing.T) {
	want := make([]byte, 6<<20)
	copy(want, pattern(1, 1<<20))
	copy(want[2<<20:], pattern(2, 1<<20))
	for _, c := range []struct {
		name string
		edit func(b []byte)
		note func(m *Image) string // "" when fine
	}{
		{"header 1 damaged", func(b []byte) { b[header1At+100]++ }, func(m *Image) string {
			return want1(m.headerNote, "header 2 (header 1: header at byte 65536: checksum")
		}},
		{"header 2 newer", func(b []byte) { le.PutUint64(b[header2At+8:], 5); fixHeader(b, header2At) }, func(m *Image) string {
			return want1(m.headerNote, "header 2 (higher sequence number)")
		}},
		{"region table 1 damaged", func(b []byte) { b[regionTable1At+100]++ }, func(m *Image) string {
			return want1(m.regionNote, "region table 2 (region table 1: region table at byte 196608: checksum")
		}},
		{"unknown optional region", func(b []byte) {
			editRegions(b, func(r []byte) {
				le.PutUint32(r[8:], 3)
				e := r[16+64:]
				e[0] = 0x77
				le.PutUint64(e[16:], 7<<20)
				le.PutUint32(e[24:], 1<<20)
			})
		}, nil},
		{"garbage in a dynamic disk's sector bitmap entry", nil, nil}, // below: needs a chunk's worth of blocks
		{"state 5 (UNMAPPED in the 0.95 draft), state 1 and 3", func(b []byte) { setBAT(b, 1, 5); setBAT(b, 3, 1|9<<20); setBAT(b, 5, 3) }, nil},
		{"unknown optional metadata item", func(b []byte) { metaEntry(b, 2)[0] ^= 0xff; le.PutUint32(metaEntry(b, 2)[24:], 0) }, nil},
		{"log GUID set, log empty", func(b []byte) { editHeaders(b, func(h []byte) { h[48] = 9 }) }, func(m *Image) string {
			return want1(m.rep.note, "log holds no valid sequence: nothing replayed")
		}},
	} {
		if c.edit == nil {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			b := hostileBase()
			c.edit(b)
			m := mustOpen(t, "x.vhdx", b, Options{})
			got := make([]byte, m.Size())
			if _, err := m.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if i := firstDiff(got, want); i >= 0 {
				t.Errorf("byte %d differs", i)
			}
			if c.note != nil {
				if msg := c.note(m); msg != "" {
					t.Error(msg)
				}
			}
		})
	}
	// A dynamic disk of 1 MiB blocks has its first sector bitmap entry
	// after 4096 payload entries: garbage there is ignored.
	sp := spec{size: 4097 << 20, blocks: map[int]specBlock{4096: {state: stateFullyPresent, data: pattern(3, 1<<20)}}}
	b := buildVHDX(sp)
	setBAT(b, 4096, 0xdeadbeef00000007)
	m := mustOpen(t, "bitmap-garbage.vhdx", b, Options{})
	got := make([]byte, 1<<20)
	if _, err := m.ReadAt(got, 4096<<20); err != nil || !bytes.Equal(got, pattern(3, 1<<20)) {
		t.Errorf("block 4096 after a garbage bitmap entry: %v", err)
	}
}

// want1 returns "" when got starts with prefix, else a message.
func want1(got, prefix string) string {
	if strings.HasPrefix(got, prefix) {
		return ""
	}
	return "note " + got + ", want " + prefix + "..."
}

// TestProbe: the signature decides; short and foreign files are not
// VHDX, without an error.
func TestProbe(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want bool
	}{{hostileBase(), true}, {[]byte("vhdxfile"), true}, {[]byte("vhdxfil"), false}, {[]byte("conectix........"), false}, {nil, false}} {
		if ok, err := Probe(disk.NewMemStorage("p", c.b)); ok != c.want || err != nil {
			t.Errorf("Probe(%q...) = %v, %v; want %v", c.b[:min(len(c.b), 8)], ok, err, c.want)
		}
	}
}

// TestEmptyAndClosed: a disk of size 0 opens and maps to nothing; reads
// after Close fail.
func TestEmptyAndClosed(t *testing.T) {
	m := mustOpen(t, "empty.vhdx", buildVHDX(spec{size: 0}), Options{})
	if m.Size() != 0 {
		t.Fatalf("Size %d", m.Size())
	}
	for e, err := range m.Extents(0, 1<<20) {
		t.Fatalf("extent %+v, %v of an empty disk", e, err)
	}
	m = mustOpen(t, "x.vhdx", hostileBase(), Options{})
	m.Close()
	if _, err := m.ReadAt(make([]byte, 512), 0); err == nil {
		t.Error("ReadAt after Close succeeded")
	}
}
