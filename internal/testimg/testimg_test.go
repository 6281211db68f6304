package testimg

import (
	"bytes"
	"os"
	"testing"
)

// TestGoldenDeterministic checks the golden disk is the same bytes each
// time and has the promised mix: data cells and hole-backed zero cells.
func TestGoldenDeterministic(t *testing.T) {
	spec := Spec{Size: 2<<20 + 517, Seed: 7}
	dir := t.TempDir()
	a, b := dir+"/a", dir+"/b"
	if err := WriteGolden(a, spec); err != nil {
		t.Fatal(err)
	}
	if err := WriteGolden(b, spec); err != nil {
		t.Fatal(err)
	}
	x, _ := os.ReadFile(a)
	y, _ := os.ReadFile(b)
	if int64(len(x)) != spec.Size || !bytes.Equal(x, y) {
		t.Fatalf("golden disk not deterministic or wrong size %d", len(x))
	}
	zero, data := 0, 0
	for off := 0; off < len(x); off += CellSize {
		c := x[off:min(off+CellSize, len(x))]
		if bytes.Count(c, []byte{0}) == len(c) {
			zero++
		} else {
			data++
		}
	}
	if zero == 0 || data == 0 {
		t.Fatalf("golden disk has %d zero and %d data cells, want both", zero, data)
	}
}

// TestMakeAndQemuRaw round-trips a golden disk through qemu-img.
func TestMakeAndQemuRaw(t *testing.T) {
	g := Golden(t, Spec{Size: 1<<20 + 512, Seed: 1})
	img := Make(t, g, "vmdk", "subformat=streamOptimized")
	out := QemuRaw(t, img)
	x, _ := os.ReadFile(g)
	y, _ := os.ReadFile(out)
	if !bytes.Equal(x, y) {
		t.Fatalf("qemu-img round trip of %s differs from the golden disk", img)
	}
	if again := Make(t, g, "vmdk", "subformat=streamOptimized"); again != img {
		t.Fatalf("cache missed: %s then %s", img, again)
	}
}
