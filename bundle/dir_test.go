package bundle

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
)

// A FIFO as a bundle part or manifest file is refused at once: every
// open of a named file refuses a FIFO without blocking on it.
func TestDirGetFIFO(t *testing.T) {
	dir := t.TempDir()
	disktest.Mkfifo(t, filepath.Join(dir, "image.part.0"))
	err := disktest.Within(t, "Get(FIFO)", func() error {
		_, err := Dir(dir).Get(context.Background(), "image.part.0", 1<<20)
		return err
	})
	if !errors.Is(err, disk.ErrUnsafe) {
		t.Fatalf("Get(FIFO) = %v, want ErrUnsafe", err)
	}
}
