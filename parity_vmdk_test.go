package diskport_test

import (
	"bytes"
	"compress/bzip2"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
)

// vmdkSample returns a function decompressing vmdk/testdata/name (bzip2
// when it ends in .bz2) into a temporary file.
func vmdkSample(name string) func(t *testing.T) string {
	return func(t *testing.T) string {
		b, err := os.ReadFile(filepath.Join("vmdk", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, ".bz2") {
			if b, err = io.ReadAll(bzip2.NewReader(bytes.NewReader(b))); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(t.TempDir(), strings.TrimSuffix(name, ".bz2"))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// TestParityConvertVMDKMore adds the qemu-img options the subformat rows
// leave out, VMware-made samples, and the files that must be refused.
func TestParityConvertVMDKMore(t *testing.T) {
	vmdk := func(name string, size int64, seed uint64, opts string) parityRow {
		return parityRow{name: name, image: golden(size, seed, "vmdk", opts), opts: diskport.Options{Format: "VMDK"}, qemuArgs: []string{"-f", "vmdk"}}
	}
	sample := func(name string, wantErr error) parityRow {
		return parityRow{name: name, image: vmdkSample(name), opts: diskport.Options{Format: "VMDK"}, qemuArgs: []string{"-f", "vmdk"}, wantErr: wantErr}
	}
	runParity(t, []parityRow{
		vmdk("lsilogic-hwversion", 3<<20, 31, "adapter_type=lsilogic,hwversion=10"),
		vmdk("stream-buslogic", 2<<20+512, 32, "subformat=streamOptimized,adapter_type=buslogic"),
		vmdk("stream-one-sector", 512, 33, "subformat=streamOptimized"),
		vmdk("twoGbMaxExtentFlat-compat6", 1<<20, 34, "subformat=twoGbMaxExtentFlat,compat6=on"),
		sample("dfvfs-ext2.vmdk.bz2", nil),
		sample("govmomi-ttylinux-pc_i486-16.1-disk1.vmdk", disk.ErrCorrupt),
		sample("afl9.vmdk.bz2", disk.ErrCorrupt),
	})
}

// TestParityVMDKDeltaChain opens a qemu-made delta chain through
// diskport.Open with the parents listed, and compares it with qemu-img's
// conversion, which follows parentFileNameHint itself.
func TestParityVMDKDeltaChain(t *testing.T) {
	dir := t.TempDir()
	g := testimg.Golden(t, testimg.Spec{Size: 3 << 20, Seed: 35})
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	qemuImg := testimg.QemuImg(t)
	run(qemuImg, "convert", "-q", "-f", "raw", "-O", "vmdk", g, "base.vmdk")
	run(qemuImg, "create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", "child.vmdk")
	run("qemu-io", "-f", "vmdk", "-c", "write -P 0x42 192k 300k", "child.vmdk")
	child := filepath.Join(dir, "child.vmdk")

	if _, err := diskport.Open(child, diskport.Options{Format: "VMDK"}); !isErr(err, disk.ErrUnsafe) {
		t.Fatalf("Open without parents: %v, want ErrUnsafe", err)
	}
	img, err := diskport.Open(child, diskport.Options{Format: "VMDK", Parents: []string{filepath.Join(dir, "base.vmdk")}})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	want := filepath.Join(dir, "qemu.raw")
	run(qemuImg, "convert", "-q", "-O", "raw", "child.vmdk", want)
	wf, err := os.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	disktest.Check(t, img, wf)
	dst := filepath.Join(dir, "volume.raw")
	res, err := convert.Convert(context.Background(), img, dst, convert.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	CompareVolume(t, dst, want, img.Size(), res.VolumeSize)
}
