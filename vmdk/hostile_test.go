package vmdk

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/diskport/diskport/disk"
)

var le = binary.LittleEndian

// A small valid extent: 1 MiB, grains 0, 3 and 17 allocated.
func smallSpec(compressed bool) sparseSpec {
	return sparseSpec{
		capacity:   2048,
		compressed: compressed,
		desc:       embeddedDesc("monolithicSparse", 2048, 0x1234abcd, noParentCID, ""),
		data:       map[int64][]byte{0: pattern(65536, 1), 3: pattern(65536, 2), 15: bytes.Repeat([]byte("text"), 16384)},
	}
}

func TestBuiltImages(t *testing.T) {
	for _, compressed := range []bool{false, true} {
		s := smallSpec(compressed)
		b, _ := buildSparse(s)
		img, err := openMem(b, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, s.capacity*512)
		for gi, d := range s.data {
			copy(want[gi*65536:], d)
		}
		check(t, img, bytes.NewReader(want))
		if img.CID() != 0x1234abcd {
			t.Fatalf("CID %08x", img.CID())
		}
		if compressed {
			checkWalk(t, img, b)
			// The same stream in VMware's layout, footer at the end.
			at := toStreamAtEnd(b, mustLayout(s), s)
			img, err := openMem(at, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !img.exts[0].sp.footer {
				t.Fatal("footer not used")
			}
			check(t, img, bytes.NewReader(want))
			checkWalk(t, img, at)
		}
	}
}

func mustLayout(s sparseSpec) sparseLayout { _, L := buildSparse(s); return L }

// corrupt builds the small extent, applies f, and returns the error of
// opening it and reading all of it.
func corrupt(t *testing.T, compressed bool, f func(b []byte, L sparseLayout) []byte) error {
	t.Helper()
	b, L := buildSparse(smallSpec(compressed))
	b = f(b, L)
	return openAndRead(b, Options{})
}

// openAndRead opens b and reads its extent map and every byte.
func openAndRead(b []byte, opts Options) error {
	img, err := openMem(b, opts)
	if err != nil {
		return err
	}
	defer img.Close()
	for _, err := range img.Extents(0, img.Size()) {
		if err != nil {
			return err
		}
	}
	_, err = io.Copy(io.Discard, io.NewSectionReader(img, 0, img.Size()))
	return err
}

func TestHostileHeaders(t *testing.T) {
	for _, c := range []struct {
		name  string
		class error
		f     func(b []byte, L sparseLayout) []byte
	}{
		{"crlf-mangled", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { copy(b[73:], "\n \n\n"); return b }},
		{"version-4", disk.ErrUnsupported, func(b []byte, L sparseLayout) []byte { le.PutUint32(b[4:], 4); return b }},
		{"unknown-incompat-flag", disk.ErrUnsupported, func(b []byte, L sparseLayout) []byte { le.PutUint32(b[8:], le.Uint32(b[8:])|1<<20); return b }},
		{"grain-not-power-of-2", disk.ErrUnsupported, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[20:], 96); return b }},
		{"grain-zero", disk.ErrUnsupported, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[20:], 0); return b }},
		{"gtes-zero", disk.ErrUnsupported, func(b []byte, L sparseLayout) []byte { le.PutUint32(b[44:], 0); return b }},
		{"capacity-zero", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte {
			le.PutUint64(b[12:], 0)
			le.PutUint64(b[28:], 0)
			le.PutUint64(b[36:], 0)
			return b
		}},
		{"capacity-zero-with-descriptor", disk.ErrUnsafe, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[12:], 0); return b }},
		{"capacity-2^32+1", disk.ErrTooLarge, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[12:], 1<<32+1); return b }},
		{"capacity-huge", disk.ErrTooLarge, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[12:], 1<<62); return b }},
		{"descriptor-past-eof", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[36:], 1<<40); return b }},
		{"descriptor-size-overflow", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[36:], ^uint64(0)); return b }},
		{"descriptor-without-size", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[36:], 0); return b }},
		{"overhead-past-eof", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[64:], 1<<40); return b }},
		{"overhead-zero", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[64:], 0); return b }},
		{"gd-past-eof", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[56:], uint64(len(b)/512)); return b }},
		{"gd-offset-huge", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[56:], 1<<63); return b }},
		{"gd-on-header", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[56:], 0); return b }},
		{"gd-in-descriptor", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[56:], 5); return b }},
		{"gd-in-grains", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[56:], L.overHead); return b }},
		{"gt-on-gd", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint32(b[L.gd*512:], uint32(L.gd)); return b }},
		{"gt-on-descriptor", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte {
			le.PutUint32(b[L.gd*512:], 1)
			return b
		}},
		{"gt-past-eof", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint32(b[L.gd*512:], ^uint32(0)); return b }},
		{"gt-in-grains", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint32(b[L.gd*512:], uint32(L.overHead)); return b }},
		{"rgd-overlaps-gd", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte {
			le.PutUint32(b[8:], le.Uint32(b[8:])|flagRedundantGD)
			le.PutUint64(b[48:], L.gd)
			return b
		}},
		{"rgd-past-eof", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte {
			le.PutUint32(b[8:], le.Uint32(b[8:])|flagRedundantGD)
			le.PutUint64(b[48:], ^uint64(0)-1)
			return b
		}},
		{"grain-in-header", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte {
			le.PutUint32(b[L.gts[0]*512:], 0)
			le.PutUint32(b[L.gts[0]*512+4:], 2)
			return b
		}},
		{"grain-in-gt", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint32(b[L.gts[0]*512:], uint32(L.gts[0])); return b }},
		{"zeroed-gte-without-flag", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint32(b[L.gts[0]*512:], 1); return b }},
		{"grain-past-eof", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte {
			le.PutUint32(b[L.gts[0]*512+12:], uint32(len(b)/512)-1)
			return b
		}},
		{"truncated-in-grain", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { return b[:len(b)-1000] }},
		{"truncated-to-header", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { return b[:512] }},
		{"truncated-in-header", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { return b[:300] }},
		{"gt-duplicate", disk.ErrCorrupt, func([]byte, sparseLayout) []byte {
			b, L := buildSparse(sparseSpec{capacity: 2 * 512 * 128, data: map[int64][]byte{0: {1}, 600: {2}}})
			le.PutUint32(b[L.gd*512+4:], uint32(L.gts[0]))
			return b
		}},
		{"gt-overlapping", disk.ErrCorrupt, func([]byte, sparseLayout) []byte {
			b, L := buildSparse(sparseSpec{capacity: 2 * 512 * 128, data: map[int64][]byte{0: {1}, 600: {2}}})
			le.PutUint32(b[L.gd*512+4:], uint32(L.gts[0])+2)
			return b
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantClass(t, corrupt(t, false, c.f), c.class)
		})
	}
}

