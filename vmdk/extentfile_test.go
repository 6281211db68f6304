package vmdk

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
)

// openWithin opens the descriptor at path, failing the test when it
// blocks for 5 seconds (a FIFO opened without O_NONBLOCK).
func openWithin(t *testing.T, path string, opts Options) (*Image, error) {
	t.Helper()
	var img *Image
	err := disktest.Within(t, "Open "+path, func() error {
		var err error
		img, err = Open(hostFile(t, path), opts)
		return err
	})
	if img != nil && err == nil {
		t.Cleanup(func() { img.Close() })
	}
	return img, err
}

func TestDirExtentsRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	disktest.Mkfifo(t, filepath.Join(dir, "fifo.vmdk"))
	disktest.Listen(t, filepath.Join(dir, "sock.vmdk"))
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link.vmdk")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.vmdk"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "flat.vmdk"), make([]byte, 2048*512), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ extent, kind string }{
		{"fifo.vmdk", "a FIFO"},
		{"sock.vmdk", "a socket"},
		{"sub.vmdk", "a directory"},
		{"link.vmdk", ""},
		{"flat.vmdk", "ok"},
	} {
		t.Run(c.extent, func(t *testing.T) {
			d := "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"" + c.extent + "\" 0\n"
			path := filepath.Join(dir, "d-"+c.extent)
			if err := os.WriteFile(path, []byte(d), 0o644); err != nil {
				t.Fatal(err)
			}
			img, err := openWithin(t, path, Options{OpenExtent: DirExtents(dir)})
			if c.kind == "ok" {
				if err != nil || img.Size() != 2048*512 {
					t.Fatalf("Open: %v", err)
				}
				return
			}
			if !errors.Is(err, disk.ErrUnsafe) {
				t.Fatalf("Open = %v, want ErrUnsafe", err)
			}
			var ke *disk.FileKindError
			if c.kind != "" && (!errors.As(err, &ke) || ke.Kind != c.kind) {
				t.Fatalf("Open = %v, want a FileKindError for %s", err, c.kind)
			}
		})
	}
}

func TestMapExtentsRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	disktest.Mkfifo(t, fifo)
	d := "# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"f.vmdk\" 0\n"
	path := filepath.Join(dir, "d.vmdk")
	if err := os.WriteFile(path, []byte(d), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := openWithin(t, path, Options{OpenExtent: MapExtents(map[string]string{"f.vmdk": fifo})})
	var ke *disk.FileKindError
	if !errors.As(err, &ke) || ke.Kind != "a FIFO" {
		t.Fatalf("Open = %v, want a FileKindError for a FIFO", err)
	}
	_, err = openWithin(t, path, Options{OpenExtent: MapExtents(map[string]string{})})
	if !errors.Is(err, disk.ErrUnsafe) {
		t.Fatalf("Open with an empty map = %v, want ErrUnsafe", err)
	}
}
