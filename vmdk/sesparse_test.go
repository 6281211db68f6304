package vmdk

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/diskport/diskport/disk"
)

// buildSESparse returns a seSparse extent of capacity sectors laid out as
// formats.md §2.6 describes: header, volatile header, grain directory,
// grain tables, grains. data maps 4 KiB grain index -> bytes; zero lists
// grains marked zero (type 2) and unmapped lists type 1 grains.
func buildSESparse(capacity uint64, data map[int64][]byte, zero, unmapped []int64) []byte {
	const grain = seGrainSecs * 512
	cover := uint64(seGTEs * seGrainSecs)
	gdEntries := (capacity + cover - 1) / cover
	gdSecs := (gdEntries*8 + 511) / 512
	const vol = 1
	gd := uint64(2)
	gts := gd + gdSecs
	gtSecs := gdEntries * seGTSecs
	grains := gts + gtSecs
	b := make([]byte, grains*512)
	h := b[:512]
	put := func(off int, v uint64) { le.PutUint64(h[off:], v) }
	put(0, seMagic)
	put(8, seVersion)
	put(16, capacity)
	put(24, seGrainSecs)
	put(32, seGTSecs)
	put(80, vol)
	put(88, 1)
	put(128, gd)
	put(136, gdSecs)
	put(144, gts)
	put(152, gtSecs)
	le.PutUint64(b[vol*512:], seVolatileMagic)
	setGTE := func(gi int64, v uint64) {
		t := uint64(gi) / seGTEs
		le.PutUint64(b[gd*512+8*t:], seGDIndexFlag<<32|t)
		le.PutUint64(b[(gts+t*seGTSecs)*512+8*(uint64(gi)%seGTEs):], v)
	}
	var n uint64
	for gi := int64(0); gi < int64(capacity/seGrainSecs)+1; gi++ {
		d, ok := data[gi]
		if !ok {
			continue
		}
		g := make([]byte, grain)
		copy(g, d)
		b = append(b, g...)
		// Cluster n stored the way qemu decodes it.
		setGTE(gi, 3<<60|(n&0xfff)<<48|n>>12)
		n++
	}
	for _, gi := range zero {
		setGTE(gi, 2<<60)
	}
	for _, gi := range unmapped {
		setGTE(gi, 1<<60)
	}
	le.PutUint64(b[192:], grains)
	le.PutUint64(b[200:], max(n, 1)*seGrainSecs)
	if n == 0 {
		b = append(b, make([]byte, grain)...)
	}
	return b
}

func TestSESparse(t *testing.T) {
	const capacity = 40000 // sectors: 2 grain tables
	data := map[int64][]byte{0: pattern(4096, 1), 1: pattern(4096, 2), 4095: pattern(100, 3), 4096: pattern(4096, 4), 4999: pattern(4096, 5)}
	b := buildSESparse(capacity, data, []int64{10, 4097}, []int64{11})
	parentData := map[int64][]byte{0: pattern(65536, 7), 4: pattern(65536, 8)} // 64 KiB grains
	pb, _ := buildSparse(sparseSpec{capacity: capacity, desc: embeddedDesc("monolithicSparse", capacity, 0xfeedf00d, noParentCID, ""), data: parentData})
	parent, err := openMem(pb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	desc := fmt.Sprintf("version=1\nCID=01020304\nparentCID=feedf00d\ncreateType=\"seSparse\"\nparentFileNameHint=\"base.vmdk\"\nRW %d SESPARSE \"d-sesparse.vmdk\"\n", capacity)
	img, err := openMem([]byte(desc), Options{OpenExtent: memOpener(map[string][]byte{"d-sesparse.vmdk": b}), Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, capacity*512)
	for gi, d := range parentData {
		copy(want[gi*65536:], d)
	}
	for _, gi := range []int64{10, 11, 4097} {
		clear(want[gi*4096 : (gi+1)*4096])
	}
	for gi, d := range data {
		g := make([]byte, 4096)
		copy(g, d)
		copy(want[gi*4096:], g)
	}
	check(t, img, bytes.NewReader(want))
	if img.Info().ClusterSize != 4096 {
		t.Fatalf("ClusterSize %d", img.Info().ClusterSize)
	}

	_, err = openMem(b, Options{})
	wantClass(t, err, disk.ErrUnsupported) // on its own

	for name, f := range map[string]func([]byte){
		"version":          func(b []byte) { le.PutUint64(b[8:], 1) },
		"grain-size":       func(b []byte) { le.PutUint64(b[24:], 16) },
		"flags":            func(b []byte) { le.PutUint64(b[40:], 1) },
		"padding":          func(b []byte) { b[300] = 1 },
		"volatile-magic":   func(b []byte) { b[512] = 0 },
		"dirty-journal":    func(b []byte) { le.PutUint64(b[512+24:], 1) },
		"gd-past-eof":      func(b []byte) { le.PutUint64(b[128:], 1<<40) },
		"gd-overlaps-gts":  func(b []byte) { le.PutUint64(b[136:], 100) },
		"gd-short":         func(b []byte) { le.PutUint64(b[136:], 0) },
		"gd-bad-entry":     func(b []byte) { le.PutUint64(b[2*512:], 0x20000000<<32) },
		"gd-index-too-big": func(b []byte) { le.PutUint64(b[2*512:], seGDIndexFlag<<32|99) },
		"gte-bad-type": func(b []byte) {
			le.PutUint64(b[le.Uint64(b[144:])*512:], 7<<60)
		},
		"gte-unallocated-junk": func(b []byte) {
			le.PutUint64(b[le.Uint64(b[144:])*512+8*100:], 5)
		},
		"grain-outside-region": func(b []byte) {
			le.PutUint64(b[le.Uint64(b[144:])*512:], 3<<60|1<<40)
		},
		"capacity-huge": func(b []byte) { le.PutUint64(b[16:], 1<<60) },
	} {
		t.Run(name, func(t *testing.T) {
			x := bytes.Clone(b)
			f(x)
			err := openAndRead([]byte(desc), Options{OpenExtent: memOpener(map[string][]byte{"d-sesparse.vmdk": x}), Parent: parent})
			wantClass(t, err, classOf(err))
		})
	}
}
