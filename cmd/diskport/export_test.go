package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/manifest"
)

// exportCases are the outputs of convert -O: the flags, the format
// qemu-img reads them as, and what diskport info reports.
var exportCases = []struct {
	name, qemu, info string
	args             []string
}{
	{"stream.vmdk", "vmdk", "streamOptimized", []string{"-O", "vmdk"}},
	{"sparse.vmdk", "vmdk", "monolithicSparse", []string{"-O", "vmdk", "--subformat", "monolithicSparse"}},
	{"dynamic.vhd", "vpc", "dynamic", []string{"-O", "vpc", "-o", "subformat=dynamic,force_size=on"}},
	{"fixed.vhd", "vpc", "fixed", []string{"-O", "vhd", "--subformat", "fixed"}},
	{"app.ova", "", "streamOptimized", []string{"-O", "ova"}},
}

// TestExportRoundTrips writes sources of every format diskport reads
// (odd-sized, sparse, and all zeros) as every image it writes, and reads
// each back with qemu-img (and diskport, for the OVA): the virtual disk
// is the source's, bit for bit.
func TestExportRoundTrips(t *testing.T) {
	golden := testimg.Golden(t, testimg.Spec{Size: 5<<20 + 3*512 + 100, Seed: 41})
	zeros := filepath.Join(t.TempDir(), "zeros.img")
	if err := os.WriteFile(zeros, nil, 0o644); err != nil || os.Truncate(zeros, 64<<20) != nil {
		t.Fatal("making an all-zero source")
	}
	sources := map[string]string{
		"raw":    golden,
		"zeros":  zeros,
		"vhdx":   testimg.Make(t, golden, "vhdx", ""),
		"stream": testimg.Make(t, golden, "vmdk", "subformat=streamOptimized"),
	}
	for sname, src := range sources {
		want := testimg.QemuRaw(t, src)
		for _, c := range exportCases {
			t.Run(sname+"/"+c.name, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), c.name)
				args := append(append([]string{"convert"}, c.args...), "--checksum", "sha256", src, out)
				if code, stdout, stderr := call(t, args...); code != 0 || !strings.Contains(stdout, "sha256 ") {
					t.Fatalf("%v: exit %d, %q %q", args, code, stdout, stderr)
				}
				image := out
				if c.qemu == "" { // an OVA: diskport reads its disk back
					image = filepath.Join(t.TempDir(), "disk.raw")
					if code, _, stderr := call(t, "convert", "--exact-size", out, image); code != 0 {
						t.Fatalf("reading the OVA back: %q", stderr)
					}
				} else {
					qemuSame(t, c.qemu, image, want)
				}
				code, info, _ := call(t, "info", out)
				if code != 0 || !strings.Contains(info, c.info) {
					t.Errorf("info: %d %q, want %s", code, info, c.info)
				}
				if c.qemu == "" {
					vol := filepath.Join(t.TempDir(), "back.raw")
					if code, _, stderr := call(t, "convert", "--exact-size", out, vol); code != 0 {
						t.Fatal(stderr)
					}
					sameVirtual(t, vol, want)
				}
			})
		}
	}
}

// qemuSame checks with qemu-img that image (of qemu's format) holds the
// raw disk want, and that qemu-img check finds nothing wrong.
func qemuSame(t *testing.T, format, image, want string) {
	t.Helper()
	q := testimg.QemuImg(t)
	if out, err := exec.Command(q, "compare", "-q", "-f", format, "-F", "raw", image, want).CombinedOutput(); err != nil {
		t.Errorf("qemu-img compare: %v: %s", err, out)
	}
	if format == "vmdk" {
		if out, err := exec.Command(q, "check", "-f", format, image).CombinedOutput(); err != nil {
			t.Errorf("qemu-img check: %v: %s", err, out)
		}
	}
}

// sameVirtual checks that the file got starts with want's bytes and holds
// only zeros after them.
func sameVirtual(t *testing.T, got, want string) {
	t.Helper()
	g, gerr := os.Stat(got)
	w, werr := os.Stat(want)
	if gerr != nil || werr != nil || g.Size() < w.Size() {
		t.Errorf("%s is not %s's bytes: %v %v", got, want, gerr, werr)
		return
	}
	if d := testimg.Compare(got, want, -1); d != "" {
		t.Errorf("%s is not %s's bytes: %s", got, want, d)
	}
}

