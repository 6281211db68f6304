package parts

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
)

func TestDirStoreKeys(t *testing.T) {
	d := DirStore{"/x"}
	for key, want := range map[string]string{"a/b/c.part0": "/x/c.part0", "c": "/x/c", `..\..\evil`: "/x/evil"} {
		got, err := d.Path(&Part{Key: key})
		if err != nil || got != want {
			t.Errorf("Path(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	for _, key := range []string{"", "a/..", "a/", "."} {
		if _, err := d.Path(&Part{Key: key}); !errors.Is(err, disk.ErrUnsafe) {
			t.Errorf("Path(%q): err = %v, want ErrUnsafe", key, err)
		}
	}
}

// A FIFO or socket as a part file is refused at once: opening a FIFO
// blocks, and a FIFO part would hang convert forever.
func TestSpecialFilesRefused(t *testing.T) {
	f, dir, _ := created(t, 3<<20, 1<<20)
	part := filepath.Join(dir, f.Parts[1].Key)
	os.Remove(part)
	disktest.Mkfifo(t, part)
	sockPart := filepath.Join(dir, f.Parts[2].Key)
	os.Remove(sockPart)
	disktest.Listen(t, sockPart)
	ctx := context.Background()
	for _, i := range []int{1, 2} {
		err := disktest.Within(t, "OpenPart", func() error {
			r, err := DirStore{dir}.OpenPart(ctx, &f.Parts[i], 0, f.Parts[i].Length)
			if err == nil {
				r.Close()
			}
			return err
		})
		if !errors.Is(err, disk.ErrUnsafe) {
			t.Errorf("OpenPart(part %d) = %v, want ErrUnsafe", i, err)
		}
	}
	err := disktest.Within(t, "Verify", func() error {
		_, err := Verify(ctx, f, DirStore{dir}, VerifyOptions{Parallel: 2})
		return err
	})
	if !errors.Is(err, disk.ErrUnsafe) {
		t.Errorf("Verify = %v, want ErrUnsafe", err)
	}
}
