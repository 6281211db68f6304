package vhd

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"iter"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
)

// pattern returns n pseudo-random bytes from seed.
func pattern(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// bitmapOf returns a bitmap (MSB first) with the given sectors set.
func bitmapOf(nsec int, set func(i int) bool) []byte {
	b := make([]byte, (nsec+7)/8)
	for i := range nsec {
		if set(i) {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	return b
}

// expectDisk computes, sector by sector and independently of the reader,
// what a disk built from sp reads as: present sectors from the block,
// absent ones from below (the parent's expected bytes, zeros past them).
func expectDisk(sp spec, below []byte) []byte {
	size := int((sp.size + 511) / 512 * 512)
	out := make([]byte, size)
	if sp.diskType == TypeFixed {
		copy(out, sp.fixedData)
		return out
	}
	bs := int(sp.blockSize)
	for sec := 0; sec < size/512; sec++ {
		off := sec * 512
		b, in := off/bs, (off%bs)/512
		blk, ok := sp.blocks[b]
		present := ok && (blk.bitmap == nil || blk.bitmap[in/8]&(0x80>>(in%8)) != 0)
		switch {
		case present:
			copy(out[off:off+512], blk.data[in*512:])
		case sp.diskType == TypeDifferencing && off < len(below):
			copy(out[off:off+512], below[off:])
		}
	}
	return out
}

// A chain is a parent and a differencing child built in Go.
type chain struct {
	parentSpec, childSpec spec
	parent, child         []byte
}

// makeChain builds a dynamic parent of 5 blocks of 512 KiB (plus a bit)
// and a larger differencing child: blocks wholly present, partly present
// (absent sectors in the child hold garbage the reader must not return),
// absent, and a block past the parent's end.
func makeChain() chain {
	const bs = 512 << 10
	const nsec = bs / 512
	parentID := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	ps := spec{diskType: TypeDynamic, size: 4*bs + 3*512, blockSize: bs, uniqueID: parentID, creator: "win ",
		blocks: map[int]specBlock{
			0: {data: pattern(10, bs)},
			1: {data: pattern(11, bs), bitmap: bitmapOf(nsec, func(i int) bool { return i%7 != 3 })},
			3: {data: pattern(13, bs), bitmap: bitmapOf(nsec, func(i int) bool { return i >= 100 })},
			4: {data: pattern(14, 3*512)},
		}}
	cs := spec{diskType: TypeDifferencing, size: 6*bs - 1024, blockSize: bs, uniqueID: [16]byte{0xc0}, creator: "win ",
		parentID: parentID, parentName: `D:\vms\base.vhd`,
		locators: []specLocator{
			{platformW2ku, utf16le(`D:\vms\base.vhd`)},
			{platformW2ru, utf16le(`.\base.vhd`)},
		},
		blocks: map[int]specBlock{
			0: {data: pattern(20, bs), bitmap: bitmapOf(nsec, func(i int) bool { return i < 10 || i%31 == 0 })},
			1: {data: pattern(21, bs)},
			2: {data: pattern(22, bs), bitmap: make([]byte, nsec/8)}, // allocated, nothing present
			4: {data: pattern(24, bs), bitmap: bitmapOf(nsec, func(i int) bool { return i == 1 || i == 2 })},
			5: {data: pattern(25, bs), bitmap: bitmapOf(nsec, func(i int) bool { return i%2 == 0 })},
		}}
	return chain{ps, cs, buildVHD(ps), buildVHD(cs)}
}

// TestDifferencingChain reads a differencing child through its dynamic
// parent and checks every byte against the independently computed disk.
func TestDifferencingChain(t *testing.T) {
	c := makeChain()
	parent := mustOpen(t, "base.vhd", c.parent, Options{})
	wantParent := expectDisk(c.parentSpec, nil)
	disktest.Check(t, parent, bytes.NewReader(wantParent))

	child := mustOpen(t, "child.vhd", c.child, Options{Parent: parent})
	want := expectDisk(c.childSpec, wantParent)
	if child.Size() != int64(len(want)) {
		t.Fatalf("Size %d, want %d", child.Size(), len(want))
	}
	got := make([]byte, len(want))
	if _, err := child.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("byte %d differs (block %d sector %d)", i, i/(512<<10), i%(512<<10)/512)
	}
	disktest.Check(t, child, bytes.NewReader(want))
	checkExtentKinds(t, child, want)

	// The map names both files.
	var fromParent, fromChild bool
	for _, e := range disktest.CheckExtents(t, child) {
		if e.Stored != nil {
			fromParent = fromParent || e.Stored.Name() == "base.vhd"
			fromChild = fromChild || e.Stored.Name() == "child.vhd"
		}
	}
	if !fromParent || !fromChild {
		t.Errorf("extents from parent %v, from child %v; want both", fromParent, fromChild)
	}

	info := child.Info()
	if info.Subformat != "differencing" || info.Specific["parent_name"] != `D:\vms\base.vhd` || child.ParentName() != `D:\vms\base.vhd` {
		t.Errorf("Info %+v", info)
	}
	if js, err := json.Marshal(info); err != nil || !strings.Contains(string(js), `"parent_locators":[{"platform":"W2ku"`) {
		t.Errorf("Info as JSON: %s, %v", js, err)
	}
	locs := child.ParentLocators()
	if len(locs) != 2 || locs[0].Platform != "W2ku" || locs[0].Path != `D:\vms\base.vhd` || locs[1].Platform != "W2ru" || locs[1].Path != `.\base.vhd` {
		t.Errorf("locators %+v", locs)
	}
	if child.ParentUniqueID() != parent.UniqueID() {
		t.Errorf("ParentUniqueID %x, parent's UniqueID %x", child.ParentUniqueID(), parent.UniqueID())
	}

	// A grandchild over the child: three levels.
	gs := spec{diskType: TypeDifferencing, size: c.childSpec.size, blockSize: 1 << 20, uniqueID: [16]byte{0xd0},
		parentID: child.UniqueID(), parentName: "child.vhd",
		blocks: map[int]specBlock{1: {data: pattern(30, 1<<20), bitmap: bitmapOf(2048, func(i int) bool { return i > 1000 && i < 1200 })}}}
	grand := mustOpen(t, "grand.vhd", buildVHD(gs), Options{Parent: child})
	disktest.Check(t, grand, bytes.NewReader(expectDisk(gs, want)))
}

// TestDifferencingRefused: no parent, the wrong parent.
func TestDifferencingRefused(t *testing.T) {
	c := makeChain()
	_, err := Open(disk.NewMemStorage("child.vhd", c.child), Options{})
	if !errors.Is(err, disk.ErrUnsafe) || !strings.Contains(err.Error(), `D:\\vms\\base.vhd`) || !strings.Contains(err.Error(), `W2ru locator ".\\base.vhd"`) {
		t.Errorf("no parent: %v, want ErrUnsafe naming the parent", err)
	}
	other := c.parentSpec
	other.uniqueID[0] ^= 0xff
	wrong := mustOpen(t, "other.vhd", buildVHD(other), Options{})
	_, err = Open(disk.NewMemStorage("child.vhd", c.child), Options{Parent: wrong})
	if !errors.Is(err, disk.ErrUnsafe) || !strings.Contains(err.Error(), "unique id") {
		t.Errorf("wrong parent: %v, want ErrUnsafe about the unique id", err)
	}
}

// memImage is a non-VHD parent: bytes in memory, all one Data run.
type memImage struct{ b []byte }

func (m *memImage) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (m *memImage) Size() int64 { return int64(len(m.b)) }
func (m *memImage) Extents(off, n int64) iter.Seq2[disk.Extent, error] {
	return disk.Coalesce(func(yield func(disk.Extent, error) bool) {
		yield(disk.Extent{Offset: 0, Length: int64(len(m.b)), Kind: disk.Data}, nil)
	}, off, n)
}
func (m *memImage) Info() disk.Info { return disk.Info{Format: "mem", VirtualSize: int64(len(m.b))} }
func (m *memImage) Close() error    { return nil }

// TestSampleFatDifferential reads the Windows-made dfvfs differencing disk
// through two made-up parents. A sector comes from the child when it reads
// the same through both parents, and then must equal qemu-img's output
// (qemu reads the child alone); otherwise it must equal the parent's.
// Both kinds must occur: the child's one allocated block has 18 sectors
// present.
func TestSampleFatDifferential(t *testing.T) {
	path := sample(t, "dfvfs-fat-differential.vhd")
	s := openFile(t, path)
	var out [2][]byte
	var parents [2][]byte
	for k := range 2 {
		parents[k] = pattern(uint64(40+k), 3<<20) // smaller than the child's 4 MiB
		m, err := Open(s, Options{Parent: &memImage{parents[k]}})
		if err != nil {
			t.Fatal(err)
		}
		if m.Size() != 4<<20 {
			t.Fatalf("Size %d", m.Size())
		}
		out[k] = make([]byte, m.Size())
		if _, err := m.ReadAt(out[k], 0); err != nil {
			t.Fatal(err)
		}
		want := append([]byte{}, out[k]...)
		disktest.Check(t, m, bytes.NewReader(want))
	}
	qemu := readQemuRaw(t, path)
	if got := sha256Bytes(qemu); got != shaFatQemu {
		t.Fatalf("qemu output sha256 %s, README says %s", got, shaFatQemu)
	}
	child, fromParent := 0, 0
	for sec := 0; sec < len(out[0])/512; sec++ {
		o := sec * 512
		a, b := out[0][o:o+512], out[1][o:o+512]
		if bytes.Equal(a, b) {
			child++
			if !bytes.Equal(a, qemu[o:o+512]) {
				t.Fatalf("sector %d from the child differs from qemu's", sec)
			}
			continue
		}
		fromParent++
		if !isZero(qemu[o : o+512]) {
			t.Fatalf("sector %d holds data in the child (qemu reads it) but was read from the parent", sec)
		}
		for k := range 2 {
			want := make([]byte, 512)
			if o < len(parents[k]) {
				copy(want, parents[k][o:])
			}
			if !bytes.Equal(out[k][o:o+512], want) {
				t.Fatalf("sector %d differs from parent %d", sec, k)
			}
		}
	}
	// 18 sectors present; sectors past the parent's end read zero through both.
	if child != 18+(4<<20-3<<20)/512 || fromParent == 0 {
		t.Errorf("%d sectors from the child, %d from the parent", child, fromParent)
	}
}

// TestSmallBlocks: blocks of 512 B to 4 KiB still have a one-sector
// bitmap; a dynamic parent and a differencing child of such blocks read
// as built.
func TestSmallBlocks(t *testing.T) {
	for _, bs := range []uint32{512, 1024, 2048, 4096} {
		nsec := int(bs / 512)
		ps := spec{diskType: TypeDynamic, size: uint64(7*bs + 512), blockSize: bs, uniqueID: [16]byte{byte(bs >> 8)},
			blocks: map[int]specBlock{
				0: {data: pattern(50, int(bs))},
				3: {data: pattern(53, int(bs)), bitmap: bitmapOf(nsec, func(i int) bool { return i%2 == 1 })},
				7: {data: pattern(57, 512)},
			}}
		cs := spec{diskType: TypeDifferencing, size: ps.size, blockSize: bs, parentID: ps.uniqueID, parentName: "p",
			blocks: map[int]specBlock{
				3: {data: pattern(63, int(bs)), bitmap: bitmapOf(nsec, func(i int) bool { return i == 0 })},
				4: {data: pattern(64, int(bs))},
			}}
		parent := mustOpen(t, "p", buildVHD(ps), Options{})
		wantParent := expectDisk(ps, nil)
		disktest.Check(t, parent, bytes.NewReader(wantParent))
		child := mustOpen(t, "c", buildVHD(cs), Options{Parent: parent})
		disktest.Check(t, child, bytes.NewReader(expectDisk(cs, wantParent)))
	}
}

// TestParentRefusedWithoutLink: a parent given to a fixed or dynamic disk,
// which has none, is refused with disk.ErrUnsafe rather than ignored (the
// caller believes it is in use), whether it is a VHD or another disk.Image.
func TestParentRefusedWithoutLink(t *testing.T) {
	c := makeChain()
	parent := mustOpen(t, "base.vhd", c.parent, Options{})
	fixed := buildVHD(spec{diskType: TypeFixed, size: 1 << 20, fixedData: pattern(40, 1<<20)})
	for _, tc := range []struct {
		name   string
		b      []byte
		parent disk.Image
	}{
		{"fixed, VHD parent", fixed, parent},
		{"fixed, other parent", fixed, &memImage{b: make([]byte, 1<<20)}},
		{"dynamic, VHD parent", c.parent, parent},
		{"dynamic, other parent", c.parent, &memImage{b: make([]byte, 1<<20)}},
	} {
		_, err := Open(disk.NewMemStorage("d.vhd", tc.b), Options{Parent: tc.parent})
		if !errors.Is(err, disk.ErrUnsafe) || !strings.Contains(err.Error(), "has none") {
			t.Errorf("%s: %v, want ErrUnsafe saying the disk has no parent", tc.name, err)
		}
	}
	// A nil *Image is no parent.
	var none *Image
	if _, err := Open(disk.NewMemStorage("d.vhd", fixed), Options{Parent: none}); err != nil {
		t.Errorf("nil *Image parent: %v", err)
	}
	if _, err := Open(disk.NewMemStorage("child.vhd", c.child), Options{Parent: none}); !errors.Is(err, disk.ErrUnsafe) {
		t.Errorf("differencing disk with a nil *Image parent: %v, want ErrUnsafe", err)
	}
}
