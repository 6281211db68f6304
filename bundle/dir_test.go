package bundle

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/diskport/diskport/disk"
)

// A FIFO as a bundle part or manifest file is refused at once (issue 11:
// every open of a named file refuses a FIFO without blocking).
func TestDirGetFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "image.part.0"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Dir(dir).Get(context.Background(), "image.part.0", 1<<20)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, disk.ErrUnsafe) {
			t.Fatalf("Get(FIFO) = %v, want ErrUnsafe", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Get(FIFO) still blocked after 5s")
	}
}