// TestExportStdout writes the layouts written front to back to standard
// output, and refuses the others there.
func TestExportStdout(t *testing.T) {
	golden := testimg.Golden(t, testimg.Spec{Size: 3 << 20, Seed: 42})
	for _, c := range exportCases[:1] {
		code, out, stderr := call(t, append(append([]string{"convert"}, c.args...), golden, "-")...)
		if code != 0 || !strings.Contains(stderr, "as vmdk streamOptimized to -") {
			t.Fatalf("exit %d, %q", code, stderr)
		}
		image := filepath.Join(t.TempDir(), "piped.vmdk")
		os.WriteFile(image, []byte(out), 0o644)
		qemuSame(t, "vmdk", image, golden)
	}
	code, out, stderr := call(t, "convert", "-O", "ova", golden, "-")
	ova := filepath.Join(t.TempDir(), "piped.ova")
	os.WriteFile(ova, []byte(out), 0o644)
	if code != 0 {
		t.Fatalf("-O ova -: %d %q", code, stderr)
	}
	vol := filepath.Join(t.TempDir(), "back.raw")
	if code, _, stderr := call(t, "convert", "--exact-size", ova, vol); code != 0 {
		t.Fatalf("reading the piped OVA back: %q", stderr)
	}
	sameVirtual(t, vol, golden)
	for _, args := range [][]string{{"-O", "vhd"}, {"-O", "vmdk", "--subformat", "monolithicSparse"}} {
		if code, _, stderr := call(t, append(append([]string{"convert"}, args...), golden, "-")...); code != 2 || !strings.Contains(stderr, "not -") {
			t.Errorf("%v to -: %d %q", args, code, stderr)
		}
	}
}

// failingWriter fails after n bytes, as a pipe whose reader went away.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errors.New("broken pipe")
	}
	w.n -= len(p)
	return len(p), nil
}

// TestExportFailures: what stops an export — a source that fails
// midway, a source whose checksums do not hold, a full disk, a closed
// pipe, an existing destination, options that do not fit — is one line
// and leaves nothing at the destination.
func TestExportFailures(t *testing.T) {
	golden := testimg.Golden(t, testimg.Spec{Size: 8 << 20, Seed: 43})
	stream := testimg.Make(t, golden, "vmdk", "subformat=streamOptimized")
	b, _ := os.ReadFile(stream)
	for i := len(b) / 2; i < len(b)/2+4096; i++ {
		b[i] ^= 0x5a // grains in the middle no longer inflate
	}
	corrupt := filepath.Join(t.TempDir(), "corrupt.vmdk")
	os.WriteFile(corrupt, b, 0o644)

	parts := t.TempDir()
	m, mpath, err := manifest.Create(context.Background(), golden, parts, manifest.SplitOptions{PartSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(parts, filepath.Base(m.Parts[len(m.Parts)-1].Key))
	pb, _ := os.ReadFile(part)
	pb[100] ^= 1
	os.WriteFile(part, pb, 0o644)

	full := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", full).CombinedOutput(); err != nil {
		t.Fatalf("mounting a small tmpfs (tests run as root): %v: %s", err, out)
	}
	defer exec.Command("umount", full).Run()

	exists := filepath.Join(t.TempDir(), "exists.vmdk")
	os.WriteFile(exists, []byte("keep me"), 0o644)
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"corrupt source", []string{"-O", "vmdk", corrupt, filepath.Join(t.TempDir(), "x.vmdk")}, 1, "vmdk"},
		{"corrupt source, vhd", []string{"-O", "vhd", corrupt, filepath.Join(t.TempDir(), "x.vhd")}, 1, "vmdk"},
		{"manifest part checksum", []string{"-O", "vmdk", "--manifest", mpath, filepath.Join(t.TempDir(), "x.vmdk")}, 1, "checksum mismatch"},
		{"full disk", []string{"-O", "vhd", "--subformat", "fixed", golden, filepath.Join(full, "x.vhd")}, 1, "no space"},
		{"exists", []string{"-O", "vmdk", golden, exists}, 1, "--force"},
		{"subformat", []string{"-O", "vmdk", "--subformat", "fixed", golden, filepath.Join(t.TempDir(), "x")}, 2, "does not fit"},
		{"raw flags", []string{"-O", "vmdk", "--exact-size", golden, filepath.Join(t.TempDir(), "x")}, 2, "raw volume"},
		{"unknown", []string{"-O", "qcow2", golden, filepath.Join(t.TempDir(), "x")}, 2, "writes raw, vmdk, vhd and ova"},
	} {
		code, _, stderr := call(t, append([]string{"convert"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 1 {
			t.Errorf("%s: exit %d, %q; want %d naming %q", c.name, code, stderr, c.code, c.want)
		}
		dst := c.args[len(c.args)-1]
		if dst == exists {
			if b, _ := os.ReadFile(exists); string(b) != "keep me" {
				t.Errorf("%s: the existing file was changed", c.name)
			}
			continue
		}
		if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 0 {
			t.Errorf("%s: left %v", c.name, ents)
		}
	}

	// A pipe closed by its reader.
	var e bytes.Buffer
	stdout, stderr = &failingWriter{n: 100 << 10}, &e
	code := run([]string{"convert", "-O", "vmdk", golden, "-"})
	stdout, stderr = os.Stdout, os.Stderr
	if code != 1 || !strings.Contains(e.String(), "broken pipe") || !strings.Contains(e.String(), "incomplete") {
		t.Errorf("closed pipe: exit %d, %q", code, e.String())
	}
}
