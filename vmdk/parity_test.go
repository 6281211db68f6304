package vmdk

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
)

// Every row converts a golden raw disk with qemu-img to a VMDK subformat,
// opens it, and checks the bytes against qemu-img's own raw conversion of
// the image, plus the disk conformance checks.
func TestParityQemu(t *testing.T) {
	const odd = 2<<20 + 4096 + 3*512 + 100 // not a multiple of the grain nor of 512
	for _, c := range []struct {
		name, opts string
		size       int64
		createType string
		version    uint32
	}{
		{"monolithicSparse", "", 4 << 20, "monolithicSparse", 1},
		{"monolithicSparse-odd", "subformat=monolithicSparse", odd, "monolithicSparse", 1},
		{"monolithicFlat", "subformat=monolithicFlat", odd, "monolithicFlat", 1},
		{"streamOptimized", "subformat=streamOptimized", 2 << 20, "streamOptimized", 3},
		{"streamOptimized-odd", "subformat=streamOptimized", odd, "streamOptimized", 3},
		{"twoGbMaxExtentSparse", "subformat=twoGbMaxExtentSparse", odd, "twoGbMaxExtentSparse", 1},
		{"twoGbMaxExtentFlat", "subformat=twoGbMaxExtentFlat", odd, "twoGbMaxExtentFlat", 1},
		{"zeroed_grain", "zeroed_grain=on", odd, "monolithicSparse", 2},
		{"compat6", "compat6=on", 2 << 20, "monolithicSparse", 1},
		{"adapter-lsilogic", "adapter_type=lsilogic,hwversion=10", 1 << 20, "monolithicSparse", 1},
		{"stream-buslogic", "subformat=streamOptimized,adapter_type=buslogic", 1 << 20, "streamOptimized", 3},
		{"small-1sector", "", 512, "monolithicSparse", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			golden := testimg.Golden(t, testimg.Spec{Size: c.size, Seed: uint64(len(c.name))})
			path := testimg.Make(t, golden, "vmdk", c.opts)
			img := openPath(t, path, Options{})
			if img.CreateType() != c.createType || img.version != c.version {
				t.Fatalf("createType %q version %d, want %q %d", img.CreateType(), img.version, c.createType, c.version)
			}
			want := testimg.QemuRaw(t, path)
			compareRaw(t, img, want)
			if c.createType == "streamOptimized" {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				checkWalk(t, img, b)
			}
			info := img.Info()
			if strings.Contains(c.opts, "adapter_type=lsilogic") && (info.Specific["adapter_type"] != "lsilogic" || info.Specific["hardware_version"] != "10") {
				t.Fatalf("Info().Specific = %v", info.Specific)
			}
		})
	}
}

// compareRaw checks img against the raw file want: same size, same bytes
// (disktest.Check), and the extent map's zero runs really zero.
func compareRaw(t testing.TB, img disk.Image, want string) {
	t.Helper()
	st, err := os.Stat(want)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != img.Size() {
		t.Fatalf("Size() = %d, qemu-img's raw output has %d bytes", img.Size(), st.Size())
	}
	check(t, img, rawFile(t, want))
}

// qemuIO runs qemu-io on image with the given commands.
func qemuIO(t testing.TB, image string, cmds ...string) {
	t.Helper()
	testimg.QemuImg(t)
	args := []string{"-f", "vmdk"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("qemu-io", append(args, image)...).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("error")) || bytes.Contains(out, []byte("failed")) {
		t.Fatalf("qemu-io %v: %v\n%s", cmds, err, out)
	}
}

// qemuConvertRaw converts image to raw with qemu-img, uncached (for images
// a test modified), and returns the raw file's path.
func qemuConvertRaw(t testing.TB, image string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "qemu.raw")
	if msg, err := exec.Command(testimg.QemuImg(t), "convert", "-O", "raw", image, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert %s: %v\n%s", image, err, msg)
	}
	return out
}

// copyImage copies the VMDK at path (and the extent files next to it that
// share its base name) into a fresh directory, so a test can modify it.
func copyImage(t testing.TB, path string) string {
	t.Helper()
	dir := t.TempDir()
	base := strings.TrimSuffix(filepath.Base(path), ".vmdk")
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), base) {
			continue
		}
		cp := exec.Command("cp", "--sparse=always", filepath.Join(filepath.Dir(path), e.Name()), dir)
		if out, err := cp.CombinedOutput(); err != nil {
			t.Fatalf("cp: %v\n%s", err, out)
		}
	}
	return filepath.Join(dir, filepath.Base(path))
}

// Zeroed grains written with qemu-io's write -z read as zeros and map as
// zero runs.
func TestParityZeroedGrains(t *testing.T) {
	golden := testimg.Golden(t, testimg.Spec{Size: 4 << 20, Seed: 7, ZeroPercent: 5})
	path := copyImage(t, testimg.Make(t, golden, "vmdk", "zeroed_grain=on"))
	qemuIO(t, path, "write -z 0 256k", "write -z 1M 64k", "write -z 3M 1M", "write -z 4032k 64k")
	img := openPath(t, path, Options{})
	compareRaw(t, img, qemuConvertRaw(t, path))
	for _, r := range [][2]int64{{0, 256 << 10}, {1 << 20, 64 << 10}, {3 << 20, 1 << 20}} {
		var n int
		for e, err := range img.Extents(r[0], r[1]) {
			if err != nil || e.Kind != disk.Zero {
				t.Fatalf("Extents(%d, %d): %+v %v, want one zero run", r[0], r[1], e, err)
			}
			n++
		}
		if n != 1 {
			t.Fatalf("Extents(%d, %d): %d runs", r[0], r[1], n)
		}
	}
	if !img.exts[0].sp.zeroed {
		t.Fatal("zeroed-grain flag not seen")
	}
}

