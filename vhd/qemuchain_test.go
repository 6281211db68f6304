package vhd

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
)

// TestQemuMadeDifferencing turns a qemu-made dynamic VHD into a
// differencing child of another qemu-made VHD (footer type 4, the
// parent's unique id in the header, checksums fixed) and reads through the
// chain: qemu-img cannot write differencing VHDs. qemu leaves the child's
// all-zero block unallocated, so it must come from the parent; the
// allocated blocks (full bitmaps) come from the child.
func TestQemuMadeDifferencing(t *testing.T) {
	const bs = 2 << 20
	const size = 3*bs + 512*5
	parentPath := testimg.Make(t, testimg.Golden(t, testimg.Spec{Size: size, Seed: 71, ZeroPercent: 5}), "vpc", "subformat=dynamic,force_size=on")
	parentRaw := readQemuRaw(t, parentPath)

	dir := t.TempDir()
	childRaw := make([]byte, size)
	copy(childRaw, pattern(72, bs))              // block 0
	copy(childRaw[2*bs:], pattern(73, bs+512*5)) // block 2 and the tail; block 1 stays zero
	if err := os.WriteFile(filepath.Join(dir, "child.raw"), childRaw, 0o644); err != nil {
		t.Fatal(err)
	}
	childPath := filepath.Join(dir, "child.vhd")
	if out, err := exec.Command(testimg.QemuImg(t), "convert", "-q", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on",
		filepath.Join(dir, "child.raw"), childPath).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	parent, err := Open(openFile(t, parentPath), Options{})
	if err != nil {
		t.Fatal(err)
	}
	disktest.Check(t, parent, bytes.NewReader(parentRaw))

	b, err := os.ReadFile(childPath)
	if err != nil {
		t.Fatal(err)
	}
	pid := parent.UniqueID()
	editFooters(b, func(f []byte) { binary.BigEndian.PutUint32(f[60:], TypeDifferencing) })
	do := binary.BigEndian.Uint64(b[16:])
	h := b[do : do+headerSize]
	copy(h[40:56], pid[:])
	copy(h[64:], []byte{0, 'p', 0, '.', 0, 'v', 0, 'h', 0, 'd'})
	fixChecksum(h, 36)

	child, err := Open(disk.NewMemStorage("child.vhd", b), Options{Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	if child.Info().Specific["allocated_blocks"] != int64(3) {
		t.Fatalf("allocated blocks %v, want 3 (qemu skips the zero block 1)", child.Info().Specific["allocated_blocks"])
	}
	want := append([]byte{}, childRaw...)
	copy(want[bs:2*bs], parentRaw[bs:2*bs])
	disktest.Check(t, child, bytes.NewReader(want))
	checkExtentKinds(t, child, want)
}
