package vhdx

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
)

// TestQemuParity converts golden disks with qemu-img to VHDX (dynamic and
// fixed; blocks of 1, 8, 32 and 256 MiB; sizes not a multiple of the
// block) and checks that diskport reads what `qemu-img convert -f vhdx -O
// raw` writes, and the golden bytes themselves.
func TestQemuParity(t *testing.T) {
	t.Parallel()
	goldens := []testimg.Spec{
		{Size: 20<<20 + 3*512, Seed: 1},                // not a multiple of any block size
		{Size: 40<<20 + 4096, Seed: 2},                 // two 32 MiB blocks, the second short
		{Size: 9 << 20, Seed: 3, ZeroPercent: 100},     // nothing allocated
		{Size: 3<<20 + 512, Seed: 4, ZeroPercent: 60},  // mostly zero blocks
		{Size: 17<<20 - 512, Seed: 5, ZeroPercent: 10}, // almost all data
	}
	for _, g := range goldens {
		golden := testimg.Golden(t, g)
		for _, bs := range []int{1, 8, 32, 256} {
			for _, sub := range []string{"dynamic", "fixed"} {
				if g.ZeroPercent == 100 && sub == "fixed" {
					continue
				}
				if bs == 256 && g.Seed > 2 {
					continue // one block, as for 32 MiB: keep the run short
				}
				opts := fmt.Sprintf("subformat=%s,block_size=%dM", sub, bs)
				t.Run(fmt.Sprintf("%d-%d/%s", g.Size, g.Seed, opts), func(t *testing.T) {
					t.Parallel()
					path := testimg.Make(t, golden, "vhdx", opts)
					checkParity(t, path, testimg.QemuRaw(t, path, "-f", "vhdx"), golden, sub)
				})
			}
		}
	}
}

// TestQemuParity4K reads qemu-made VHDXs whose logical sector size is
// patched to 4096: qemu-img writes 512 only, and qemu-img 7.2 refuses the
// patched file ("Operation not supported"), so the patched file must read
// as qemu-img reads the unpatched one (the BAT layout is the same while
// the disk is smaller than a 512-byte-sector chunk, 4 GiB of 1 MiB blocks).
func TestQemuParity4K(t *testing.T) {
	t.Parallel()
	g := testimg.Spec{Size: 12<<20 + 3*4096, Seed: 6}
	golden := testimg.Golden(t, g)
	for _, bs := range []int{1, 8} {
		for _, sub := range []string{"dynamic", "fixed"} {
			t.Run(fmt.Sprintf("%s/%dM", sub, bs), func(t *testing.T) {
				t.Parallel()
				src := testimg.Make(t, golden, "vhdx", fmt.Sprintf("subformat=%s,block_size=%dM", sub, bs))
				b, err := os.ReadFile(src)
				if err != nil {
					t.Fatal(err)
				}
				patchSectorSize(t, b, 4096)
				path := filepath.Join(t.TempDir(), "4k.vhdx")
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
				m := checkParity(t, path, testimg.QemuRaw(t, src, "-f", "vhdx"), golden, sub)
				if m.LogicalSectorSize() != 4096 || m.Info().Specific["logical_sector_size"] != int64(4096) {
					t.Errorf("logical sector size %d", m.LogicalSectorSize())
				}
			})
		}
	}
}

// patchSectorSize sets the logical sector size item of the VHDX in b.
func patchSectorSize(t *testing.T, b []byte, size uint32) {
	t.Helper()
	m := mustOpen(t, "patch", b, Options{})
	var meta Region
	for _, r := range m.regs {
		if r.GUID == regionMetadata {
			meta = r
		}
	}
	tab := b[meta.Offset:]
	for i := range int(le.Uint16(tab[10:])) {
		e := tab[32+32*i:]
		if guidAt(e, 0) == itemLogicalSectorSize {
			le.PutUint32(b[meta.Offset+int64(le.Uint32(e[16:])):], size)
			return
		}
	}
	t.Fatal("no logical sector size item")
}

// checkParity opens the VHDX at path and compares it with qemu-img's raw
// conversion qemuRaw and with the golden disk, runs the conformance checks and
// checks the extent map's kinds.
func checkParity(t *testing.T, path, qemuRaw, golden, sub string) *Image {
	t.Helper()
	gold, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	qraw, err := os.ReadFile(qemuRaw)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(openFile(t, path), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if m.Size() != int64(len(qraw)) || m.Subformat() != sub {
		t.Fatalf("Size %d, qemu-img wrote %d bytes; subformat %s, want %s", m.Size(), len(qraw), m.Subformat(), sub)
	}
	got := make([]byte, m.Size())
	if _, err := m.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(got, qraw); i >= 0 {
		t.Fatalf("byte %d differs from qemu-img's output", i)
	}
	if i := firstDiff(got[:len(gold)], gold); i >= 0 || !isZero(got[len(gold):]) {
		t.Fatalf("differs from the golden disk at %d", i)
	}
	disktest.Check(t, m, bytes.NewReader(qraw))
	exts := disktest.CheckExtents(t, m)
	var data int
	for _, e := range exts {
		b := got[e.Offset:e.End()]
		switch e.Kind {
		case disk.Zero:
			if !isZero(b) {
				t.Fatalf("zero extent %+v holds data", e)
			}
		case disk.Data:
			data++
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
	if sub == "fixed" && (data != 1 || exts[0].Kind != disk.Data || exts[0].Length != m.Size()) {
		t.Errorf("fixed disk: extents %+v, want one stored run (its blocks are contiguous)", exts)
	}
	if isZero(gold) && data != 0 {
		t.Errorf("dynamic disk of zeros has %d data extents", data)
	}
	return m
}
