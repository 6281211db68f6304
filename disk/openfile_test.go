//go:build unix

package disk_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
)

// specialFiles makes a FIFO and a listening unix socket in a new directory.
func specialFiles(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	fifo, sock := filepath.Join(dir, "fifo"), filepath.Join(dir, "sock")
	disktest.Mkfifo(t, fifo)
	disktest.Listen(t, sock)
	return map[string]string{"a FIFO": fifo, "a socket": sock, "a directory": dir, "a character device": "/dev/null"}
}

func TestOpenFileRefusesSpecialFiles(t *testing.T) {
	for kind, path := range specialFiles(t) {
		err := disktest.Within(t, kind, func() error {
			f, err := disk.OpenFile(path, disk.FileOptions{BlockDevice: true})
			if err == nil {
				f.Close()
			}
			return err
		})
		var ke *disk.FileKindError
		if !errors.As(err, &ke) || !errors.Is(err, disk.ErrUnsafe) || ke.Kind != kind || ke.Path != path {
			t.Errorf("OpenFile(%s) = %v, want a FileKindError for %s", path, err, kind)
		}
		err = disktest.Within(t, kind, func() error {
			h, err := disk.OpenHostFile(path)
			if err == nil {
				h.Close()
			}
			return err
		})
		if !errors.Is(err, disk.ErrUnsafe) {
			t.Errorf("OpenHostFile(%s) = %v, want ErrUnsafe", path, err)
		}
	}
}

func TestOpenFileRegular(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := disk.OpenFile(p, disk.FileOptions{NoFollow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 5)
	if _, err := f.ReadAt(b, 0); err != nil || string(b) != "hello" {
		t.Fatalf("read %q, %v", b, err)
	}
	if fl, err := fcntlFlags(f); err != nil || fl&syscall.O_NONBLOCK != 0 {
		t.Errorf("flags %#x, %v: O_NONBLOCK still set", fl, err)
	}
	l := filepath.Join(dir, "link")
	if err := os.Symlink(p, l); err != nil {
		t.Fatal(err)
	}
	if f, err := disk.OpenFile(l, disk.FileOptions{NoFollow: true}); err == nil {
		f.Close()
		t.Error("NoFollow opened a symbolic link")
	}
	if _, err := disk.ReadSmallFile(p, 4); !errors.Is(err, disk.ErrTooLarge) {
		t.Errorf("ReadSmallFile over the limit: %v", err)
	}
	if b, err := disk.ReadSmallFile(p, 5); err != nil || string(b) != "hello" {
		t.Errorf("ReadSmallFile = %q, %v", b, err)
	}
}

func fcntlFlags(f *os.File) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_GETFL, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}
