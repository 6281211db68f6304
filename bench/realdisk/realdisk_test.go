//go:build linux

package realdisk

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree writes a small tree of files under dir.
func writeTree(t *testing.T, dir string) {
	t.Helper()
	for i := range 40 {
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%4), fmt.Sprintf("f%02d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Repeat(fmt.Sprintf("file %d of the tree\n", i), 200*(i+1))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Two builds from the same files in two caches hold the same files (their
// bytes may differ in the inodes' change times, which mke2fs copies from
// the staged files and nothing can set); the
// second Build in a cache finds the first; the budget bounds the bytes
// copied in; and the filesystem holds the files (debugfs reads one back).
func TestBuildDeterministic(t *testing.T) {
	roots := []string{t.TempDir(), t.TempDir()}
	writeTree(t, roots[0])
	writeTree(t, roots[1])
	spec := Spec{Size: 32 << 20, Files: 300 << 10, Roots: roots}
	a, err := Build(t.TempDir(), spec, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(t.TempDir(), spec, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if a.Key != b.Key || a.Bytes != b.Bytes || a.Files != b.Files {
		t.Fatalf("two builds differ: %+v and %+v", a, b)
	}
	if a.Bytes > spec.Files || a.Bytes < spec.Files/2 {
		t.Errorf("%d bytes of files copied in, want at most %d and most of it", a.Bytes, spec.Files)
	}
	if len(a.Roots) != 2 {
		t.Errorf("files came from %v, want both roots", a.Roots)
	}
	for _, p := range []string{a.Path, b.Path} {
		if st, err := os.Stat(p); err != nil || st.Size() != spec.Size {
			t.Fatalf("%s: %v, want %d bytes", p, err, spec.Size)
		}
	}
	again, err := Build(filepath.Dir(a.Path), spec, func(f string, args ...any) { t.Errorf("rebuilt: "+f, args...) })
	if err != nil || again.Path != a.Path {
		t.Fatalf("second Build: %v, %s; want the cached %s", err, again.Path, a.Path)
	}
	debugfs := "/usr/sbin/debugfs"
	if _, err := os.Stat(debugfs); err != nil {
		t.Fatalf("debugfs (e2fsprogs) is needed: %v", err)
	}
	name := "00" + strings.ReplaceAll(roots[0], "/", "-") + "/d0/f00.txt"
	want, _ := os.ReadFile(filepath.Join(roots[0], "d0", "f00.txt"))
	for _, p := range []string{a.Path, b.Path} {
		out, err := exec.Command(debugfs, "-R", "cat /"+name, p).Output()
		if err != nil || !bytes.Equal(out, want) {
			t.Fatalf("debugfs cat %s in %s: %v, %d bytes; want the file's %d", name, p, err, len(out), len(want))
		}
	}
}
