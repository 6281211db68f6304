package vhd

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
)

// TestQemuParity converts golden disks with qemu-img to vpc (dynamic and
// fixed, with and without force_size) and checks that diskport reads what
// `qemu-img convert -f vpc -O raw` writes over qemu's virtual size, zeros
// beyond it, and the golden bytes themselves.
func TestQemuParity(t *testing.T) {
	t.Parallel()
	goldens := []testimg.Spec{
		{Size: 3000001, Seed: 1},                        // not a multiple of 512
		{Size: 5<<20 + 3*512, Seed: 2},                  // not a multiple of the 2 MiB block
		{Size: 4<<20 + 4096, Seed: 3, ZeroPercent: 100}, // nothing allocated
	}
	for _, g := range goldens {
		golden := testimg.Golden(t, g)
		gold, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		for _, opts := range []string{"subformat=dynamic", "subformat=fixed", "subformat=dynamic,force_size=on", "subformat=fixed,force_size=on"} {
			if g.ZeroPercent == 100 && strings.Contains(opts, "fixed") {
				continue // a fixed disk of zeros is no different from one of data
			}
			t.Run(fmt.Sprintf("%d-%d/%s", g.Size, g.Seed, opts), func(t *testing.T) {
				t.Parallel()
				path := testimg.Make(t, golden, "vpc", opts)
				qraw, err := os.ReadFile(testimg.QemuRaw(t, path, "-f", "vpc"))
				if err != nil {
					t.Fatal(err)
				}
				m, err := Open(openFile(t, path), Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				if m.QemuSize() != int64(len(qraw)) {
					t.Errorf("QemuSize %d, qemu-img wrote %d bytes", m.QemuSize(), len(qraw))
				}
				if m.Size() != (m.CurrentSize()+511)/512*512 || m.Size() < int64(len(gold)) {
					t.Errorf("Size %d, current size %d, golden %d", m.Size(), m.CurrentSize(), len(gold))
				}
				got := make([]byte, m.Size())
				if _, err := m.ReadAt(got, 0); err != nil {
					t.Fatal(err)
				}
				n := min(len(got), len(qraw))
				if i := firstDiff(got[:n], qraw[:n]); i >= 0 {
					t.Fatalf("byte %d differs from qemu-img's output", i)
				}
				if !isZero(got[n:]) || !isZero(qraw[n:]) {
					t.Fatalf("bytes past %d (ours %d, qemu's %d) are not all zero", n, len(got), len(qraw))
				}
				if i := firstDiff(got[:len(gold)], gold); i >= 0 || !isZero(got[len(gold):]) {
					t.Fatalf("differs from the golden disk at %d", i)
				}
				want := append(append([]byte{}, qraw[:n]...), make([]byte, len(got)-n)...)
				disktest.Check(t, m, bytes.NewReader(want))
				checkExtentKinds(t, m, got)
			})
		}
	}
}

// checkExtentKinds checks that Zero runs read as zeros in content and
// that stored Data runs hold the bytes they claim, and for a disk of all
// zeros made by qemu (which leaves zero blocks unallocated) that the map
// is all Zero.
func checkExtentKinds(t *testing.T, m *Image, content []byte) {
	t.Helper()
	exts := disktest.CheckExtents(t, m)
	allZero := isZero(content)
	for _, e := range exts {
		b := content[e.Offset:e.End()]
		switch e.Kind {
		case disk.Zero:
			if !isZero(b) {
				t.Fatalf("zero extent %+v holds data", e)
			}
		case disk.Data:
			if m.DiskType() == TypeDynamic && allZero {
				t.Errorf("data extent %+v in a dynamic disk of zeros", e)
			}
			if e.Stored == nil {
				t.Fatalf("data extent %+v without storage", e)
			}
			s := make([]byte, e.Length)
			if err := disk.ReadFull(e.Stored, "test", "stored run", s, e.StoredOffset); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s, b) {
				t.Fatalf("stored run %+v differs from the image bytes", e)
			}
		}
	}
	if m.DiskType() == TypeFixed && (exts[0].Kind != disk.Data || exts[0].StoredOffset != 0 || exts[0].Length != m.CurrentSize()) {
		t.Errorf("fixed disk extents %+v, want one stored run at 0", exts)
	}
}

// firstDiff returns the first index where a and b differ, or -1.
func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
