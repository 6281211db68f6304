package vmdk

import (
	"bytes"
	"sync"
	"testing"

	"github.com/diskport/diskport/disk"
)

// A patchBase is a valid extent FuzzPatch damages: its bytes, the
// offsets its structures start at (where patches land), and the
// descriptor that opens it when it cannot be opened on its own.
type patchBase struct {
	name    string
	b       []byte
	targets []int64
	desc    []byte // nil: open b itself
}

// tinySpec is a small sparse extent with several grain tables: 2 MiB of
// 4 KiB grains, 128 to a table (4 tables), grains in three of them.
func tinySpec(compressed bool) sparseSpec {
	return sparseSpec{
		capacity: 4096, grain: 8, gtes: 128, compressed: compressed, align: 8,
		desc: embeddedDesc("monolithicSparse", 4096, 0x1234abcd, noParentCID, ""),
		data: map[int64][]byte{0: pattern(4096, 1), 3: pattern(4096, 2), 200: bytes.Repeat([]byte("text"), 1024), 511: pattern(4096, 3)},
	}
}

// sparseTargets lists where a buildSparse extent's structures are: the
// header, descriptor, grain directory, each grain table and each grain.
func sparseTargets(L sparseLayout) []int64 {
	t := []int64{0, 512, int64(L.gd) * 512}
	for _, gt := range L.gts {
		if gt != 0 {
			t = append(t, int64(gt)*512)
		}
	}
	for gi := range int64(512) {
		if sec, ok := L.grains[gi]; ok {
			t = append(t, int64(sec)*512)
		}
	}
	return t
}

// patchBases are FuzzPatch's valid extents: hosted sparse (version 1 and
// version 2 with zeroed grain table entries), streamOptimized with the
// grain directory in front and at the end (footer, end-of-stream marker),
// seSparse behind a descriptor, and COWD.
var patchBases = sync.OnceValue(func() []patchBase {
	plain, pl := buildSparse(tinySpec(false))
	zs := tinySpec(false)
	zs.version, zs.flags, zs.zeroed = 2, flagZeroedGTE, []int64{5, 6, 300}
	zeroed, zl := buildSparse(zs)
	ss := tinySpec(true)
	stream, sl := buildSparse(ss)
	atEnd := toStreamAtEnd(stream, sl, ss)
	n := int64(len(atEnd))
	se := buildSESparse(40000, map[int64][]byte{0: pattern(4096, 1), 4096: pattern(4096, 4), 4999: pattern(100, 5)}, []int64{10}, []int64{11})
	seGD := int64(le.Uint64(se[128:])) * 512
	seGT := int64(le.Uint64(se[144:])) * 512
	seGrains := int64(le.Uint64(se[192:])) * 512
	cowd := buildCOWD(10000, 1, map[int64][]byte{0: {1}, 4096: {2}, 9999: {3}})
	return []patchBase{
		{"sparse", plain, sparseTargets(pl), nil},
		{"zeroed", zeroed, sparseTargets(zl), nil},
		{"stream", stream, sparseTargets(sl), nil},
		{"stream-at-end", atEnd, append(sparseTargets(sl), n-2048, n-1536, n-1024, n-512), nil},
		{"sesparse", se, []int64{0, 512, seGD, seGT, seGT + 64*512, seGrains},
			[]byte("version=1\nCID=01020304\nparentCID=ffffffff\ncreateType=\"seSparse\"\nRW 40000 SESPARSE \"e.vmdk\"\n")},
		{"cowd", cowd, []int64{0, 4 * 512, 5 * 512, 5*512 + 32*512, int64(len(cowd)) - 3*512}, nil},
	}
})

// FuzzPatch damages valid extents of every kind with small patches at
// their structures (header, descriptor, grain directory and tables,
// grains, stream markers, footer) and checks what opens as FuzzOpen does:
// the input stays a few bytes while the extents are tens of kilobytes.
// Input: a base selector, then patches of [target, offset (2 bytes, little
// endian), length, bytes].
func FuzzPatch(f *testing.F) {
	for i := range patchBases() {
		f.Add([]byte{byte(i)})
	}
	f.Add([]byte{0, 0, 12, 0, 8, 0, 0, 0, 0, 0, 0, 0x10, 0})         // capacity 1 TiB
	f.Add([]byte{0, 0, 20, 0, 8, 0, 0, 1, 0, 0, 0, 0, 0})            // grain 256 sectors
	f.Add([]byte{0, 0, 44, 0, 4, 1, 0, 0, 0})                        // 1 entry per grain table
	f.Add([]byte{0, 2, 0, 0, 4, 0xff, 0xff, 0xff, 0xff})             // grain directory entry past the end
	f.Add([]byte{0, 3, 4, 0, 4, 0, 0, 0, 0})                         // grain 1 of table 0... (entry 1)
	f.Add([]byte{1, 3, 20, 0, 4, 1, 0, 0, 0})                        // a zeroed entry (version 2)
	f.Add([]byte{2, 4, 8, 0, 4, 0xff, 0xff, 0, 0})                   // compressed grain of 65535 bytes
	f.Add([]byte{3, 9, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}) // footer marker size
	f.Add([]byte{4, 2, 0, 0, 8, 5, 0, 0, 0, 0, 0, 0, 0x10})          // seSparse grain directory entry
	f.Add([]byte{4, 3, 0, 0, 8, 1, 0, 0, 0, 0, 0, 0, 0x30})          // seSparse grain past its region
	f.Add([]byte{5, 1, 0, 0, 4, 0, 0, 0, 1})                         // COWD grain directory
	files := fuzzFiles()
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 || len(in) > 512 {
			return
		}
		bases := patchBases()
		base := bases[int(in[0])%len(bases)]
		b := bytes.Clone(base.b)
		for p := in[1:]; len(p) >= 4; {
			tgt, off, n := base.targets[int(p[0])%len(base.targets)], int64(le.Uint16(p[1:])), int(p[3])
			p = p[4:]
			n = min(n, len(p))
			if at := tgt + off; at < int64(len(b)) {
				copy(b[at:], p[:n])
			}
			p = p[n:]
		}
		opts := Options{OpenExtent: memOpener(files)}
		s := disk.NewMemStorage("fuzz.vmdk", b)
		if base.desc != nil {
			ext := map[string][]byte{"e.vmdk": b}
			opts.OpenExtent = memOpener(ext)
			s = disk.NewMemStorage("fuzz.vmdk", base.desc)
		}
		img, err := Open(s, opts)
		if err != nil {
			checkOpenError(t, err)
			return
		}
		checkImage(t, img)
	})
}

// TestPatchBases checks FuzzPatch starts from extents that open and read
// (their first 4 MiB), so its patches damage valid structures.
func TestPatchBases(t *testing.T) {
	for _, base := range patchBases() {
		s := disk.NewMemStorage("base.vmdk", base.b)
		opts := Options{}
		if base.desc != nil {
			s, opts.OpenExtent = disk.NewMemStorage("base.vmdk", base.desc), memOpener(map[string][]byte{"e.vmdk": base.b})
		}
		img, err := Open(s, opts)
		if err != nil {
			t.Fatalf("%s: %v", base.name, err)
		}
		buf := make([]byte, min(img.Size(), 4<<20))
		if _, err := img.ReadAt(buf, 0); err != nil {
			t.Fatalf("%s: %v", base.name, err)
		}
		img.Close()
		for _, at := range base.targets {
			if at < 0 || at >= int64(len(base.b)) {
				t.Fatalf("%s: target %d outside its %d bytes", base.name, at, len(base.b))
			}
		}
	}
}
