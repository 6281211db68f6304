//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/volume"
)

// TestPartialNeverThrownAway kills a conversion (SIGKILL) once its
// partial output and journal exist, then runs convert again: without
// --resume or --force it stops with a line naming both and keeps the
// partial output; --resume continues it and says so; after another kill,
// --force starts over.
func TestPartialNeverThrownAway(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	g := testimg.Golden(t, testimg.Spec{Size: 8 << 20, Seed: 41})
	mpath := throttledManifest(t, g, 2<<20) // about 4 s a run
	dst := filepath.Join(t.TempDir(), "vol.raw")
	kill := func() {
		t.Helper()
		cmd, _ := startConvert(t, bin, dst, true, "--no-sync", "--workers", "1", "--manifest", mpath, dst)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	kill()
	code, out := exitCode(t, bin, "convert", "--no-sync", "--manifest", mpath, dst)
	if code != 1 || !strings.Contains(out, "give --resume to continue it, or --force to start over") || strings.Contains(out, "diskport-partial") {
		t.Errorf("convert over a partial output: exit %d, %s", code, out)
	}
	if _, err := os.Stat(volume.PartialName(dst)); err != nil {
		t.Fatalf("the partial output is gone: %v", err)
	}
	out2, err := exec.Command(bin, "convert", "--no-sync", "--resume", "--manifest", mpath, dst).CombinedOutput()
	if err != nil || !strings.Contains(string(out2), "resumed: ") {
		t.Errorf("convert --resume: %v: %s", err, out2)
	}
	if d := sameVolume(g, dst, 1<<30); d != "" {
		t.Fatal(d)
	}
	os.Remove(dst)
	kill()
	out3, err := exec.Command(bin, "convert", "--no-sync", "--force", "--manifest", mpath, dst).CombinedOutput()
	if err != nil || strings.Contains(string(out3), "resumed") {
		t.Errorf("convert --force: %v: %s", err, out3)
	}
	if d := sameVolume(g, dst, 1<<30); d != "" {
		t.Fatal(d)
	}
	for _, p := range []string{volume.PartialName(dst), volume.JournalName(dst)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
}

// TestErrorsNameUserFiles: converting into a missing, read-only or
// immutable directory says which directory and why, without the names of
// diskport's partial output or journal; errors about parents name
// --parent FILE, not library fields.
func TestErrorsNameUserFiles(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	g := testimg.Golden(t, testimg.Spec{Size: 1 << 20, Seed: 42})
	work := t.TempDir()
	ro, imm := filepath.Join(work, "ro"), filepath.Join(work, "imm")
	os.Mkdir(ro, 0o755)
	os.Mkdir(imm, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro", "tmpfs", ro).CombinedOutput(); err != nil {
		t.Fatalf("mount a read-only tmpfs (the test runs as root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", ro).Run() })
	if out, err := exec.Command("chattr", "+i", imm).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i (the test runs as root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", imm).Run() })
	for _, tc := range []struct{ dir, why string }{
		{filepath.Join(work, "missing"), "it does not exist"},
		{ro, "read-only file system"},
		{imm, "operation not permitted"},
	} {
		for _, args := range [][]string{{"convert", g}, {"convert", "-O", "vmdk", g}, {"convert", "--resume", g}} {
			dst := filepath.Join(tc.dir, "v.out")
			code, out := exitCode(t, bin, append(args, dst)...)
			if code != 1 || !strings.Contains(out, "directory "+tc.dir+": ") || !strings.Contains(out, tc.why) || strings.Contains(out, ".diskport-") {
				t.Errorf("%v into %s: exit %d, %s", args, tc.dir, code, out)
			}
		}
	}

	base := testimg.Golden(t, testimg.Spec{Size: 2 << 20, Seed: 43})
	dir := t.TempDir()
	parent, child := filepath.Join(dir, "base.vmdk"), filepath.Join(dir, "child.vmdk")
	for _, args := range [][]string{
		{"convert", "-q", "-f", "raw", "-O", "vmdk", base, parent},
		{"create", "-q", "-f", "vmdk", "-b", "base.vmdk", "-F", "vmdk", child},
	} {
		if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v: %s", args, err, out)
		}
	}
	vhd := testimg.Sample(t, filepath.Join("..", "..", "vhd", "testdata", "dfvfs-fat-differential.vhd.bz2"))
	dyn := testimg.Make(t, base, "vpc", "subformat=dynamic")
	for _, args := range [][]string{
		{"info", child},
		{"info", vhd},
		{"info", "--parent", dyn, dyn},
		{"info", "--parent", parent, parent},
	} {
		code, out := exitCode(t, bin, args...)
		if code == 0 || !strings.Contains(out, "--parent") || strings.Contains(out, "Options.") || strings.Contains(out, "caller") {
			t.Errorf("%v: exit %d, %s", args, code, out)
		}
	}
}
