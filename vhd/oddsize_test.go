package vhd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
)

// TestOddCurrentSize: a current size that is not a multiple of 512 (no
// known writer makes one) is rounded up; the bytes past it read as zeros,
// never as the footer that follows a fixed disk's data. qemu rounds down
// instead: it agrees on the whole sectors.
func TestOddCurrentSize(t *testing.T) {
	const size = 3000
	data := pattern(81, size)
	for _, sp := range []spec{
		{diskType: TypeFixed, size: size, fixedData: data, creator: "qem2"},
		{diskType: TypeDynamic, size: size, blockSize: 4096, creator: "qem2", blocks: map[int]specBlock{0: {data: append(append([]byte{}, data...), 0xEE, 0xEE)}}},
	} {
		t.Run(typeName(sp.diskType), func(t *testing.T) {
			b := buildVHD(sp)
			m := mustOpen(t, "odd.vhd", b, Options{})
			if m.Size() != 3072 || m.CurrentSize() != size || m.QemuSize() != 2560 {
				t.Fatalf("Size %d CurrentSize %d QemuSize %d, want 3072 3000 2560", m.Size(), m.CurrentSize(), m.QemuSize())
			}
			want := append(append([]byte{}, data...), make([]byte, 72)...)
			disktest.Check(t, m, bytes.NewReader(want))
			exts := disktest.CheckExtents(t, m)
			if last := exts[len(exts)-1]; last.Kind != disk.Zero || last.Offset != size {
				t.Errorf("last extent %+v, want zeros from %d", last, size)
			}
			path := filepath.Join(t.TempDir(), "odd.vhd")
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "odd.raw")
			msg, err := exec.Command(testimg.QemuImg(t), "convert", "-q", "-f", "vpc", "-O", "raw", path, out).CombinedOutput()
			if sp.diskType == TypeFixed {
				// qemu rounds the file size up to a sector and looks for the
				// footer there: "invalid VPC image".
				if err == nil {
					t.Errorf("qemu-img read a fixed VHD of %d bytes", len(b))
				}
				return
			}
			if err != nil {
				t.Fatalf("qemu-img: %v: %s", err, msg)
			}
			qemu, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if len(qemu) != 2560 || !bytes.Equal(qemu, want[:2560]) {
				t.Errorf("qemu-img wrote %d bytes; the first 2560 equal ours: %v", len(qemu), bytes.Equal(qemu, want[:min(2560, len(qemu))]))
			}
		})
	}
}

// TestBitmapVersusQemu pins a documented difference: in a dynamic disk a
// sector whose bitmap bit is clear reads as zeros here (the specification
// says such sectors hold zeros), while qemu ignores the bitmap and returns
// whatever the block's data area holds. hostileBase's block 2 has only its
// first 4 sectors marked, over random bytes.
func TestBitmapVersusQemu(t *testing.T) {
	b := hostileBase()
	path := filepath.Join(t.TempDir(), "bitmap.vhd")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	m := mustOpen(t, "bitmap.vhd", b, Options{})
	got := make([]byte, m.Size())
	if _, err := m.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bitmap.raw")
	if msg, err := exec.Command(testimg.QemuImg(t), "convert", "-q", "-f", "vpc", "-O", "raw", path, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, msg)
	}
	qemu, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	const bs = 512 << 10
	absent := 2*bs + 4*512
	if !bytes.Equal(got[:absent], qemu[:absent]) || !bytes.Equal(got[3*bs:], qemu[3*bs:len(got)]) {
		t.Errorf("differs from qemu outside block 2's absent sectors")
	}
	if !isZero(got[absent:3*bs]) || !bytes.Equal(qemu[absent:3*bs], pattern(2, bs)[4*512:]) {
		t.Errorf("block 2's absent sectors: ours zero %v, qemu's the stored bytes %v", isZero(got[absent:3*bs]), bytes.Equal(qemu[absent:3*bs], pattern(2, bs)[4*512:]))
	}
}

// TestFixedHoldingVHD: a fixed disk whose data starts with "conectix" (a
// VHD stored inside a fixed VHD) is read as the fixed disk its trailing
// footer says it is; qemu, which looks at offset 0 first, would take the
// inner disk's footer.
func TestFixedHoldingVHD(t *testing.T) {
	inner := hostileBase()
	outer := buildVHD(spec{diskType: TypeFixed, size: uint64(len(inner) + 4096), fixedData: inner, creator: "win "})
	m := mustOpen(t, "outer.vhd", outer, Options{})
	if m.DiskType() != TypeFixed || m.Size() != int64(len(inner)+4096) {
		t.Fatalf("type %d size %d", m.DiskType(), m.Size())
	}
	want := append(append([]byte{}, inner...), make([]byte, 4096)...)
	disktest.Check(t, m, bytes.NewReader(want))
}
