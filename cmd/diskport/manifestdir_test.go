package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/internal/testimg"
)

// TestManifestDir: manifest create refuses a non-empty directory without
// --force; a directory holding one manifest is taken for it by convert,
// info, map, check and manifest verify/show (two manifests: refused,
// naming both).
func TestManifestDir(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	work := t.TempDir()
	g := testimg.Golden(t, testimg.Spec{Size: 3 << 20, Seed: 28})
	vmdk := testimg.Make(t, g, "vmdk", "subformat=streamOptimized")
	dir := filepath.Join(work, "parts")
	if code, o := exitCode(t, bin, "manifest", "create", "--part-size", "1M", vmdk, dir); code != 0 {
		t.Fatalf("manifest create: exit %d, %s", code, o)
	}
	code, o := exitCode(t, bin, "manifest", "create", "--part-size", "1M", "--name", "other", vmdk, dir)
	if code != 1 || !strings.Contains(o, "not empty") || !strings.Contains(o, "--force") {
		t.Errorf("manifest create into a non-empty dir: exit %d, %s", code, o)
	}
	for _, args := range [][]string{
		{"info", "--manifest", dir},
		{"map", "--manifest", dir},
		{"check", "--manifest", dir},
		{"manifest", "verify", dir},
		{"manifest", "show", dir},
		{"convert", "--no-sync", "--exact-size", "--manifest", dir, filepath.Join(work, "a.raw")},
	} {
		if code, o := exitCode(t, bin, args...); code != 0 {
			t.Errorf("%v: exit %d, %s", args, code, o)
		}
	}
	a, _ := os.ReadFile(filepath.Join(work, "a.raw"))
	if want, _ := os.ReadFile(g); !bytes.Equal(a, want) {
		t.Error("convert --manifest DIR differs from the image")
	}
	_, info := exitCode(t, bin, "info", "--manifest", dir)
	if !strings.Contains(info, "subformat: streamOptimized") {
		t.Errorf("info --manifest: %s", info)
	}
	if code, o := exitCode(t, bin, "info", "--manifest", dir, vmdk); code != 2 {
		t.Errorf("info --manifest with an IMAGE too: exit %d, %s", code, o)
	}
	if code, o := exitCode(t, bin, "manifest", "create", "--force", "--part-size", "1M", "--name", "other", vmdk, dir); code != 0 {
		t.Fatalf("manifest create --force: exit %d, %s", code, o)
	}
	code, o = exitCode(t, bin, "convert", "--manifest", dir, filepath.Join(work, "b.raw"))
	if code != 1 || !strings.Contains(o, "2 manifests") || !strings.Contains(o, "other.manifest.xml") {
		t.Errorf("convert --manifest of a dir with two manifests: exit %d, %s", code, o)
	}
}
