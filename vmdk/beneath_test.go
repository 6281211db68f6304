package vmdk

import (
	"errors"
	"os"
	"path/filepath"
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
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"f.vmdk", true},
		{"sub/g.vmdk", true},
		{"sub/../f.vmdk", true},
		{"../outside.vmdk", false},
		{"sub/../../outside.vmdk", false},
		{filepath.Join(root, "outside.vmdk"), false},
		{"linkdir/g.vmdk", false},
		{"link.vmdk", false},
	} {
		f, err := openBeneath(dir, c.name)
		if f != nil {
			f.Close()
		}
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !c.ok && !errors.Is(err, disk.ErrUnsafe):
			t.Errorf("%s: %v, want ErrUnsafe", c.name, err)
		}
	}
}
