package vmdk

import (
	"bytes"
	"testing"

	"github.com/diskport/diskport/disk"
)

// otherImage is a parent that is not a *vmdk.Image (a parent converted to
// raw, say): it hides the *Image it wraps.
type otherImage struct{ disk.Image }

// TestParents: Options.Parent is any disk.Image. A *vmdk.Image parent must
// carry the CID the child names; another disk.Image is taken on the
// caller's word; a parent given to an image without a parent link is
// refused with disk.ErrUnsafe (the caller's mistake, not the bytes'), and a nil *Image is no parent.
func TestParents(t *testing.T) {
	const capacity = 4 * 128 // sectors: 4 grains of 64 KiB
	baseData := map[int64][]byte{0: pattern(65536, 1), 1: pattern(65536, 2), 3: pattern(65536, 3)}
	bb, _ := buildSparse(sparseSpec{capacity: capacity, desc: embeddedDesc("monolithicSparse", capacity, 0xfeedf00d, noParentCID, ""), data: baseData})
	deltaData := map[int64][]byte{1: pattern(65536, 9)}
	db, _ := buildSparse(sparseSpec{capacity: capacity, desc: embeddedDesc("monolithicSparse", capacity, 0x01020304, 0xfeedf00d, "base.vmdk"), data: deltaData})
	base, err := openMem(bb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, capacity*512)
	for gi, d := range baseData {
		copy(want[gi*65536:], d)
	}
	for gi, d := range deltaData {
		copy(want[gi*65536:], d)
	}

	for _, p := range []disk.Image{base, otherImage{base}} {
		delta, err := openMem(db, Options{Parent: p})
		if err != nil {
			t.Fatalf("parent %T: %v", p, err)
		}
		check(t, delta, bytes.NewReader(want))
	}

	// Another disk.Image is not asked for a CID: one with other bytes is
	// read as given.
	otherBase, err := openMem(bb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wrongCID, _ := buildSparse(sparseSpec{capacity: capacity, desc: embeddedDesc("monolithicSparse", capacity, 0xbadbad00, noParentCID, ""), data: baseData})
	wrong, err := openMem(wrongCID, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = openMem(db, Options{Parent: wrong})
	wantClass(t, err, disk.ErrCorrupt)
	if _, err := openMem(db, Options{Parent: otherImage{wrong}}); err != nil {
		t.Fatalf("a non-VMDK parent is taken on the caller's word: %v", err)
	}

	for _, p := range []disk.Image{otherBase, otherImage{otherBase}} {
		_, err := openMem(bb, Options{Parent: p})
		wantClass(t, err, disk.ErrUnsafe)
	}

	var none *Image
	if _, err := openMem(bb, Options{Parent: none}); err != nil {
		t.Fatalf("nil *Image parent for an image without a link: %v", err)
	}
	_, err = openMem(db, Options{Parent: none})
	wantClass(t, err, disk.ErrUnsafe)
}
