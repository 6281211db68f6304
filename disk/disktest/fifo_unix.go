//go:build unix

package disktest

import (
	"syscall"
	"testing"
)

// Mkfifo makes a FIFO at path.
func Mkfifo(t testing.TB, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}
