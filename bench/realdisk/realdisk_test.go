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

// Two builds from the same files in two caches are byte-identical; the
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
	da, _ := os.ReadFile(a.Path)
	db, _ := os.ReadFile(b.Path)
	if len(da) != int(spec.Size) || !bytes.Equal(da, db) {
		t.Fatalf("the two disks (%d and %d bytes) differ", len(da), len(db))
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
	out, err := exec.Command(debugfs, "-R", "cat /"+name, a.Path).Output()
	want, _ := os.ReadFile(filepath.Join(roots[0], "d0", "f00.txt"))
	if err != nil || !bytes.Equal(out, want) {
		t.Fatalf("debugfs cat %s: %v, %d bytes; want the file's %d", name, err, len(out), len(want))
	}
}
