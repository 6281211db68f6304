package vmdk

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/diskport/diskport/disk"
)

// TestOpenBeneath holds both sides of openBeneath (openat2 on Linux, the
// component walk with -tags portable and elsewhere) to the same answers.
func TestOpenBeneath(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "d")
	for _, d := range []string{dir, filepath.Join(dir, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(dir, "f.vmdk"), filepath.Join(dir, "sub", "g.vmdk"), filepath.Join(root, "outside.vmdk")} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("sub", filepath.Join(dir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f.vmdk", filepath.Join(dir, "link.vmdk")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../..", filepath.Join(dir, "sub", "up")); err != nil {
		t.Fatal(err)
	}
	const (
		ok = iota
		unsafe
		missing
		notDir
	)
	for _, c := range []struct {
		name string
		want int
	}{
		{"f.vmdk", ok},
		{"./f.vmdk", ok},
		{"sub/g.vmdk", ok},
		{"sub/../f.vmdk", ok},
		{"sub//g.vmdk", ok},
		{"../outside.vmdk", unsafe},
		{"sub/../../outside.vmdk", unsafe},
		{filepath.Join(root, "outside.vmdk"), unsafe},
		{"linkdir/g.vmdk", unsafe},
		{"link.vmdk", unsafe},
		{"sub/up/outside.vmdk", unsafe},
		{"sub", unsafe},
		{"sub/", unsafe},
		{"nothere.vmdk", missing},
		{"nothere/../f.vmdk", missing},
		{"f.vmdk/x", notDir},
	} {
		f, err := openBeneath(dir, c.name)
		if f != nil {
			f.Close()
		}
		switch {
		case c.want == ok && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want == unsafe && !errors.Is(err, disk.ErrUnsafe):
			t.Errorf("%s: %v, want ErrUnsafe", c.name, err)
		case c.want == missing && !errors.Is(err, fs.ErrNotExist):
			t.Errorf("%s: %v, want ErrNotExist", c.name, err)
		case c.want == notDir && !errors.Is(err, syscall.ENOTDIR):
			t.Errorf("%s: %v, want ENOTDIR", c.name, err)
		}
	}
}

// TestOpenBeneathRace swaps a directory on the way for a symbolic link to
// one outside, over and over, while the extent beneath it is opened: an
// open may fail, but never reaches outside.
func TestOpenBeneathRace(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "d")
	for _, d := range []string{dir, filepath.Join(dir, "sub"), filepath.Join(root, "evil")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "g.vmdk"), []byte("good"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "evil", "g.vmdk"), []byte("evil"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../evil", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	sub, real, link := filepath.Join(dir, "sub"), filepath.Join(dir, "real"), filepath.Join(dir, "link")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			// sub is the directory, then the link, then the directory.
			for _, mv := range [][2]string{{sub, real}, {link, sub}, {sub, link}, {real, sub}} {
				if err := os.Rename(mv[0], mv[1]); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	opened := 0
	for range 3000 {
		f, err := openBeneath(dir, "sub/g.vmdk")
		if err != nil {
			continue
		}
		b := make([]byte, 4)
		_, err = f.ReadAt(b, 0)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != "good" {
			t.Fatalf("opened %q through the swapped link", b)
		}
		opened++
	}
	close(stop)
	<-done
	t.Logf("%d of 3000 opens succeeded", opened)
}