// twoGbMaxExtent images over 4 GiB with data written across the extent
// boundaries at 2 GiB and 4 GiB.
func TestParityTwoGbBoundaries(t *testing.T) {
	for _, sub := range []string{"twoGbMaxExtentSparse", "twoGbMaxExtentFlat"} {
		t.Run(sub, func(t *testing.T) {
			t.Parallel()
			path := copyImage(t, testimg.Create(t, "vmdk", "subformat="+sub, 4<<30+2<<20))
			qemuIO(t, path,
				"write -P 0xa1 0 64k",
				"write -P 0xb2 2047M 2M",
				"write -P 0xc3 4095M 1536k",
				"write -P 0xd4 4097M 1023k",
			)
			img := openPath(t, path, Options{})
			if len(img.exts) != 3 {
				t.Fatalf("%d extents, want 3", len(img.exts))
			}
			want := qemuConvertRaw(t, path)
			wf := rawFile(t, want)
			for _, r := range [][2]int64{{0, 64 << 10}, {2047 << 20, 2 << 20}, {4095 << 20, 1536 << 10}, {4097 << 20, 1023 << 10}, {4<<30 + 2<<20 - 4096, 4096}} {
				got := make([]byte, r[1]+8192)
				exp := make([]byte, r[1]+8192)
				off := max(0, r[0]-4096)
				n, err := img.ReadAt(got, off)
				if err != nil && err != io.EOF {
					t.Fatal(err)
				}
				m, _ := wf.ReadAt(exp, off)
				if n != m || !bytes.Equal(got[:n], exp[:m]) {
					t.Fatalf("bytes at %d differ from qemu-img's", off)
				}
			}
			// The full conformance checks run on the small rows of
			// TestParityQemu; here the extent map must be sound.
			disktest.CheckExtents(t, img)
		})
	}
}

// A delta chain made by qemu-img create -b and written with qemu-io:
// unallocated grains read the parent, zeroed grains do not, and the
// parentCID must match the parent's CID.
func TestParityDeltaChain(t *testing.T) {
	golden := testimg.Golden(t, testimg.Spec{Size: 4 << 20, Seed: 11, ZeroPercent: 10})
	dir := filepath.Dir(copyImage(t, testimg.Make(t, golden, "vmdk", "")))
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	qemuImg := testimg.QemuImg(t)
	run("mv", "image.vmdk", "base.vmdk")
	run(qemuImg, "create", "-q", "-f", "vmdk", "-o", "zeroed_grain=on", "-b", "base.vmdk", "-F", "vmdk", "child.vmdk")
	qemuIO(t, filepath.Join(dir, "child.vmdk"), "write -P 0x5a 100k 200k", "write -z 1M 128k", "write -P 0x6b 3M 4k")
	run(qemuImg, "create", "-q", "-f", "vmdk", "-b", "child.vmdk", "-F", "vmdk", "grandchild.vmdk")
	qemuIO(t, filepath.Join(dir, "grandchild.vmdk"), "write -P 0x7c 64k 64k", "write -P 0x7d 3M 512")

	base := openPath(t, filepath.Join(dir, "base.vmdk"), Options{})
	child := openPath(t, filepath.Join(dir, "child.vmdk"), Options{Parent: base})
	grand := openPath(t, filepath.Join(dir, "grandchild.vmdk"), Options{Parent: child})
	if child.ParentCID() != base.CID() || child.ParentFileNameHint() != "base.vmdk" {
		t.Fatalf("child parentCID %08x hint %q, base CID %08x", child.ParentCID(), child.ParentFileNameHint(), base.CID())
	}
	compareRaw(t, child, qemuConvertRaw(t, filepath.Join(dir, "child.vmdk")))
	compareRaw(t, grand, qemuConvertRaw(t, filepath.Join(dir, "grandchild.vmdk")))
	// The zeroed grains of the child hide the base's data.
	for e, err := range child.Extents(1<<20, 128<<10) {
		if err != nil || e.Kind != disk.Zero {
			t.Fatalf("child's zeroed grains map as %+v %v", e, err)
		}
	}
	// Unallocated ranges of the child map as the base's runs.
	var baseStored bool
	for e, err := range child.Extents(2<<20, 1<<20) {
		if err != nil {
			t.Fatal(err)
		}
		baseStored = baseStored || e.Stored != nil && e.Stored.Name() == filepath.Join(dir, "base.vmdk")
	}
	if !baseStored {
		t.Fatal("no extent of the child's unallocated range is stored in the base")
	}

	_, err := Open(hostFile(t, filepath.Join(dir, "child.vmdk")), Options{})
	wantClass(t, err, disk.ErrUnsafe)
	if !strings.Contains(err.Error(), "base.vmdk") {
		t.Fatalf("error %q does not name the parent", err)
	}
	// The grandchild's parent is the child, not the base.
	_, err = Open(hostFile(t, filepath.Join(dir, "grandchild.vmdk")), Options{Parent: base})
	wantClass(t, err, disk.ErrCorrupt)
	// An image without a parent link refuses a parent.
	_, err = Open(hostFile(t, filepath.Join(dir, "base.vmdk")), Options{Parent: child})
	wantClass(t, err, disk.ErrUnsafe)
}