func TestHostileCompressedGrains(t *testing.T) {
	_, L0 := buildSparse(smallSpec(true))
	g0 := L0.grains[0] * 512 // marker of grain 0
	bomb := func() []byte {
		var z bytes.Buffer
		w := zlib.NewWriter(&z)
		w.Write(make([]byte, 4<<20)) // 4 MiB of zeros into a 64 KiB grain
		w.Close()
		return z.Bytes()
	}()
	withData := func(b []byte, data []byte) []byte {
		// Replace grain 0's compressed bytes (appending them at the end
		// of the file so that the size fits).
		off := uint64(len(b))
		m := make([]byte, 12)
		le.PutUint64(m, 0)
		le.PutUint32(m[8:], uint32(len(data)))
		b = append(b, m...)
		b = append(b, data...)
		b = append(b, make([]byte, (512-len(b)%512)%512)...)
		le.PutUint32(b[L0.gts[0]*512:], uint32(off/512))
		return b
	}
	zl := func(p []byte) []byte {
		var z bytes.Buffer
		w := zlib.NewWriter(&z)
		w.Write(p)
		w.Close()
		return z.Bytes()
	}
	for _, c := range []struct {
		name  string
		class error
		f     func(b []byte, L sparseLayout) []byte
	}{
		{"lba-mismatch", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint64(b[g0:], 128); return b }},
		{"size-zero", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint32(b[g0+8:], 0); return b }},
		{"size-over-2-grains", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { le.PutUint32(b[g0+8:], 2*65536+1); return b }},
		{"size-past-eof", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte {
			le.PutUint32(b[L.gts[0]*512:], uint32(len(b)/512-1))
			le.PutUint64(b[len(b)-512:], 0)
			le.PutUint32(b[len(b)-512+8:], 60000)
			return b
		}},
		{"zlib-bomb", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { return withData(b, bomb) }},
		{"short-grain", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte { return withData(b, zl(make([]byte, 1000))) }},
		{"trailing-bytes", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte {
			return withData(b, append(zl(make([]byte, 65536)), 1, 2, 3))
		}},
		{"truncated-zlib", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte {
			z := zl(pattern(65536, 9))
			return withData(b, z[:len(z)-10])
		}},
		{"bad-adler", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte {
			z := zl(pattern(65536, 9))
			z[len(z)-1] ^= 1
			return withData(b, z)
		}},
		{"raw-deflate-not-zlib", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte {
			z := zl(pattern(65536, 9))
			return withData(b, z[2:])
		}},
		{"grain-overlaps-gd", disk.ErrCorrupt, func(b []byte, L sparseLayout) []byte {
			// A marker just before the metadata it would spill into is
			// impossible in this layout; point the header's overHead down
			// instead, so the grain table can point at the GD.
			le.PutUint64(b[64:], L.gd)
			le.PutUint32(b[L.gts[0]*512:], uint32(L.gd))
			return b
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			wantClass(t, corrupt(t, true, c.f), c.class)
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
}

func TestHostileFooter(t *testing.T) {
	s := smallSpec(true)
	b, L := buildSparse(s)
	at := toStreamAtEnd(b, L, s)
	n := len(at)
	for _, c := range []struct {
		name string
		f    func(b []byte)
	}{
		{"no-eos", func(b []byte) { le.PutUint32(b[n-512+12:], markerGT) }},
		{"footer-marker-type", func(b []byte) { le.PutUint32(b[n-1536+12:], markerGD) }},
		{"footer-magic", func(b []byte) { b[n-1024] = 'X' }},
		{"footer-gd-at-end-again", func(b []byte) { le.PutUint64(b[n-1024+56:], gdAtEnd) }},
		{"footer-version", func(b []byte) { le.PutUint32(b[n-1024+4:], 1) }},
		{"footer-descriptor", func(b []byte) { le.PutUint64(b[n-1024+28:], 2) }},
		{"footer-capacity", func(b []byte) { le.PutUint64(b[n-1024+12:], 4096) }},
		{"footer-gd-past-eof", func(b []byte) { le.PutUint64(b[n-1024+56:], uint64(n/512)) }},
		{"footer-gd-on-footer", func(b []byte) { le.PutUint64(b[n-1024+56:], uint64(n/512-2)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := bytes.Clone(at)
			c.f(x)
			wantClass(t, openAndRead(x, Options{}), disk.ErrCorrupt)
		})
	}
	t.Run("truncated", func(t *testing.T) {
		for cut := 4; cut < len(at); cut += 509 {
			if err := openAndRead(at[:cut], Options{}); !errors.Is(err, disk.ErrCorrupt) {
				t.Fatalf("open cut at %d: %v", cut, err)
			}
			err := WalkStream(bytes.NewReader(at[:cut]), func(int64, []byte) error { return nil })
			if !errors.Is(err, disk.ErrCorrupt) {
				t.Fatalf("walk cut at %d: %v", cut, err)
			}
		}
		for cut := 1; cut < len(b); cut += 509 {
			// The front-loaded stream: the walk knows how many grains the
			// tables list.
			err := WalkStream(bytes.NewReader(b[:cut]), func(int64, []byte) error { return nil })
			if !errors.Is(err, disk.ErrCorrupt) {
				t.Fatalf("walk cut at %d: %v", cut, err)
			}
		}
	})
}

func TestHostileWalk(t *testing.T) {
	s := smallSpec(true)
	b, L := buildSparse(s)
	at := toStreamAtEnd(b, L, s)
	walk := func(x []byte) error {
		return WalkStream(bytes.NewReader(x), func(int64, []byte) error { return nil })
	}
	g3 := L.grains[3] * 512
	for _, c := range []struct {
		name string
		f    func(b []byte) []byte
	}{
		{"lba-backwards", func(x []byte) []byte { le.PutUint64(x[g3:], 0); return x }},
		{"lba-unaligned", func(x []byte) []byte { le.PutUint64(x[g3:], 3*128+1); return x }},
		{"lba-past-capacity", func(x []byte) []byte { le.PutUint64(x[g3:], 1<<40); return x }},
		{"size-huge", func(x []byte) []byte { le.PutUint32(x[g3+8:], ^uint32(0)); return x }},
		{"metadata-huge", func(x []byte) []byte {
			// A progress marker claiming 2^60 sectors must end at EOF, not
			// loop or allocate.
			m := make([]byte, 512)
			le.PutUint64(m, 1<<60)
			le.PutUint32(m[12:], markerProgress)
			return append(x[:g3:g3], append(m, x[g3:]...)...)
		}},
		{"unknown-marker", func(x []byte) []byte {
			m := make([]byte, 512)
			le.PutUint32(m[12:], 99)
			return append(x[:g3:g3], append(m, x[g3:]...)...)
		}},
		{"eos-with-sectors", func(x []byte) []byte { le.PutUint64(x[len(x)-512:], 5); return x }},
		{"gt-missing", func(x []byte) []byte {
			// The first GT marker becomes a progress marker: the grains no
			// longer match the tables.
			for off := len(x) - 512; off > 0; off -= 512 {
				if le.Uint32(x[off+8:]) == 0 && le.Uint32(x[off+12:]) == markerGT {
					le.PutUint32(x[off+12:], markerProgress)
					break
				}
			}
			return x
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			wantClass(t, walk(c.f(bytes.Clone(at))), disk.ErrCorrupt)
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	t.Run("not-a-stream", func(t *testing.T) {
		plain, _ := buildSparse(smallSpec(false))
		wantClass(t, walk(plain), disk.ErrUnsupported)
		wantClass(t, walk([]byte("hello")), disk.ErrCorrupt)
		wantClass(t, walk(make([]byte, 512)), disk.ErrFormatMismatch)
	})
	t.Run("callback-error", func(t *testing.T) {
		stop := errors.New("stop")
		if err := WalkStream(bytes.NewReader(at), func(int64, []byte) error { return stop }); err != stop {
			t.Fatalf("WalkStream: %v, want the callback's error", err)
		}
	})
}

// Descriptors: path escapes, refused types, parents, extent lines.
func TestHostileDescriptors(t *testing.T) {
	flat := make([]byte, 1<<20)
	copy(flat, "flat data")
	sp, _ := buildSparse(smallSpec(false)) // 2048 sectors
	disguised := bytes.Clone(sp)
	le.PutUint64(disguised[12:], 0) // capacity 0 with an embedded descriptor
	files := map[string][]byte{"f.vmdk": flat, "s.vmdk": sp, "d.vmdk": disguised}
	desc := func(createType, extents string, extra ...string) []byte {
		s := "# Disk DescriptorFile\nversion=1\nCID=aabbccdd\nparentCID=ffffffff\ncreateType=\"" + createType + "\"\n" + strings.Join(extra, "\n") + "\n# Extent description\n" + extents + "\n"
		return []byte(s)
	}
	called := false
	opener := func(name string) (disk.Storage, error) {
		called = true
		return memOpener(files)(name)
	}
	for _, c := range []struct {
		name  string
		b     []byte
		class error
	}{
		{"dotdot", desc("monolithicFlat", `RW 2048 FLAT "../f.vmdk" 0`), disk.ErrUnsafe},
		{"dotdot-bare", desc("monolithicFlat", `RW 2048 FLAT ".." 0`), disk.ErrUnsafe},
		{"absolute", desc("monolithicFlat", `RW 2048 FLAT "/etc/passwd" 0`), disk.ErrUnsafe},
		{"subdir", desc("monolithicFlat", `RW 2048 FLAT "a/f.vmdk" 0`), disk.ErrUnsafe},
		{"backslash", desc("monolithicFlat", `RW 2048 FLAT "..\f.vmdk" 0`), disk.ErrUnsafe},
		{"drive", desc("monolithicFlat", `RW 2048 FLAT "C:f.vmdk" 0`), disk.ErrUnsafe},
		{"device", desc("monolithicFlat", `RW 2048 FLAT "\\.\PhysicalDrive0" 0`), disk.ErrUnsafe},
		{"empty-name", desc("monolithicFlat", `RW 2048 FLAT "" 0`), disk.ErrUnsafe},
		{"nul", append(desc("monolithicFlat", "RW 2048 FLAT \"f.vmdk\x00x\" 0"), 'x'), disk.ErrCorrupt},
		{"fullDevice", desc("fullDevice", `RW 2048 FLAT "f.vmdk" 0`), disk.ErrUnsafe},
		{"partitionedDevice", desc("partitionedDevice", `RW 2048 FLAT "f.vmdk" 0`), disk.ErrUnsafe},
		{"custom", desc("custom", `RW 2048 FLAT "f.vmdk" 0`), disk.ErrUnsafe},
		{"vmfsRawDeviceMap", desc("vmfsRawDeviceMap", `RW 2048 VMFSRDM "f.vmdk"`), disk.ErrUnsafe},
		{"rdm-extent", desc("vmfs", `RW 2048 VMFSRDM "f.vmdk"`), disk.ErrUnsafe},
		{"seSparse-not-sesparse", desc("seSparse", `RW 2048 SESPARSE "f.vmdk"`), disk.ErrFormatMismatch},
		{"unknown-type", desc("futureType", `RW 2048 FLAT "f.vmdk" 0`), disk.ErrUnsupported},
		{"no-createType", desc("", `RW 2048 FLAT "f.vmdk" 0`), disk.ErrCorrupt},
		{"unknown-extent-type", desc("monolithicFlat", `RW 2048 FUTURE "f.vmdk" 0`), disk.ErrUnsupported},
		{"device-fields", desc("monolithicFlat", `RW 2048 FLAT "f.vmdk" 0 uuid dev`), disk.ErrUnsupported},
		{"flat-without-offset", desc("monolithicFlat", `RW 2048 FLAT "f.vmdk"`), disk.ErrCorrupt},
		{"flat-past-eof", desc("monolithicFlat", `RW 4096 FLAT "f.vmdk" 0`), disk.ErrCorrupt},
		{"flat-offset-past-eof", desc("monolithicFlat", `RW 2048 FLAT "f.vmdk" 1`), disk.ErrCorrupt},
		{"flat-offset-overflow", desc("monolithicFlat", `RW 2048 FLAT "f.vmdk" 9223372036854775807`), disk.ErrCorrupt},
		{"sectors-overflow", desc("monolithicFlat", "RW 9223372036854775807 FLAT \"f.vmdk\" 0\nRW 9223372036854775807 FLAT \"f.vmdk\" 0"), disk.ErrTooLarge},
		{"too-large", desc("twoGbMaxExtentFlat", strings.Repeat("RW 4294967296 ZERO\n", 40)), disk.ErrTooLarge},
		{"noaccess-file", desc("monolithicFlat", `NOACCESS 2048 FLAT "f.vmdk" 0`), disk.ErrUnsupported},
		{"no-extents", desc("monolithicFlat", ""), disk.ErrCorrupt},
		{"garbage-line", desc("monolithicFlat", `RW 2048 FLAT "f.vmdk" 0`, "this is not a descriptor line"), disk.ErrCorrupt},
		{"unterminated-name", desc("monolithicFlat", `RW 2048 FLAT "f.vmdk 0`), disk.ErrCorrupt},
		{"bad-cid", []byte("version=1\nCID=xyz\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"f.vmdk\" 0\n"), disk.ErrCorrupt},
		{"duplicate-key", desc("monolithicFlat", `RW 2048 FLAT "f.vmdk" 0`, "CID=12345678"), disk.ErrCorrupt},
		{"version-4", []byte("version=4\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"f.vmdk\" 0\n"), disk.ErrFormatMismatch},
		{"encrypted", desc("monolithicFlat", `RW 2048 FLAT "f.vmdk" 0`, `encryptionKeys="vmware:key/list/(pair/(null/..."`), disk.ErrUnsupported},
		{"parent", desc("monolithicFlat", `RW 2048 FLAT "f.vmdk" 0`, `parentFileNameHint="/etc/base.vmdk"`), disk.ErrUnsafe},
		{"sparse-extent-not-kdmv", desc("twoGbMaxExtentSparse", `RW 2048 SPARSE "f.vmdk"`), disk.ErrFormatMismatch},
		{"sparse-extent-shorter-than-line", desc("twoGbMaxExtentSparse", `RW 4096 SPARSE "s.vmdk"`), disk.ErrCorrupt},
		{"sparse-extent-disguised-descriptor", desc("twoGbMaxExtentSparse", `RW 2048 SPARSE "d.vmdk"`), disk.ErrUnsafe},
		{"sparse-and-cowd-same-file", desc("vmfsSparse", "RW 2048 SPARSE \"s.vmdk\"\nRW 2048 VMFSSPARSE \"s.vmdk\""), disk.ErrCorrupt},
	} {
		t.Run(c.name, func(t *testing.T) {
			called = false
			_, err := openMem(c.b, Options{OpenExtent: opener})
			wantClass(t, err, c.class)
			if c.class == disk.ErrUnsafe && called && c.name != "parent" && !strings.HasPrefix(c.name, "sparse-") {
				t.Fatal("OpenExtent was called")
			}
		})
	}
	t.Run("same-file-opened-once", func(t *testing.T) {
		opens := 0
		count := func(name string) (disk.Storage, error) { opens++; return memOpener(files)(name) }
		img, err := openMem(desc("monolithicFlat", strings.Repeat("RW 2048 FLAT \"f.vmdk\" 0\n", 5000)), Options{OpenExtent: count})
		if err != nil {
			t.Fatal(err)
		}
		if opens != 1 || img.Size() != 5000<<20 {
			t.Fatalf("%d opens, size %d", opens, img.Size())
		}
	})
	t.Run("huge-descriptor", func(t *testing.T) {
		b := append(desc("monolithicFlat", `RW 2048 FLAT "f.vmdk" 0`), bytes.Repeat([]byte("# padding\n"), 1<<17)...)
		_, err := openMem(b, Options{OpenExtent: opener})
		wantClass(t, err, disk.ErrTooLarge)
		_, err = openMem(make([]byte, 2<<20), Options{OpenExtent: opener})
		wantClass(t, err, disk.ErrFormatMismatch)
		lines := append([]byte("version=1\n"), bytes.Repeat([]byte("#\n"), 50000)...)
		_, err = parseDescriptor(lines, false)
		wantClass(t, err, disk.ErrTooLarge)
	})
	t.Run("sesparse-file", func(t *testing.T) {
		b := make([]byte, 4096)
		le.PutUint64(b, 0xCAFEBABE)
		le.PutUint64(b[8:], 0x0000000200000001)
		_, err := openMem(b, Options{})
		wantClass(t, err, disk.ErrUnsupported)
	})
	t.Run("no-resolver", func(t *testing.T) {
		_, err := openMem(desc("monolithicFlat", `RW 2048 FLAT "f.vmdk" 0`), Options{})
		wantClass(t, err, disk.ErrUnsafe)
	})
	t.Run("parent-hint-named", func(t *testing.T) {
		_, err := openMem(desc("monolithicFlat", `RW 2048 FLAT "f.vmdk" 0`, `parentFileNameHint="base.vmdk"`), Options{OpenExtent: opener})
		if err == nil || !strings.Contains(err.Error(), "base.vmdk") {
			t.Fatalf("error %v does not name the parent", err)
		}
	})
	t.Run("valid-mixed", func(t *testing.T) {
		// RDONLY and ZERO extents count (qemu drops them), CRLF lines,
		// trailing spaces and a NOACCESS ZERO extent.
		b := desc("monolithicFlat", "RW 1024 FLAT \"f.vmdk\" 1024\r\nRDONLY 2048 FLAT \"f.vmdk\" 0 \r\nRW 100 ZERO\nNOACCESS 28 ZERO\nRW 0 ZERO")
		img, err := openMem(b, Options{OpenExtent: memOpener(files)})
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, (1024+2048+128)*512)
		copy(want, flat[512*1024:])
		copy(want[1024*512:], flat)
		if img.Size() != int64(len(want)) {
			t.Fatalf("Size %d, want %d", img.Size(), len(want))
		}
		check(t, img, bytes.NewReader(want))
		exts := 0
		for e, err := range img.Extents(0, img.Size()) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind == disk.Data && e.Stored == nil {
				t.Fatalf("flat extent %+v without storage", e)
			}
			exts++
		}
		if exts != 3 {
			t.Fatalf("%d extents, want 3 (two flat, one zero)", exts)
		}
		info := img.Info()
		list, _ := info.Specific["extents"].([]map[string]any)
		if info.Subformat != "monolithicFlat" || info.FileSize != int64(len(b))+1<<20 || len(list) != 4 ||
			list[1]["access"] != "RDONLY" || list[1]["file"] != "f.vmdk" || list[0]["offset"] != int64(1024) || list[2]["type"] != "ZERO" ||
			info.Specific["cid"] != "aabbccdd" || info.Specific["parent_cid"] != "ffffffff" {
			t.Fatalf("Info() = %+v", info)
		}
	})
	t.Run("probe", func(t *testing.T) {
		for _, c := range []struct {
			b    string
			want bool
		}{
			{"# Disk DescriptorFile\nversion=1\n", true},
			{"#c\r\n   \r\nversion=3\r\n", true},
			{"version=4\n", false},
			{"version=1", false},
			{"KDMV", true},
			{"COWD", true},
			{"hello\nversion=1\n", false},
			{"", false},
		} {
			if got, err := Probe(disk.NewMemStorage("p", []byte(c.b))); got != c.want || err != nil {
				t.Errorf("Probe(%q) = %v, %v", c.b, got, err)
			}
		}
	})
}

// The grain holding the end of the disk may inflate short, stopping
// inside the last sector the disk needs (VMDKstream's unpadded tail); any
// other short grain is corrupt.
func TestShortLastGrain(t *testing.T) {
	const capacity = 356      // sectors: 2 grains and 51200 bytes
	tail := pattern(50880, 4) // the last 320 bytes of the disk are missing
	for _, c := range []struct {
		name string
		last []byte
		ok   bool
	}{
		{"inside-last-sector", tail, true},
		{"full-grain", append(bytes.Clone(tail), make([]byte, 65536-len(tail))...), true},
		{"exact-capacity", append(bytes.Clone(tail), make([]byte, 320)...), true},
		{"short-of-last-sector", tail[:50688], false},
		{"longer-than-capacity-not-grain", append(bytes.Clone(tail), make([]byte, 1000)...), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := sparseSpec{capacity: capacity, compressed: true, data: map[int64][]byte{0: pattern(65536, 1), 2: c.last}}
			b, L := buildSparse(s)
			for _, x := range [][]byte{b, toStreamAtEnd(b, L, s)} {
				img, err := openMem(x, Options{})
				if err != nil {
					t.Fatal(err)
				}
				got := make([]byte, 51200)
				_, rerr := img.ReadAt(got, 2*65536)
				werr := WalkStream(bytes.NewReader(x), func(int64, []byte) error { return nil })
				if !c.ok {
					wantClass(t, rerr, disk.ErrCorrupt)
					wantClass(t, werr, disk.ErrCorrupt)
					continue
				}
				if rerr != nil && rerr != io.EOF || werr != nil {
					t.Fatalf("ReadAt: %v, WalkStream: %v", rerr, werr)
				}
				want := make([]byte, 51200)
				copy(want, c.last)
				if !bytes.Equal(got, want) {
					t.Fatal("last grain's bytes differ")
				}
				check(t, img, nil)
			}
		})
	}
}

func TestMaxVirtualSize(t *testing.T) {
	b, _ := buildSparse(smallSpec(false)) // 1 MiB
	_, err := openMem(b, Options{MaxVirtualSize: 1<<20 - 512})
	wantClass(t, err, disk.ErrTooLarge)
	if _, err := openMem(b, Options{MaxVirtualSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
}

// Progress markers (VMware's type 4, "sporadic" in vSphere streams) are
// skipped by the walk.
func TestWalkProgressMarkers(t *testing.T) {
	s := smallSpec(true)
	b, L := buildSparse(s)
	at := toStreamAtEnd(b, L, s)
	g3 := L.grains[3] * 512
	m := make([]byte, 3*512)
	le.PutUint64(m, 2) // two sectors of progress data follow
	le.PutUint32(m[12:], markerProgress)
	x := append(append(bytes.Clone(at[:g3]), m...), at[g3:]...)
	var offs []int64
	err := WalkStream(bytes.NewReader(x), func(off int64, grain []byte) error {
		offs = append(offs, off)
		return nil
	})
	if err != nil || len(offs) != 3 || offs[1] != 3*65536 {
		t.Fatalf("WalkStream: %v, grains at %v", err, offs)
	}
}
